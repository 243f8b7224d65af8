//! The STS Query API (Version 2011-06-15). `GetCallerIdentity` for now; the token service
//! (AssumeRole, web identity, MFA sessions) builds on this module.

use crate::CallContext;
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::{self, Xml};

const ACTIONS: &[&str] = &["GetCallerIdentity"];

/// True for an STS action this API answers.
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Runs an STS action and wraps its result in AWS's envelope.
pub(crate) async fn dispatch(
    ctx: &CallContext<'_>,
    action: &str,
    _p: &Params,
) -> Result<String, ApiError> {
    let result = match action {
        // GetCallerIdentity needs no permission, as in AWS.
        "GetCallerIdentity" => {
            let user_id = match &ctx.principal {
                Some(p) => p.info.principal_id.clone(),
                None => ctx.account().to_owned(),
            };
            let mut x = Xml::new();
            x.elem("Arn", &ctx.caller_arn)
                .elem("UserId", &user_id)
                .elem("Account", ctx.account());
            x.finish()
        }
        other => return Err(ApiError::invalid_action(other)),
    };
    Ok(xml::response(
        action,
        xml::STS_NS,
        ctx.request_id,
        Some(&result),
    ))
}
