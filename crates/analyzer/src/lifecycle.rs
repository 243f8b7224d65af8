//! Deprecated models that are still reachable. A model past its provider's end of life fails
//! or, worse, keeps answering with unpatched behaviour; access to it should be gone before
//! the date. Two sources:
//!
//! - AWS: a small committed list of Bedrock foundation models in the Legacy or End-of-Life
//!   state (`data/bedrock-lifecycle.json`, with the AWS documentation page it comes from);
//!   a statement allowing `bedrock:InvokeModel` (or its streaming and Converse forms) on
//!   their ARNs — by name or by a wildcard over `foundation-model/` — is GH-AI-007.
//!   Resource `*` is left to GH-AI-006 (model access not scoped by model), which it already is.
//! - Gatehouse: deployments carry an optional deprecation date (`gatehouse model add
//!   --deprecated-on`); who can still invoke one is asked of the engine.

use crate::access::Directory;
use crate::finding::{Finding, Location, Severity};
use crate::model::Inventory;
use crate::review::Access;
use gatehouse_policy::{Context, Effect, wildcard_match};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const DATA: &str = include_str!("../data/bedrock-lifecycle.json");

/// Actions that invoke a Bedrock model.
pub const BEDROCK_INVOKE: &[&str] = &[
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:Converse",
    "bedrock:ConverseStream",
];

/// One deprecated Bedrock model.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BedrockModel {
    /// The model id, e.g. `anthropic.claude-v2`.
    pub id: String,
    /// `legacy` or `eol`.
    pub status: String,
}

/// The committed list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BedrockLifecycle {
    /// Where it comes from.
    #[serde(rename = "_source", default)]
    pub source: String,
    /// The models.
    #[serde(default)]
    pub models: Vec<BedrockModel>,
}

impl BedrockLifecycle {
    /// The list compiled into the crate (empty if unreadable, which a test rules out).
    pub fn get() -> &'static BedrockLifecycle {
        static CELL: OnceLock<BedrockLifecycle> = OnceLock::new();
        CELL.get_or_init(|| serde_json::from_str(DATA).unwrap_or_default())
    }
}

/// A deprecated model and who can still invoke it.
#[derive(Debug, Clone, Serialize)]
pub struct DeprecatedModel {
    /// The model id.
    pub model: String,
    /// `legacy`, `eol`, `deprecated since DATE` or `deprecated on DATE (upcoming)`.
    pub status: String,
    /// The resource asked about.
    pub resource: String,
    /// Who can invoke it, and through which policy.
    pub invokers: Vec<Access>,
}

/// A Gatehouse deployment with a deprecation date.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedModel {
    /// The owning account.
    pub account: String,
    /// The model id.
    pub model: String,
    /// `YYYY-MM-DD`.
    pub deprecated_on: String,
}

fn invokers(dir: &Directory, actions: &[&str], resource: &str) -> Vec<Access> {
    let mut out: Vec<Access> = Vec::new();
    for action in actions {
        for g in dir.who_can(action, resource, &Context::default()) {
            if let Some(a) = out.iter_mut().find(|a| a.principal == g.arn) {
                a.actions.push((*action).to_owned());
                continue;
            }
            out.push(Access {
                principal: g.arn,
                actions: vec![(*action).to_owned()],
                resource: resource.to_owned(),
                when: if g.conditions.is_empty() {
                    "always".into()
                } else {
                    format!("if {}", g.conditions.join(" and "))
                },
                through: g.through,
            });
        }
    }
    out
}

/// Regions to ask about: those the export's Bedrock resource patterns name, else `us-east-1`.
fn regions(inv: &Inventory) -> Vec<String> {
    let mut out: Vec<String> = inv
        .aws_policies
        .iter()
        .flat_map(|p| &p.document.statements)
        .filter_map(|s| s.resource.as_ref())
        .flat_map(|r| &r.patterns)
        .filter(|p| p.starts_with("arn:aws:bedrock:"))
        .filter_map(|p| p.split(':').nth(3))
        .filter(|r| !r.is_empty() && !r.contains(['*', '?']))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push("us-east-1".into());
    }
    out
}

/// Deprecated Bedrock models reachable in an AWS export, with their invokers.
pub fn bedrock_reachable(dir: &Directory) -> Vec<DeprecatedModel> {
    let mut out = Vec::new();
    for region in regions(dir.inventory()) {
        for m in &BedrockLifecycle::get().models {
            let resource = format!("arn:aws:bedrock:{region}::foundation-model/{}", m.id);
            let who = invokers(dir, BEDROCK_INVOKE, &resource);
            if !who.is_empty() {
                out.push(DeprecatedModel {
                    model: m.id.clone(),
                    status: m.status.clone(),
                    resource,
                    invokers: who,
                });
            }
        }
    }
    out
}

/// Deprecated Gatehouse deployments with who can still invoke them (`today` is `YYYY-MM-DD`).
pub fn gatehouse_reachable(
    dir: &Directory,
    deployments: &[DeployedModel],
    region: &str,
    today: &str,
) -> Vec<DeprecatedModel> {
    deployments
        .iter()
        .map(|d| {
            let resource = format!("arn:gatehouse:ai:{region}:{}:model/{}", d.account, d.model);
            DeprecatedModel {
                model: d.model.clone(),
                status: if d.deprecated_on.as_str() <= today {
                    format!("deprecated since {}", d.deprecated_on)
                } else {
                    format!("deprecated on {} (upcoming)", d.deprecated_on)
                },
                invokers: invokers(
                    dir,
                    &["ai:InvokeModel", "ai:InvokeModelWithResponseStream"],
                    &resource,
                ),
                resource,
            }
        })
        .collect()
}

/// GH-AI-007 for a store: deployments past their date that someone may still invoke.
pub(crate) fn gatehouse_findings(file: &str, reachable: &[DeprecatedModel]) -> Vec<Finding> {
    reachable
        .iter()
        .filter(|m| m.status.starts_with("deprecated since"))
        .flat_map(|m| {
            m.invokers.iter().map(move |a| {
                Finding::new(
                    "GH-AI-007",
                    format!(
                        "{} may still invoke model {} ({}) through {}",
                        a.principal,
                        m.model,
                        m.status,
                        a.through.join("; ")
                    ),
                    Location {
                        entity: Some(a.principal.clone()),
                        policy: a
                            .through
                            .first()
                            .and_then(|t| t.split('`').nth(1))
                            .map(str::to_owned),
                        ..Location::at(file, format!("deployment {}", m.model))
                    },
                )
            })
        })
        .collect()
}

/// GH-AI-007 for AWS policies: statements allowing Bedrock invocation on deprecated models'
/// ARNs, by name (medium) or by a `foundation-model/` wildcard (low).
pub(crate) fn check(inv: &Inventory, out: &mut Vec<Finding>) {
    let models = &BedrockLifecycle::get().models;
    for pol in &inv.aws_policies {
        for (i, st) in pol.document.statements.iter().enumerate() {
            if st.effect != Effect::Allow || st.action.negated {
                continue;
            }
            let invokes = st.action.patterns.iter().any(|p| {
                BEDROCK_INVOKE
                    .iter()
                    .any(|a| wildcard_match(&p.to_ascii_lowercase(), &a.to_ascii_lowercase()))
            });
            let Some(res) = st.resource.as_ref().filter(|r| !r.negated) else {
                continue;
            };
            if !invokes {
                continue;
            }
            for pattern in res
                .patterns
                .iter()
                .filter(|p| p.contains("foundation-model/"))
            {
                let hit: Vec<&BedrockModel> = models
                    .iter()
                    .filter(|m| {
                        let arn = format!("arn:aws:bedrock:us-east-1::foundation-model/{}", m.id);
                        let any_region = pattern
                            .split(':')
                            .enumerate()
                            .map(|(n, seg)| if n == 3 { "*" } else { seg })
                            .collect::<Vec<_>>()
                            .join(":");
                        wildcard_match(&any_region, &arn)
                    })
                    .collect();
                if hit.is_empty() {
                    continue;
                }
                let explicit = !pattern.contains(['*', '?']);
                let mut names: Vec<String> = hit
                    .iter()
                    .take(5)
                    .map(|m| format!("{} ({})", m.id, m.status))
                    .collect();
                if hit.len() > names.len() {
                    names.push(format!("and {} more", hit.len() - names.len()));
                }
                let f = Finding::new(
                    "GH-AI-007",
                    format!(
                        "`{pattern}` allows invoking deprecated Bedrock model(s): {}",
                        names.join(", ")
                    ),
                    Location {
                        entity: pol.owner.clone(),
                        policy: Some(pol.name.clone()),
                        statement: Some(pol.statement_label(i)),
                        ..Location::at(&inv.file, pol.statement_path(i))
                    },
                );
                out.push(if explicit {
                    f
                } else {
                    f.with_severity(Severity::Low)
                });
            }
        }
    }
}
