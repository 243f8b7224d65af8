//! Sign-in management over the Query API (form POST, SigV4 or session tokens, XML), on the
//! IAM endpoint like just-in-time access: identity sources and assignments, each action
//! authorized by policy as `gatehouse:ACTION` on
//! `arn:gatehouse:gatehouse::ACCOUNT:identity-source/NAME` or `.../assignment/ID`
//! (`assignment/*` to create or list), then checked by `gatehouse-signin` (the same rules
//! as the CLI and the config file), audited with its write.
//!
//! `CreateAssignment` also needs `iam:PassRole` on the role: an assignment hands sessions
//! of the role to people outside Gatehouse's own identities, as passing a role to a
//! service does in AWS, so whoever may assign must be allowed to pass that role.

use crate::CallContext;
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::{self, Xml};
use axum::http::StatusCode;
use gatehouse_signin::{AssignmentSpec, SigninError, SourceSpec, Subject};
use gatehouse_store::{Secret, SigninAssignment, SigninSource};
use std::collections::BTreeMap;

const ACTIONS: &[&str] = &[
    "CreateIdentitySource",
    "ListIdentitySources",
    "DeleteIdentitySource",
    "CreateAssignment",
    "ListAssignments",
    "DeleteAssignment",
];

/// True for a sign-in management action.
pub fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

impl From<SigninError> for ApiError {
    fn from(e: SigninError) -> ApiError {
        if let SigninError::Store(inner) = e {
            return ApiError::from(inner);
        }
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.aws_code(), e.to_string())
    }
}

fn render_source(x: &mut Xml, s: &SigninSource) {
    x.wrap("IdentitySource", |x| {
        x.elem("Name", &s.name)
            .elem("Issuer", &s.issuer)
            .elem("ClientId", &s.client_id)
            .elem(
                "HasClientSecret",
                if s.has_client_secret { "true" } else { "false" },
            )
            .wrap("Scopes", |x| {
                for scope in &s.scopes {
                    x.elem("member", scope);
                }
            })
            .elem("GroupsClaim", &s.claims.groups)
            .elem("EmailClaim", &s.claims.email)
            .elem("AmrClaim", &s.claims.amr)
            .wrap("SessionTagClaims", |x| {
                for (key, claim) in &s.claims.tags {
                    x.wrap("member", |x| {
                        x.elem("Key", key).elem("Claim", claim);
                    });
                }
            })
            .elem("CreateDate", &s.created.to_rfc3339());
    });
}

fn render_assignment(x: &mut Xml, a: &SigninAssignment) {
    x.wrap("Assignment", |x| {
        x.elem("AssignmentId", &a.assignment_id)
            .elem("IdentitySource", &a.source)
            .elem("Subject", &format!("{}:{}", a.subject_kind, a.subject))
            .elem("RoleArn", &a.role_arn)
            .elem("MaxSessionDuration", &a.max_session_secs.to_string())
            .elem("CreateDate", &a.created.to_rfc3339());
    });
}

/// `SessionTagClaims.member.N.Key` / `.Claim` as a map; a key given twice is refused.
fn tag_claims(p: &Params) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for fields in p.structs("SessionTagClaims") {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    ApiError::validation(format!("each SessionTagClaims member needs a {name}"))
                })
        };
        let (key, claim) = (field("Key")?, field("Claim")?);
        if out.insert(key.clone(), claim).is_some() {
            return Err(ApiError::validation(format!(
                "SessionTagClaims: the key {key:?} is given twice"
            )));
        }
    }
    Ok(out)
}

/// Runs a sign-in management action and wraps its result in the Query API envelope.
pub async fn dispatch(ctx: &CallContext<'_>, action: &str, p: &Params) -> Result<String, ApiError> {
    let account = ctx.account().to_owned();
    let gh = format!("gatehouse:{action}");
    let store = &ctx.store;
    let mut x = Xml::new();
    match action {
        "CreateIdentitySource" => {
            let name = p.required("Name")?;
            crate::authorize(ctx, &gh, &gatehouse_signin::source_arn(&account, name))?;
            let spec = SourceSpec {
                name: name.to_owned(),
                issuer: p.required("Issuer")?.to_owned(),
                client_id: p.required("ClientId")?.to_owned(),
                scopes: p.list("Scopes"),
                groups_claim: p.get("GroupsClaim").map(str::to_owned),
                email_claim: p.get("EmailClaim").map(str::to_owned),
                amr_claim: p.get("AmrClaim").map(str::to_owned),
                tags: tag_claims(p)?,
            };
            let secret = p
                .get("ClientSecret")
                .filter(|s| !s.is_empty())
                .map(Secret::new);
            let s = gatehouse_signin::put_source(store, &account, &spec, secret, false).await?;
            render_source(&mut x, &s);
        }
        "ListIdentitySources" => {
            crate::authorize(ctx, &gh, &gatehouse_signin::source_arn(&account, "*"))?;
            let list = store.list_signin_sources(&account).await?;
            x.wrap("IdentitySources", |x| {
                for s in &list {
                    x.wrap("member", |x| render_source(x, s));
                }
            });
        }
        "DeleteIdentitySource" => {
            let name = p.required("Name")?;
            crate::authorize(ctx, &gh, &gatehouse_signin::source_arn(&account, name))?;
            gatehouse_signin::remove_source(store, &account, name).await?;
        }
        "CreateAssignment" => {
            let role_arn = p.required("RoleArn")?;
            crate::authorize(ctx, &gh, &gatehouse_signin::assignment_arn(&account, "*"))?;
            crate::authorize(ctx, "iam:PassRole", role_arn)?;
            let spec = AssignmentSpec {
                source: p.required("IdentitySource")?.to_owned(),
                subject: Subject::parse(p.required("Subject")?)?,
                role_arn: role_arn.to_owned(),
                max_session_secs: p.int("MaxSessionDuration", 0, i64::MAX)?,
            };
            let a = gatehouse_signin::assign(store, &account, &spec).await?;
            render_assignment(&mut x, &a);
        }
        "ListAssignments" => {
            crate::authorize(ctx, &gh, &gatehouse_signin::assignment_arn(&account, "*"))?;
            let list = store
                .list_signin_assignments(&account, p.get("IdentitySource"))
                .await?;
            x.wrap("Assignments", |x| {
                for a in &list {
                    x.wrap("member", |x| render_assignment(x, a));
                }
            });
        }
        _ => {
            // DeleteAssignment
            let id = p.required("AssignmentId")?;
            crate::authorize(ctx, &gh, &gatehouse_signin::assignment_arn(&account, id))?;
            gatehouse_signin::unassign(store, &account, id).await?;
        }
    }
    let body = x.finish();
    Ok(xml::response(
        action,
        xml::IAM_NS,
        ctx.request_id,
        (!body.is_empty()).then_some(body.as_str()),
    ))
}
