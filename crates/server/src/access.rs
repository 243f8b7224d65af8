//! Just-in-time access over the Query API (form POST, SigV4 or session tokens, XML), on the
//! IAM endpoint (credential scope `iam`), so approvals can come from chat-ops tools: each
//! action is authorized by policy as `gatehouse:ACTION` on the request's ARN
//! (`arn:gatehouse:gatehouse::ACCOUNT:access-request/ID`, `.../access-request/*` to create
//! or list; `eligibility/*` for eligibilities), then checked by `gatehouse-access` (who is
//! eligible, who approves, no self-approval), audited with its write.
//!
//! Every state change is also sent to the operator's webhook (the config file's
//! `[access] webhook_url`, signed with the secret in the environment variable that
//! `webhook_secret_env` names; `GATEHOUSE_ACCESS_WEBHOOK_URL` and
//! `GATEHOUSE_ACCESS_WEBHOOK_SECRET` override both, see [`AccessSettings`]): the
//! event JSON (`gatehouse_access::AccessEvent`) as the body, `X-Gatehouse-Timestamp`, and
//! `X-Gatehouse-Signature: sha256=HEX` = HMAC-SHA256(secret, "TIMESTAMP.BODY"). Deliveries
//! leave from one task through a bounded queue (a full queue drops the event with a
//! warning), with at most 3 attempts (timeouts of 5 s, back-off 0.5 s then 2 s): the request
//! path never waits for the receiver.

use crate::CallContext;
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::{self, Xml};
use axum::http::StatusCode;
use gatehouse_access::{AccessError, AccessEvent, Caller, CallerKind, RequestView};
use std::sync::OnceLock;

const ACTIONS: &[&str] = &[
    "CreateEligibility",
    "ListEligibilities",
    "DeleteEligibility",
    "CreateAccessRequest",
    "ApproveAccessRequest",
    "DenyAccessRequest",
    "ActivateAccessRequest",
    "RevokeAccessRequest",
    "ListAccessRequests",
];

/// True for a just-in-time access action.
pub fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// True for actions that change what is stored (and so what the engine applies).
pub fn is_write(action: &str) -> bool {
    !action.starts_with("List")
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        if let AccessError::Store(inner) = e {
            return ApiError::from(inner);
        }
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.aws_code(), e.to_string())
    }
}

/// The caller as the domain sees it: stored ids, the session's source identity and MFA.
async fn caller(ctx: &CallContext<'_>) -> Result<Caller, ApiError> {
    let Some(p) = &ctx.principal else {
        return Ok(gatehouse_access::root_caller(ctx.account()));
    };
    let info = &p.info;
    let claims = ctx.session.as_ref().map(|s| &s.claims);
    let role_session = claims.is_some_and(|c| c.role_arn.is_some());
    let group_ids = if role_session {
        Vec::new()
    } else {
        ctx.store
            .list_groups_for_user(
                &info.account_id,
                &info.principal_name,
                &gatehouse_store::ListParams::default(),
            )
            .await?
            .items
            .into_iter()
            .map(|g| g.group_id)
            .collect()
    };
    Ok(Caller {
        account_id: info.account_id.clone(),
        principal_id: info.principal_id.clone(),
        principal_arn: ctx.caller_arn.clone(),
        kind: if role_session {
            CallerKind::RoleSession
        } else {
            CallerKind::User
        },
        name: info.principal_name.clone(),
        group_ids,
        federated_groups: Vec::new(),
        source_identity: claims.and_then(|c| c.source_identity.clone()),
        mfa: claims.is_some_and(|c| c.mfa_present),
    })
}

fn render(x: &mut Xml, v: &RequestView) {
    let r = &v.record;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    x.wrap("AccessRequest", |x| {
        x.elem("RequestId", &r.request_id)
            .elem("State", v.state.as_str())
            .elem("Requester", &r.requester_arn)
            .elem("TargetType", &r.target_kind)
            .elem("Target", &r.target_arn)
            .elem("DurationSeconds", &r.duration_secs.to_string())
            .elem("Justification", &r.justification)
            .opt("Ticket", r.ticket.as_deref())
            .elem("RequestDate", &r.requested.to_rfc3339())
            .elem("PendingUntil", &r.pending_until.to_rfc3339())
            .opt("DecidedBy", r.decided_by_arn.as_deref())
            .opt("DecisionComment", r.decision_comment.as_deref())
            .opt("ActiveFrom", time(r.active_from).as_deref())
            .opt("ActiveUntil", time(r.active_until).as_deref())
            .opt("EndedBy", r.ended_by_arn.as_deref());
    });
}

fn render_eligibility(x: &mut Xml, e: &gatehouse_store::Eligibility) {
    x.wrap("Eligibility", |x| {
        x.elem("EligibilityId", &e.eligibility_id)
            .elem("Subject", &e.subject_arn)
            .elem("Target", &e.target_arn)
            .elem("MaxDurationSeconds", &e.max_duration_secs.to_string())
            .elem("ApprovalRequired", bool_text(e.approval_required))
            .wrap("Approvers", |x| {
                for a in &e.approvers {
                    x.elem("member", &a.arn);
                }
            })
            .elem("MfaRequired", bool_text(e.mfa_required))
            .elem("TicketRequired", bool_text(e.ticket_required));
    });
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Runs a just-in-time access action and wraps its result in the Query API envelope.
pub async fn dispatch(ctx: &CallContext<'_>, action: &str, p: &Params) -> Result<String, ApiError> {
    let account = ctx.account().to_owned();
    let now = ctx.state.clock.now();
    let gh = format!("gatehouse:{action}");
    let mut x = Xml::new();
    let event = match action {
        "CreateEligibility" => {
            crate::authorize(ctx, &gh, &gatehouse_access::eligibility_arn(&account, "*"))?;
            let spec = gatehouse_access::EligibilitySpec {
                account_id: account.clone(),
                subject: p.required("Subject")?.to_owned(),
                target: p.required("Target")?.to_owned(),
                max_duration_secs: p.int("MaxDurationSeconds", 1, i64::MAX)?.unwrap_or(3600),
                approval_required: p.bool("ApprovalRequired")?.unwrap_or(true),
                approvers: p.list("Approvers"),
                mfa_required: p.bool("MfaRequired")?.unwrap_or(false),
                ticket_required: p.bool("TicketRequired")?.unwrap_or(false),
            };
            let e = gatehouse_access::create_eligibility(&ctx.store, &spec).await?;
            render_eligibility(&mut x, &e);
            None
        }
        "DeleteEligibility" => {
            let id = p.required("EligibilityId")?;
            crate::authorize(ctx, &gh, &gatehouse_access::eligibility_arn(&account, id))?;
            gatehouse_access::delete_eligibility(&ctx.store, &account, id, now).await?;
            None
        }
        "ListEligibilities" => {
            crate::authorize(ctx, &gh, &gatehouse_access::eligibility_arn(&account, "*"))?;
            let list = ctx.store.list_eligibilities(&account).await?;
            x.wrap("Eligibilities", |x| {
                for e in &list {
                    x.wrap("member", |x| render_eligibility(x, e));
                }
            });
            None
        }
        "CreateAccessRequest" => {
            crate::authorize(ctx, &gh, &gatehouse_access::request_arn(&account, "*"))?;
            let spec = gatehouse_access::RequestSpec {
                target: p.required("Target")?.to_owned(),
                duration_secs: p.int("DurationSeconds", 1, i64::MAX)?.unwrap_or(3600),
                justification: p.required("Justification")?.to_owned(),
                ticket: p.get("Ticket").map(str::to_owned),
                start: match p.get("StartTime") {
                    None => None,
                    Some(t) => Some(
                        chrono::DateTime::parse_from_rfc3339(t)
                            .map_err(|_| {
                                ApiError::validation(format!(
                                    "StartTime {t:?} is not an RFC 3339 time"
                                ))
                            })?
                            .with_timezone(&chrono::Utc),
                    ),
                },
            };
            let who = caller(ctx).await?;
            Some(
                gatehouse_access::request(
                    &ctx.store,
                    &who,
                    &spec,
                    now,
                    gatehouse_access::DEFAULT_PENDING_TTL,
                )
                .await?,
            )
        }
        "ApproveAccessRequest"
        | "DenyAccessRequest"
        | "ActivateAccessRequest"
        | "RevokeAccessRequest" => {
            let id = p.required("RequestId")?;
            // The record of each step carries the request's id as its elevation id, so the
            // log of one grant reads from its approval to its last call.
            ctx.note_elevation(id);
            crate::authorize(ctx, &gh, &gatehouse_access::request_arn(&account, id))?;
            let who = caller(ctx).await?;
            let comment = p.get("Comment");
            let s = &ctx.store;
            Some(match action {
                "ApproveAccessRequest" => {
                    gatehouse_access::approve(s, &who, id, comment, now).await?
                }
                "DenyAccessRequest" => gatehouse_access::deny(s, &who, id, comment, now).await?,
                "ActivateAccessRequest" => gatehouse_access::activate(s, &who, id, now).await?,
                _ => gatehouse_access::revoke(s, &who, id, now).await?,
            })
        }
        _ => {
            // ListAccessRequests
            crate::authorize(ctx, &gh, &gatehouse_access::request_arn(&account, "*"))?;
            let mine = p.bool("Mine")?.unwrap_or(false);
            let requester = match (&ctx.principal, mine) {
                (Some(pr), true) => Some(pr.info.principal_id.clone()),
                _ => None,
            };
            let list =
                gatehouse_access::list(&ctx.store, &account, requester.as_deref(), now).await?;
            x.wrap("AccessRequests", |x| {
                for v in &list {
                    x.wrap("member", |x| render(x, v));
                }
            });
            None
        }
    };
    if let Some(ev) = event {
        render(&mut x, &ev.request);
        notify(ev);
    }
    Ok(xml::response(
        action,
        xml::IAM_NS,
        ctx.request_id,
        Some(&x.finish()),
    ))
}

// ---------------------------------------------------------------------------------------
// the webhook

/// The config file's `[access]` table.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// Where state changes are POSTed (`http://` or `https://`).
    pub webhook_url: Option<String>,
    /// The environment variable holding the HMAC secret (a secret is never written in the
    /// config file).
    pub webhook_secret_env: Option<String>,
}

/// Where events go and the secret they are signed with, resolved from the settings and
/// the environment.
#[derive(Clone)]
pub struct WebhookTarget {
    url: String,
    secret: gatehouse_auth::Secret,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Env variables that override the config file.
const URL_ENV: &str = "GATEHOUSE_ACCESS_WEBHOOK_URL";
const SECRET_ENV: &str = "GATEHOUSE_ACCESS_WEBHOOK_SECRET";

impl AccessSettings {
    /// The webhook to send to, if any: `GATEHOUSE_ACCESS_WEBHOOK_URL` over `webhook_url`,
    /// `GATEHOUSE_ACCESS_WEBHOOK_SECRET` over the variable `webhook_secret_env` names.
    /// A URL without a secret, a secret variable that is unset or empty, or a URL that is
    /// not http(s) is an error naming the field (events are never sent unsigned).
    pub fn webhook(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<WebhookTarget>, String> {
        let (url, url_from) = match env(URL_ENV).filter(|u| !u.is_empty()) {
            Some(u) => (u, URL_ENV.to_owned()),
            None => match &self.webhook_url {
                Some(u) => (u.clone(), "access.webhook_url".to_owned()),
                None => return Ok(None),
            },
        };
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| format!("{url_from}: {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "{url_from}: {url:?} must be an http:// or https:// URL with a host"
            ));
        }
        let secret = match env(SECRET_ENV).filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => match &self.webhook_secret_env {
                Some(var) => env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                    format!("access.webhook_secret_env: the environment variable {var} is unset or empty")
                })?,
                None => {
                    return Err(format!(
                        "{url_from} is set without a secret: set access.webhook_secret_env (or {SECRET_ENV}); events are never sent unsigned"
                    ));
                }
            },
        };
        Ok(Some(WebhookTarget {
            url,
            secret: gatehouse_auth::Secret::from_string(secret),
        }))
    }
}

/// Where events go, and the key they are signed with.
#[derive(Debug)]
struct Webhook {
    queue: tokio::sync::mpsc::Sender<AccessEvent>,
}

static WEBHOOK: OnceLock<Option<Webhook>> = OnceLock::new();

/// Starts delivering events to `target` (`None`: nowhere). Called once at start, inside
/// the runtime, before the first request; `false` if the webhook was already started.
pub fn start_webhook(target: Option<WebhookTarget>) -> bool {
    let mut started = false;
    WEBHOOK.get_or_init(|| {
        started = true;
        target.and_then(spawn_webhook)
    });
    started
}

fn spawn_webhook(target: WebhookTarget) -> Option<Webhook> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok()?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let secret = target.secret.expose().to_vec();
    tokio::spawn(deliver(client, target.url, secret, rx));
    Some(Webhook { queue: tx })
}

/// Signs `body` sent at `timestamp`: `sha256=` + hex HMAC-SHA256(secret, "TIMESTAMP.BODY").
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook started at serve time; a server started otherwise (tests) reads the
/// environment variables alone on its first event.
fn webhook() -> Option<&'static Webhook> {
    WEBHOOK
        .get_or_init(
            || match AccessSettings::default().webhook(|v| std::env::var(v).ok()) {
                Ok(target) => target.and_then(spawn_webhook),
                Err(e) => {
                    tracing::warn!(error = %e, "access webhook not started");
                    None
                }
            },
        )
        .as_ref()
}

/// Queues an event for the webhook; never waits.
fn notify(event: AccessEvent) {
    if let Some(w) = webhook()
        && w.queue.try_send(event).is_err()
    {
        tracing::warn!("access webhook queue full or closed: an event was dropped");
    }
}

async fn deliver(
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    mut rx: tokio::sync::mpsc::Receiver<AccessEvent>,
) {
    while let Some(event) = rx.recv().await {
        let Ok(body) = serde_json::to_vec(&event) else {
            continue;
        };
        for (attempt, backoff) in [(1, 500_u64), (2, 2_000), (3, 0)] {
            let timestamp = chrono::Utc::now().timestamp();
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-gatehouse-event", event.event)
                .header("x-gatehouse-timestamp", timestamp.to_string())
                .header(
                    "x-gatehouse-signature",
                    webhook_signature(&secret, timestamp, &body),
                )
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    tracing::warn!(status = %r.status(), attempt, "access webhook refused an event")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "access webhook unreachable"),
            }
            if backoff > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Which URL and secret the webhook uses: the env variables over the config file, and
    /// every way to end up sending unsigned (or to a non-http URL) refused, naming the field.
    #[test]
    fn the_webhook_target_comes_from_the_config_with_env_overrides() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let file = AccessSettings {
            webhook_url: Some("https://hooks.example.com/a".into()),
            webhook_secret_env: Some("HOOK_SECRET".into()),
        };
        let t = file
            .webhook(env(&[("HOOK_SECRET", "s1")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.url.as_str(), t.secret.expose()),
            ("https://hooks.example.com/a", &b"s1"[..])
        );
        let t = file
            .webhook(env(&[
                ("HOOK_SECRET", "s1"),
                (URL_ENV, "http://127.0.0.1:9/b"),
                (SECRET_ENV, "s2"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.url.as_str(), t.secret.expose()),
            ("http://127.0.0.1:9/b", &b"s2"[..])
        );
        assert!(format!("{t:?}").contains("127.0.0.1") && !format!("{t:?}").contains("s2"));
        assert!(
            AccessSettings::default()
                .webhook(env(&[]))
                .unwrap()
                .is_none()
        );

        let err = file.webhook(env(&[])).unwrap_err();
        assert!(
            err.starts_with("access.webhook_secret_env: the environment variable HOOK_SECRET"),
            "{err}"
        );
        let no_secret = AccessSettings {
            webhook_secret_env: None,
            ..file.clone()
        };
        let err = no_secret.webhook(env(&[])).unwrap_err();
        assert!(
            err.starts_with("access.webhook_url is set without a secret"),
            "{err}"
        );
        let err = AccessSettings::default()
            .webhook(env(&[(URL_ENV, "http://x/")]))
            .unwrap_err();
        assert!(err.starts_with(URL_ENV), "{err}");
        for bad in [
            "ftp://hooks.example.com/",
            "not a url",
            "file:///etc/passwd",
        ] {
            let s = AccessSettings {
                webhook_url: Some(bad.into()),
                ..file.clone()
            };
            let err = s.webhook(env(&[("HOOK_SECRET", "s1")])).unwrap_err();
            assert!(err.starts_with("access.webhook_url: "), "{bad}: {err}");
        }
    }

    /// The signature a receiver recomputes: HMAC-SHA256 over "TIMESTAMP.BODY" (checked
    /// against a value computed independently with Python's hmac module).
    #[test]
    fn the_webhook_signature_is_hmac_sha256_of_timestamp_and_body() {
        let sig = webhook_signature(b"s3cret", 1700000000, b"{\"a\":1}");
        assert_eq!(
            sig,
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }
}
