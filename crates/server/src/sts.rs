//! The STS Query API (Version 2011-06-15): the token service that turns a principal's
//! proof of identity into short-lived credentials.
//!
//! `AssumeRole` is decided by the role's trust policy (a resource-based policy naming who
//! may assume it) together with the caller's own policies, with AWS's rules: within an
//! account a trust policy naming the caller directly is enough, one naming the account
//! delegates to the caller's identity policies, and across accounts both sides must allow.
//! The trust policy must allow in every case. Session tags need `sts:TagSession` and a
//! source identity `sts:SetSourceIdentity`, on both sides alike.
//!
//! Credentials are an `ASIA...` key id, a secret and a signed session token carrying the
//! secret sealed (see `gatehouse_auth::session`), so any node verifies later requests
//! without a store round trip.

use crate::authz::CompiledPrincipal;
use crate::error::ApiError;
use crate::iam::entity::Entity;
use crate::identity::Caller;
use crate::query::Params;
use crate::xml::{self, Xml};
use crate::{CallContext, decision_request};
use chrono::{DateTime, Duration, Utc};
use gatehouse_auth::session::{self, SessionClaims};
use gatehouse_policy::{ContextValue, NamedPolicy, PolicyDocument, PolicySet, PolicyType};
use std::collections::BTreeMap;

const ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "DecodeAuthorizationMessage",
];

/// Actions whose caller proves itself with a token in the request, not a signature.
const UNSIGNED: &[&str] = &["AssumeRoleWithWebIdentity"];

/// True for an action that may come unsigned.
pub(crate) fn is_unsigned(action: &str) -> bool {
    UNSIGNED.contains(&action)
}

/// Role chaining (a role session assuming a role) is capped at one hour, as in AWS.
const CHAINED_MAX_SECS: i64 = 3600;
/// AWS's limit on the packed size of session policies and tags.
const PACKED_LIMIT: usize = 2048;
const MAX_SESSION_TAGS: usize = 50;
const MAX_POLICY_ARNS: usize = 10;

/// True for an STS action this API answers.
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Every STS action this API answers.
#[cfg(test)]
pub(crate) fn answered_actions() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().copied()
}

/// Runs an STS action and wraps its result in AWS's envelope.
pub(crate) async fn dispatch(
    ctx: &CallContext<'_>,
    action: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let result = match action {
        // GetCallerIdentity needs no permission, as in AWS.
        "GetCallerIdentity" => get_caller_identity(ctx),
        "AssumeRole" => assume_role(ctx, p).await?,
        "AssumeRoleWithWebIdentity" => assume_role_with_web_identity(ctx, p).await?,
        "GetSessionToken" => get_session_token(ctx, p).await?,
        "DecodeAuthorizationMessage" => decode_authorization_message(ctx, p)?,
        other => return Err(ApiError::invalid_action(other)),
    };
    Ok(xml::response(
        action,
        xml::STS_NS,
        ctx.request_id,
        Some(&result),
    ))
}

fn get_caller_identity(ctx: &CallContext<'_>) -> String {
    let user_id = match (&ctx.session, &ctx.principal) {
        (Some(s), _) if !s.claims.principal_id.is_empty() => s.claims.principal_id.clone(),
        (_, Some(p)) => p.info.principal_id.clone(),
        _ => ctx.account().to_owned(),
    };
    let mut x = Xml::new();
    x.elem("Arn", &ctx.caller_arn)
        .elem("UserId", &user_id)
        .elem("Account", ctx.account());
    x.finish()
}

/// `[\w+=,.@-]`, the characters AWS allows in session names and source identities.
fn valid_session_name(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// Splits `arn:gatehouse:iam::ACCOUNT:role/PATH/NAME` into account and name.
fn parse_role_arn(arn: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::validation(format!("{arn} is invalid: RoleArn must be a role ARN"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts.as_slice() else {
        return Err(bad());
    };
    if *partition != gatehouse_store::PARTITION
        || *service != "iam"
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let rest = resource.strip_prefix("role/").ok_or_else(bad)?;
    let name = rest.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(bad());
    }
    Ok(((*account).to_owned(), name.to_owned()))
}

fn denied(ctx: &CallContext<'_>, action: &str, resource: &str) -> ApiError {
    ApiError::access_denied(format!(
        "User: {} is not authorized to perform: {action} on resource: {resource}",
        ctx.caller_arn
    ))
}

fn note_audit(ctx: &CallContext<'_>, action: &str, resource: &str, decision: &str) {
    // The deciding statement stays the one the last `authorize` noted, if any.
    let statement = ctx.audit.lock().ok().and_then(|f| f.statement.clone());
    ctx.note_decision(action, resource, decision, statement);
}

/// Decides `action` on the role for the caller, with the trust policy as the role's
/// resource-based policy: the engine's cross-policy logic, plus AWS's rule for roles that
/// the trust policy itself must allow.
fn check_trust(
    ctx: &CallContext<'_>,
    principal: &CompiledPrincipal,
    trust: &PolicySet,
    action: &str,
    role_arn: &str,
    request_keys: &[(String, ContextValue)],
) -> Result<Option<gatehouse_store::ActiveElevation>, ApiError> {
    let mut req = decision_request(ctx, principal, action, role_arn);
    for (k, v) in request_keys {
        req.context.insert(k.clone(), v.clone());
    }
    let session_policy = ctx
        .session
        .as_ref()
        .and_then(|s| s.session_policy.as_deref());
    let eval = principal.evaluation(Some(trust), session_policy);
    // A just-in-time role grant is the caller's right to assume the role (its trust
    // policy must still admit the caller, checked below).
    let elevated = principal.decide_at(&req, Some(trust), session_policy, ctx.state.clock.now());
    let grant = elevated.elevation.cloned();
    let decision = elevated.decision;
    let trust_allows = decision.is_allow()
        && (decision
            .statements
            .iter()
            .any(|s| s.policy_type == PolicyType::Resource)
            || eval.explain(&req).matched.iter().any(|s| {
                s.policy_type == PolicyType::Resource && s.effect == gatehouse_policy::Effect::Allow
            }));
    if trust_allows {
        if let Some(g) = &grant {
            ctx.note_elevation(&g.request_id);
        }
        note_audit(ctx, action, role_arn, "Allow");
        Ok(grant)
    } else {
        let kind = if decision.is_allow() {
            "ImplicitDeny"
        } else {
            decision.decision.as_str()
        };
        note_audit(ctx, action, role_arn, kind);
        let mut e = denied(ctx, action, role_arn);
        e.message
            .push_str(&crate::encoded_denial(ctx.state, &req, &decision));
        Err(e)
    }
}

/// Session tags requested with `Tags.member.N`, checked as AWS does.
fn session_tags(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let tags = p.tags("Tags")?;
    if tags.len() > MAX_SESSION_TAGS {
        return Err(ApiError::validation(format!(
            "at most {MAX_SESSION_TAGS} session tags are allowed"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in &tags {
        if k.len() > 128 || v.len() > 256 {
            return Err(ApiError::validation(
                "a session tag key is at most 128 characters and a value at most 256",
            ));
        }
        // The store's rules for tags (no control character, no `aws:` key), and keys
        // compared as the policy engine compares `aws:PrincipalTag/K` (ASCII letters folded).
        let tag = gatehouse_store::Tag::new(k.as_str(), v.as_str());
        tag.validate()
            .map_err(|e| ApiError::validation(e.to_string()))?;
        if !seen.insert(tag.folded_key()) {
            return Err(ApiError::validation(format!(
                "duplicate session tag key {k} (keys are case-insensitive)"
            )));
        }
    }
    // A budget tag the gateway cannot read would fail every request of the session
    // closed; say so here, where the caller can fix it.
    let by_key: BTreeMap<String, String> = tags.iter().cloned().collect();
    crate::gateway::budget::session_limits(&by_key)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(tags)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn credentials_xml(
    x: &mut Xml,
    access_key_id: &str,
    secret: &str,
    token: &str,
    exp: DateTime<Utc>,
) {
    x.wrap("Credentials", |x| {
        x.elem("AccessKeyId", access_key_id)
            .elem("SecretAccessKey", secret)
            .elem("SessionToken", token)
            .elem("Expiration", &iso(exp));
    });
}

fn issue(
    ctx: &CallContext<'_>,
    claims: &SessionClaims,
    secret: &gatehouse_auth::Secret,
) -> Result<String, ApiError> {
    session::issue(&ctx.state.ring(), claims, secret).map_err(|e| {
        tracing::error!(error = %e, "session token could not be issued");
        ApiError::internal()
    })
}

async fn assume_role(ctx: &CallContext<'_>, p: &Params) -> Result<String, ApiError> {
    let role_arn = p.required("RoleArn")?.to_owned();
    let session_name = p.required("RoleSessionName")?.to_owned();
    if !valid_session_name(&session_name, 2, 64) {
        return Err(ApiError::validation(
            "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]",
        ));
    }
    let (role_account, role_name) = parse_role_arn(&role_arn)?;
    let requested = p.int("DurationSeconds", 900, 43200)?;
    let external_id = p.get("ExternalId").map(str::to_owned);
    if let Some(e) = &external_id
        && !((2..=1224).contains(&e.len())
            && e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b)))
    {
        return Err(ApiError::validation(
            "ExternalId must be 2 to 1224 characters of [\\w+=,.@:/-]",
        ));
    }
    let source_identity = p.get("SourceIdentity").map(str::to_owned);
    if let Some(s) = &source_identity
        && (!valid_session_name(s, 2, 64) || s.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ApiError::validation(
            "SourceIdentity must be 2 to 64 characters of [\\w+=,.@-] and not start with aws:",
        ));
    }
    let tags = session_tags(p)?;
    let transitive = p.list("TransitiveTagKeys");
    // Each transitive key as its tag spells it: the chained call looks the tag up by it.
    let mut transitive_tags: Vec<String> = Vec::with_capacity(transitive.len());
    for k in &transitive {
        let Some((tag_key, _)) = tags.iter().find(|(t, _)| t.eq_ignore_ascii_case(k)) else {
            return Err(ApiError::validation(format!(
                "TransitiveTagKeys names {k}, which is not one of the session tags"
            )));
        };
        transitive_tags.push(tag_key.clone());
    }
    let (inline_policy, policy_arns) = session_policy_params(p)?;

    // Who is asking. Root credentials cannot assume roles (as in AWS).
    let Some(principal) = ctx.principal.as_deref() else {
        note_audit(ctx, "sts:AssumeRole", &role_arn, "ImplicitDeny");
        return Err(ApiError::access_denied(
            "Roles may not be assumed by root accounts.",
        ));
    };
    let caller_session = ctx.session.as_ref().map(|s| &s.claims);
    let chained = matches!(ctx.caller, Caller::AssumedRole { .. });

    let (role, role_entity, trust) =
        load_role(ctx, "sts:AssumeRole", &role_arn, &role_account, &role_name).await?;

    // Transitive tags of the calling session pass on and cannot be overridden.
    let mut all_tags: BTreeMap<String, String> = BTreeMap::new();
    let mut transitive_keys: Vec<String> = Vec::new();
    if let Some(c) = caller_session {
        for k in &c.transitive_tag_keys {
            // Case-insensitively: tokens issued before transitive keys were stored as their
            // tags spell them may name a tag in another case.
            if let Some((k, v)) = c.tags.iter().find(|(t, _)| t.eq_ignore_ascii_case(k)) {
                if tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)) {
                    return Err(ApiError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "InvalidParameterValue",
                        format!(
                            "the session tag {k} is transitive from the calling session and cannot be set again"
                        ),
                    ));
                }
                all_tags.insert(k.clone(), v.clone());
                transitive_keys.push(k.clone());
            }
        }
    }
    for (k, v) in &tags {
        all_tags.insert(k.clone(), v.clone());
    }
    for k in transitive_tags {
        if !transitive_keys.iter().any(|t| t.eq_ignore_ascii_case(&k)) {
            transitive_keys.push(k);
        }
    }

    // The source identity is set once and kept through chains.
    let kept_identity = caller_session.and_then(|c| c.source_identity.clone());
    if let (Some(old), Some(new)) = (&kept_identity, &source_identity)
        && old != new
    {
        return Err(ApiError::access_denied(
            "SourceIdentity was set when the calling session was created and cannot be changed.",
        ));
    }

    // MFA: given with this call, or carried by the calling session.
    let mfa_time = match mfa_params(ctx, p).await? {
        Some(t) => Some(t),
        None => caller_session
            .filter(|c| c.mfa_present)
            .and_then(|c| c.mfa_auth_time),
    };

    // Context the trust and identity policies can test: the keys AWS documents for
    // AssumeRole (session name, external id, source identity, request and transitive
    // tags, the role's tags), and MFA.
    let mut keys = crate::iam::conditions::request_keys("sts:AssumeRole", p, Some(&role_entity))?;
    if let Some(t) = mfa_time {
        keys.push(("aws:MultiFactorAuthPresent".into(), "true".into()));
        keys.push((
            "aws:MultiFactorAuthAge".into(),
            (ctx.state.clock.now() - t)
                .num_seconds()
                .max(0)
                .to_string()
                .into(),
        ));
    }
    let grant = check_trust(ctx, principal, &trust, "sts:AssumeRole", &role_arn, &keys)?;
    if !tags.is_empty() || !transitive.is_empty() {
        check_trust(ctx, principal, &trust, "sts:TagSession", &role_arn, &keys)?;
    }
    if source_identity.is_some() && kept_identity.is_none() {
        check_trust(
            ctx,
            principal,
            &trust,
            "sts:SetSourceIdentity",
            &role_arn,
            &keys,
        )?;
    }
    note_audit(ctx, "sts:AssumeRole", &role_arn, "Allow");

    // Duration: the role's maximum, and one hour for chains.
    let max = if chained {
        CHAINED_MAX_SECS
    } else {
        role.max_session_duration
    };
    let duration = match requested {
        Some(d) if d > max => {
            return Err(ApiError::validation(if chained {
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_owned()
            } else {
                format!(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({max})."
                )
            }));
        }
        Some(d) => d,
        None => 3600.min(max),
    };
    // A session opened under a just-in-time role grant ends with the grant's window.
    let duration = match &grant {
        Some(g) => duration.min(
            (g.active_until - ctx.state.clock.now())
                .num_seconds()
                .max(1),
        ),
        None => duration,
    };
    // The session ends with every grant it depends on: its own, and those of the session
    // it was chained from (checked by every node at every call, so a revoke ends it too).
    let mut elevations = caller_session
        .map(|c| c.elevations.clone())
        .unwrap_or_default();
    if let Some(g) = &grant {
        elevations.push(session::SessionElevation {
            request_id: g.request_id.clone(),
            principal_arn: principal.info.principal_arn.clone(),
            principal_id: principal.info.principal_id.clone(),
        });
    }

    let tag_bytes = all_tags
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    let (session_docs, packed_pct) = session_policy_documents(
        ctx,
        &role_account,
        inline_policy.as_deref(),
        &policy_arns,
        tag_bytes,
    )
    .await?;

    let (mut claims, secret) = role_session(&role, session_name, ctx.state.clock.now(), duration);
    claims.source_identity = kept_identity.or(source_identity);
    claims.tags = all_tags;
    claims.transitive_tag_keys = transitive_keys;
    claims.session_policies = session_docs;
    claims.policy_arns = policy_arns;
    claims.role_chained = chained;
    claims.elevations = elevations;
    claims.mfa_present = mfa_time.is_some();
    claims.mfa_auth_time = mfa_time;
    let mut x = Xml::new();
    role_credentials_xml(ctx, &mut x, &claims, &secret)?;
    x.elem("PackedPolicySize", &packed_pct.to_string());
    x.opt("SourceIdentity", claims.source_identity.as_deref());
    Ok(x.finish())
}

async fn get_session_token(ctx: &CallContext<'_>, p: &Params) -> Result<String, ApiError> {
    let duration = p.int("DurationSeconds", 900, 129_600)?.unwrap_or(43_200);
    let (Caller::User { .. }, Some(principal), None) = (ctx.caller, &ctx.principal, &ctx.session)
    else {
        return Err(ApiError::access_denied(
            "GetSessionToken must be called with the long-term access key of an IAM user.",
        ));
    };
    let mfa_time = mfa_params(ctx, p).await?;
    let now = ctx.state.clock.now();
    let (akid, secret) = session::generate_temporary_credentials();
    let mut claims = SessionClaims::new(
        akid.clone(),
        principal.info.principal_arn.clone(),
        principal.info.account_id.clone(),
        now,
        now + Duration::seconds(duration),
    );
    claims.principal_id.clone_from(&principal.info.principal_id);
    claims.mfa_present = mfa_time.is_some();
    claims.mfa_auth_time = mfa_time;
    let token = issue(ctx, &claims, &secret)?;
    let mut x = Xml::new();
    credentials_xml(
        &mut x,
        &akid,
        secret.expose_str().unwrap_or_default(),
        &token,
        claims.expires_at,
    );
    Ok(x.finish())
}

/// `SerialNumber` and `TokenCode`, both or neither; checks and consumes the code.
async fn mfa_params(ctx: &CallContext<'_>, p: &Params) -> Result<Option<DateTime<Utc>>, ApiError> {
    match (p.get("SerialNumber"), p.get("TokenCode")) {
        (None, None) => Ok(None),
        (Some(serial), Some(code)) => crate::federation::check_mfa(ctx, serial, code)
            .await
            .map(Some),
        _ => Err(ApiError::validation(
            "SerialNumber and TokenCode must be given together",
        )),
    }
}

/// `Policy` and `PolicyArns.member.N.arn`.
fn session_policy_params(p: &Params) -> Result<(Option<String>, Vec<String>), ApiError> {
    let inline_policy = p.get("Policy").map(str::to_owned);
    let policy_arns: Vec<String> = p
        .structs("PolicyArns")
        .into_iter()
        .filter_map(|f| f.into_iter().find(|(k, _)| k == "arn").map(|(_, v)| v))
        .collect();
    if policy_arns.len() > MAX_POLICY_ARNS {
        return Err(ApiError::validation(format!(
            "at most {MAX_POLICY_ARNS} PolicyArns are allowed"
        )));
    }
    Ok((inline_policy, policy_arns))
}

fn too_large(msg: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "PackedPolicyTooLarge",
        msg,
    )
}

/// The session policy documents (inline and managed), compiled now so that a bad one fails
/// here, and the packed size in percent of AWS's limit (tags count too).
async fn session_policy_documents(
    ctx: &CallContext<'_>,
    role_account: &str,
    inline_policy: Option<&str>,
    policy_arns: &[String],
    tag_bytes: usize,
) -> Result<(Vec<String>, usize), ApiError> {
    let mut docs = Vec::new();
    if let Some(doc) = inline_policy {
        if doc.len() > PACKED_LIMIT {
            return Err(too_large(format!(
                "The session policy is larger than {PACKED_LIMIT} characters."
            )));
        }
        docs.push(doc.to_owned());
    }
    // Managed session policies come from the role's own account, as in AWS: another
    // account's policies are neither read nor told apart from missing ones.
    for arn in policy_arns {
        let pol = ctx.store.get_policy(role_account, arn).await?;
        let v = ctx
            .store
            .get_policy_version(role_account, arn, &pol.default_version_id)
            .await?;
        docs.push(v.document);
    }
    if !docs.is_empty() {
        crate::session::compile_session_policies(&docs)?;
    }
    let packed = inline_policy.map_or(0, str::len)
        + policy_arns.iter().map(String::len).sum::<usize>()
        + tag_bytes;
    let packed_pct = packed * 100 / PACKED_LIMIT;
    if packed_pct > 100 {
        return Err(too_large(format!(
            "Session policies and tags use {packed_pct}% of the allowed packed size."
        )));
    }
    Ok((docs, packed_pct))
}

/// The role (with its tags, for `aws:ResourceTag/K`) and its compiled trust policy; a
/// missing role is an AccessDenied, so that callers cannot probe for names.
async fn load_role(
    ctx: &CallContext<'_>,
    action: &str,
    role_arn: &str,
    account: &str,
    name: &str,
) -> Result<(gatehouse_store::Role, Entity, PolicySet), ApiError> {
    let role = match ctx.store.get_role(account, name).await {
        Ok(r) if r.arn() == role_arn => r,
        Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
            note_audit(ctx, action, role_arn, "ImplicitDeny");
            return Err(denied(ctx, action, role_arn));
        }
        Err(e) => return Err(e.into()),
    };
    let tags = ctx
        .store
        .list_tags(
            account,
            gatehouse_store::TaggedKind::Role,
            &role.name,
            &gatehouse_store::ListParams::first(1000),
        )
        .await?
        .items;
    let trust = PolicyDocument::parse(&role.trust_policy)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            PolicySet::new(PolicyType::Resource, [NamedPolicy::new("trust-policy", d)])
                .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            tracing::error!(role = role_arn, error = %e, "trust policy does not compile; denying");
            denied(ctx, action, role_arn)
        })?;
    let entity = Entity::of_role(role.clone(), tags);
    Ok((role, entity, trust))
}

/// `AssumeRoleWithWebIdentity`: an OIDC token from a registered provider, instead of a
/// signature, proves who is asking; the trust policy (`Principal: {"Federated": PROVIDER}`,
/// conditions on `ISSUER:sub`, `ISSUER:aud`, ...) decides.
async fn assume_role_with_web_identity(
    ctx: &CallContext<'_>,
    p: &Params,
) -> Result<String, ApiError> {
    const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
    let role_arn = p.required("RoleArn")?.to_owned();
    let session_name = p.required("RoleSessionName")?.to_owned();
    if !valid_session_name(&session_name, 2, 64) {
        return Err(ApiError::validation(
            "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]",
        ));
    }
    let token = p.required("WebIdentityToken")?;
    let requested = p.int("DurationSeconds", 900, 43200)?;
    let (inline_policy, policy_arns) = session_policy_params(p)?;
    let (role_account, role_name) = parse_role_arn(&role_arn)?;
    let providers = ctx.store.list_oidc_providers(&role_account).await?;
    let web = crate::oidc::validate(&ctx.state.oidc, &providers, token).await?;

    let (role, role_entity, trust) =
        load_role(ctx, ACTION, &role_arn, &role_account, &role_name).await?;
    let now = ctx.state.clock.now();
    let mut req =
        gatehouse_policy::Request::new(web.provider_arn.clone(), ACTION, role_arn.clone());
    ctx.origin.fill_context(&mut req.context);
    req.context.insert("aws:CurrentTime", now.to_rfc3339());
    req.context
        .insert("aws:EpochTime", now.timestamp().to_string());
    req.context
        .insert("aws:FederatedProvider", web.provider_arn.as_str());
    req.context.insert("aws:PrincipalType", "WebIdentityUser");
    for (k, v) in crate::iam::conditions::request_keys(ACTION, p, Some(&role_entity))? {
        req.context.insert(k, v);
    }
    for (k, v) in &web.condition_keys {
        // A claim never replaces a key Gatehouse set (or another claim did): keys compare
        // ignoring case.
        if req.context.get(k).is_some() {
            continue;
        }
        let value: ContextValue = if v.len() == 1 && !k.ends_with(":amr") {
            v[0].as_str().into()
        } else {
            v.clone().into()
        };
        req.context.insert(k.clone(), value);
    }
    let empty = PolicySet::empty(PolicyType::Identity);
    let eval = gatehouse_policy::Evaluation {
        identity: &empty,
        resource: Some(&trust),
        boundary: None,
        guardrails: &[],
        session: None,
    };
    let decision = eval.decide(&req);
    if !decision.is_allow() {
        note_audit(ctx, ACTION, &role_arn, decision.decision.as_str());
        return Err(ApiError::access_denied(format!(
            "Not authorized to perform {ACTION} on {role_arn} with a token for {} from {}",
            web.subject, web.issuer_key
        )));
    }
    note_audit(ctx, ACTION, &role_arn, "Allow");
    let duration = match requested {
        Some(d) if d > role.max_session_duration => {
            return Err(ApiError::validation(format!(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({}).",
                role.max_session_duration
            )));
        }
        Some(d) => d,
        None => 3600.min(role.max_session_duration),
    };
    let (session_docs, packed_pct) = session_policy_documents(
        ctx,
        &role_account,
        inline_policy.as_deref(),
        &policy_arns,
        0,
    )
    .await?;

    let (mut claims, secret) = role_session(&role, session_name, now, duration);
    claims.session_policies = session_docs;
    claims.policy_arns = policy_arns;
    let mut x = Xml::new();
    role_credentials_xml(ctx, &mut x, &claims, &secret)?;
    x.elem("SubjectFromWebIdentityToken", &web.subject);
    x.elem("PackedPolicySize", &packed_pct.to_string());
    x.elem("Provider", &web.issuer_key);
    x.elem("Audience", &web.audience);
    Ok(x.finish())
}

/// `DecodeAuthorizationMessage`: the details behind an AccessDenied, for principals allowed
/// `sts:DecodeAuthorizationMessage`.
fn decode_authorization_message(ctx: &CallContext<'_>, p: &Params) -> Result<String, ApiError> {
    let encoded = p.required("EncodedMessage")?;
    crate::authorize(ctx, "sts:DecodeAuthorizationMessage", "*")?;
    let plain = session::open_message(&ctx.state.ring(), encoded).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidAuthorizationMessageException",
            "The encoded authorization message is not valid.",
        )
    })?;
    let text = String::from_utf8(plain).map_err(|_| ApiError::internal())?;
    let mut x = Xml::new();
    x.elem("DecodedMessage", &text);
    Ok(x.finish())
}

/// Fresh temporary credentials and the claims of a session of `role`.
fn role_session(
    role: &gatehouse_store::Role,
    session_name: String,
    now: DateTime<Utc>,
    duration_secs: i64,
) -> (SessionClaims, gatehouse_auth::Secret) {
    let (akid, secret) = session::generate_temporary_credentials();
    let arn = format!(
        "arn:{}:sts::{}:assumed-role/{}/{}",
        gatehouse_store::PARTITION,
        role.account_id,
        role.name,
        session_name
    );
    let mut claims = SessionClaims::new(
        akid,
        arn,
        role.account_id.clone(),
        now,
        now + Duration::seconds(duration_secs),
    );
    claims.principal_id = format!("{}:{}", role.role_id, session_name);
    claims.role_arn = Some(role.arn());
    claims.session_name = Some(session_name);
    (claims, secret)
}

/// Signs a role session and writes its `Credentials` and `AssumedRoleUser`.
fn role_credentials_xml(
    ctx: &CallContext<'_>,
    x: &mut Xml,
    claims: &SessionClaims,
    secret: &gatehouse_auth::Secret,
) -> Result<(), ApiError> {
    let token = issue(ctx, claims, secret)?;
    credentials_xml(
        x,
        &claims.access_key_id,
        secret.expose_str().unwrap_or_default(),
        &token,
        claims.expires_at,
    );
    x.wrap("AssumedRoleUser", |x| {
        x.elem("AssumedRoleId", &claims.principal_id)
            .elem("Arn", &claims.principal_arn);
    });
    Ok(())
}
