//! The gateway's control plane: Query API actions on the same endpoint as IAM (form POST,
//! SigV4, XML), each authorized by policy like any IAM action — `ai:CreateDeployment`,
//! `UpdateDeployment`, `DeleteDeployment` on `deployment/MODEL`, and
//! `ai:CreateGuardrail`/`UpdateGuardrail`/`DeleteGuardrail`/`GetGuardrail` on
//! `guardrail/MODEL` (a deployment has at most one guardrail, named after its model).
//! Provider keys go in (`ApiKey`) but never come out.

use super::guardrail::Guardrail;
use crate::CallContext;
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::{self, Xml};
use gatehouse_store::{Deployment, NewDeployment, Secret};

/// The XML namespace of `ai` responses.
pub const AI_NS: &str = "https://gatehouse.invalid/doc/ai/2024-01-01/";

const ACTIONS: &[&str] = &[
    "CreateDeployment",
    "UpdateDeployment",
    "DeleteDeployment",
    "GetDeployment",
    "CreateGuardrail",
    "UpdateGuardrail",
    "DeleteGuardrail",
    "GetGuardrail",
];

/// True for an `ai` control-plane action.
pub fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// True for actions that change what is stored.
pub fn is_write(action: &str) -> bool {
    !action.starts_with("Get")
}

/// `arn:gatehouse:ai:REGION:ACCOUNT:TYPE/ID`.
pub fn ai_arn(region: &str, account: &str, kind: &str, id: &str) -> String {
    format!(
        "arn:{}:ai:{region}:{account}:{kind}/{id}",
        gatehouse_store::PARTITION
    )
}

fn render_deployment(x: &mut Xml, d: &Deployment, region: &str) {
    x.wrap("Deployment", |x| {
        x.elem("ModelId", &d.model_id)
            .elem(
                "Arn",
                &ai_arn(region, &d.account_id, "deployment", &d.model_id),
            )
            .elem("Provider", &d.provider)
            .elem("BaseUrl", &d.base_url)
            .opt("UpstreamModel", d.upstream_model.as_deref())
            .opt("DeprecatedOn", d.deprecated_on.as_deref())
            .elem("HasApiKey", if d.has_key { "true" } else { "false" })
            .elem(
                "LogInvocations",
                if d.log_invocations { "true" } else { "false" },
            )
            .elem("UpdateDate", &d.updated.to_rfc3339());
    });
}

/// Runs an `ai` action and wraps its result in the Query API envelope.
pub async fn dispatch(ctx: &CallContext<'_>, action: &str, p: &Params) -> Result<String, ApiError> {
    let state = ctx.state;
    let region = state.config.region.as_str();
    let account = ctx.account();
    let model = p.required("ModelId")?;
    gatehouse_store::validate_model_id(model).map_err(ApiError::from)?;
    let mut x = Xml::new();
    match action {
        "CreateDeployment" | "UpdateDeployment" => {
            let create = action == "CreateDeployment";
            crate::authorize(
                ctx,
                &format!("ai:{action}"),
                &ai_arn(region, account, "deployment", model),
            )?;
            let existing = if create {
                None
            } else {
                Some(ctx.store.get_deployment(account, model).await?)
            };
            let d = NewDeployment {
                model_id: model.to_owned(),
                base_url: match (p.get("BaseUrl"), &existing) {
                    (Some(u), _) => u.to_owned(),
                    (None, Some(e)) => e.base_url.clone(),
                    (None, None) => p.required("BaseUrl")?.to_owned(),
                },
                provider: p
                    .get("Provider")
                    .map(str::to_owned)
                    .or_else(|| existing.as_ref().map(|e| e.provider.clone()))
                    .unwrap_or_else(|| "openai-compatible".to_owned()),
                upstream_model: p
                    .get("UpstreamModel")
                    .map(str::to_owned)
                    .or_else(|| existing.as_ref().and_then(|e| e.upstream_model.clone())),
                api_key: p.get("ApiKey").map(Secret::new),
                clear_api_key: p.bool("ClearApiKey")?.unwrap_or(false),
                log_invocations: p
                    .bool("LogInvocations")?
                    .or(existing.as_ref().map(|e| e.log_invocations))
                    .unwrap_or(false),
                // An empty value clears the date.
                deprecated_on: match p.get("DeprecatedOn") {
                    Some("") => None,
                    Some(d) => Some(d.to_owned()),
                    None => existing.as_ref().and_then(|e| e.deprecated_on.clone()),
                },
            };
            state
                .gateway
                .upstream
                .check_url(&d.base_url)
                .await
                .map_err(|e| ApiError::validation(format!("BaseUrl: {e}")))?;
            let saved = ctx.store.put_deployment(account, &d, create).await?;
            render_deployment(&mut x, &saved, region);
        }
        "DeleteDeployment" => {
            crate::authorize(
                ctx,
                "ai:DeleteDeployment",
                &ai_arn(region, account, "deployment", model),
            )?;
            ctx.store.delete_deployment(account, model).await?;
        }
        "GetDeployment" => {
            crate::authorize(ctx, "ai:GetModel", &ai_arn(region, account, "model", model))?;
            let d = ctx.store.get_deployment(account, model).await?;
            render_deployment(&mut x, &d, region);
        }
        "CreateGuardrail" | "UpdateGuardrail" => {
            crate::authorize(
                ctx,
                &format!("ai:{action}"),
                &ai_arn(region, account, "guardrail", model),
            )?;
            let text = p.required("Guardrail")?;
            let g = Guardrail::parse(text).map_err(ApiError::validation)?;
            // Store the normalised form, so that Get shows what is enforced.
            let json = serde_json::to_string(g.spec()).map_err(|_| ApiError::internal())?;
            ctx.store
                .set_deployment_guardrail(account, model, Some(&json), action == "CreateGuardrail")
                .await?;
            x.elem("Guardrail", &json);
        }
        "DeleteGuardrail" => {
            crate::authorize(
                ctx,
                "ai:DeleteGuardrail",
                &ai_arn(region, account, "guardrail", model),
            )?;
            ctx.store
                .set_deployment_guardrail(account, model, None, false)
                .await?;
        }
        "GetGuardrail" => {
            crate::authorize(
                ctx,
                "ai:GetGuardrail",
                &ai_arn(region, account, "guardrail", model),
            )?;
            let d = ctx.store.get_deployment(account, model).await?;
            let Some(g) = d.guardrail else {
                return Err(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "NoSuchEntity",
                    format!("The guardrail with name {model} cannot be found."),
                ));
            };
            x.elem("Guardrail", &g);
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    let body = x.finish();
    Ok(xml::response(
        action,
        AI_NS,
        ctx.request_id,
        if body.is_empty() { None } else { Some(&body) },
    ))
}
