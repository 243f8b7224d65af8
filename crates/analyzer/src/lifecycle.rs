//! Deprecated models that are still reachable. A model past its provider's end of life fails
//! or, worse, keeps answering with unpatched behaviour; access to it should be gone before
//! the date. Two sources:
//!
//! - AWS: a small committed list of Bedrock foundation models in the Legacy or End-of-Life
//!   state (`data/bedrock-lifecycle.json`, with the AWS documentation page it comes from);
//!   a statement allowing `bedrock:InvokeModel` (or its streaming and Converse forms) on
//!   their ARNs — by name or by a wildcard over `foundation-model/` — is GH-AI-007.
//!   Resource `*` is left to GH-AI-006 (model access not scoped by model), which it already is.
//!   A committed list ages, so the account's own `aws bedrock list-foundation-models` answer
//!   can be added (`--bedrock-models`): its Legacy models count too. The list is a value each
//!   run carries ([`crate::Settings`]), not process-wide state.
//! - Gatehouse: deployments carry an optional deprecation date (`gatehouse model add
//!   --deprecated-on`); who can still invoke one is asked of the engine.

use crate::access::Grant;
use crate::finding::{Finding, Location, Severity};
use crate::model::{Inventory, PrincipalType};
use crate::review::Access;
use gatehouse_policy::{Effect, Evaluation, Request, wildcard_match};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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

/// A list of deprecated Bedrock models: the committed one, and what a run adds to it. A
/// value each run carries (no process-wide state), so two runs in one process cannot see
/// each other's additions.
#[derive(Debug, Clone, Deserialize)]
pub struct BedrockLifecycle {
    /// Where it comes from.
    #[serde(rename = "_source", default)]
    pub source: String,
    /// The models.
    #[serde(default)]
    pub models: Vec<BedrockModel>,
}

impl Default for BedrockLifecycle {
    fn default() -> BedrockLifecycle {
        BedrockLifecycle::committed()
    }
}

impl BedrockLifecycle {
    /// The list compiled into the crate (empty if unreadable, which a test rules out).
    pub fn committed() -> BedrockLifecycle {
        serde_json::from_str(DATA).unwrap_or(BedrockLifecycle {
            source: String::new(),
            models: Vec::new(),
        })
    }

    /// This list with the account's own view of model states (see
    /// [`parse_list_foundation_models`]): a model the account sees as Legacy is deprecated
    /// even if the committed list does not know it yet, and its state there wins.
    /// End-of-life models are no longer listed by AWS, so the committed list keeps them.
    pub fn with_account_models(mut self, current: Vec<BedrockModel>, source: &str) -> Self {
        for m in current {
            self.models.retain(|k| k.id != m.id);
            self.models.push(m);
        }
        self.source = format!("{source}, and {}", self.source);
        self
    }
}

/// Why a `list-foundation-models` answer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ModelListError {
    /// JSON path of what is wrong.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn list_error(path: impl Into<String>, message: impl Into<String>) -> ModelListError {
    ModelListError {
        path: path.into(),
        message: message.into(),
    }
}

/// The Legacy models in the output of `aws bedrock list-foundation-models` (the
/// `ListFoundationModels` answer: `modelSummaries[].modelId` and `.modelLifecycle.status`,
/// `ACTIVE` or `LEGACY`). An error names the JSON path of what is wrong.
pub fn parse_list_foundation_models(bytes: &[u8]) -> Result<Vec<BedrockModel>, ModelListError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| list_error("$", format!("not JSON: {e}")))?;
    let summaries = v
        .get("modelSummaries")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| {
            list_error(
                "$.modelSummaries",
                "missing; expected the output of `aws bedrock list-foundation-models`",
            )
        })?;
    let mut out = Vec::new();
    for (i, m) in summaries.iter().enumerate() {
        let id = m
            .get("modelId")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                list_error(
                    format!("$.modelSummaries[{i}].modelId"),
                    "missing or not a string",
                )
            })?;
        let status = m
            .get("modelLifecycle")
            .and_then(|l| l.get("status"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                list_error(
                    format!("$.modelSummaries[{i}].modelLifecycle.status"),
                    "missing or not a string",
                )
            })?;
        match status {
            "ACTIVE" => {}
            "LEGACY" => out.push(BedrockModel {
                id: id.to_owned(),
                status: "legacy".into(),
            }),
            other => {
                return Err(list_error(
                    format!("$.modelSummaries[{i}].modelLifecycle.status"),
                    format!("unknown state {other:?} (ACTIVE or LEGACY)"),
                ));
            }
        }
    }
    Ok(out)
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

/// The actions that invoke a Gatehouse deployment.
pub const GATEHOUSE_INVOKE: &[&str] = &["ai:InvokeModel", "ai:InvokeModelWithResponseStream"];

/// A deprecated model to ask about, at one resource.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub model: String,
    pub status: String,
    pub resource: String,
}

/// Who may invoke each target with each action, gathered principal by principal (in export
/// order): `grants[target][action]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    grants: Vec<Vec<Vec<Grant>>>,
}

impl Reach {
    /// Adds one principal's answers.
    pub fn add(
        &mut self,
        eval: &Evaluation<'_>,
        who: (PrincipalType, &str, &str),
        targets: &[Target],
        actions: &[&str],
    ) {
        let (kind, name, arn) = who;
        self.grants
            .resize_with(targets.len(), || vec![Vec::new(); actions.len()]);
        for (t, target) in targets.iter().enumerate() {
            for (a, action) in actions.iter().enumerate() {
                let req = Request::new(arn, *action, target.resource.as_str());
                if let Some(g) = crate::access::grant(eval, kind, name, arn, &req) {
                    self.grants[t][a].push(g);
                }
            }
        }
    }

    /// Appends the answers of the principals that follow.
    pub fn extend(&mut self, later: Reach) {
        if self.grants.is_empty() {
            self.grants = later.grants;
            return;
        }
        for (mine, theirs) in self.grants.iter_mut().zip(later.grants) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.extend(t);
            }
        }
    }

    /// Each target with its invokers, action by action (a principal allowed several actions
    /// is one row listing them); targets nobody may invoke are kept when `keep_unreached`.
    pub fn models(
        self,
        targets: Vec<Target>,
        actions: &[&str],
        keep_unreached: bool,
    ) -> Vec<DeprecatedModel> {
        let mut grants = self.grants.into_iter();
        let mut out = Vec::new();
        for t in targets {
            let per_action = grants.next().unwrap_or_default();
            let mut invokers: Vec<Access> = Vec::new();
            for (action, list) in actions.iter().zip(per_action) {
                for g in list {
                    if let Some(a) = invokers.iter_mut().find(|a| a.principal == g.arn) {
                        a.actions.push((*action).to_owned());
                        continue;
                    }
                    invokers.push(Access {
                        principal: g.arn,
                        actions: vec![(*action).to_owned()],
                        resource: t.resource.clone(),
                        when: if g.conditions.is_empty() {
                            "always".into()
                        } else {
                            format!("if {}", g.conditions.join(" and "))
                        },
                        through: g.through,
                    });
                }
            }
            if keep_unreached || !invokers.is_empty() {
                out.push(DeprecatedModel {
                    model: t.model,
                    status: t.status,
                    resource: t.resource,
                    invokers,
                });
            }
        }
        out
    }
}

/// Regions an inventory's own Bedrock resource patterns name.
pub(crate) fn regions(inv: &Inventory) -> BTreeSet<String> {
    inv.own_policies()
        .iter()
        .flat_map(|p| &p.document.statements)
        .filter_map(|s| s.resource.as_ref())
        .flat_map(|r| &r.patterns)
        .filter(|p| p.starts_with("arn:aws:bedrock:"))
        .filter_map(|p| p.split(':').nth(3))
        .filter(|r| !r.is_empty() && !r.contains(['*', '?']))
        .map(str::to_owned)
        .collect()
}

/// The deprecated Bedrock models to ask about: every model of the list in each region the
/// export names (`us-east-1` when it names none).
pub(crate) fn bedrock_targets(
    lifecycle: &BedrockLifecycle,
    regions: &BTreeSet<String>,
) -> Vec<Target> {
    let default = BTreeSet::from(["us-east-1".to_owned()]);
    let regions = if regions.is_empty() {
        &default
    } else {
        regions
    };
    regions
        .iter()
        .flat_map(|region| {
            lifecycle.models.iter().map(move |m| Target {
                model: m.id.clone(),
                status: m.status.clone(),
                resource: format!("arn:aws:bedrock:{region}::foundation-model/{}", m.id),
            })
        })
        .collect()
}

/// Gatehouse deployments with a deprecation date (`today` is `YYYY-MM-DD`).
pub(crate) fn gatehouse_targets(
    deployments: &[DeployedModel],
    region: &str,
    today: &str,
) -> Vec<Target> {
    deployments
        .iter()
        .map(|d| Target {
            model: d.model.clone(),
            status: if d.deprecated_on.as_str() <= today {
                format!("deprecated since {}", d.deprecated_on)
            } else {
                format!("deprecated on {} (upcoming)", d.deprecated_on)
            },
            resource: format!("arn:gatehouse:ai:{region}:{}:model/{}", d.account, d.model),
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
pub(crate) fn check(inv: &Inventory, lifecycle: &BedrockLifecycle, out: &mut Vec<Finding>) {
    let models = &lifecycle.models;
    for pol in inv.own_policies() {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn list_foundation_models_gives_its_legacy_models() {
        let answer = br#"{"modelSummaries": [
            {"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
             "modelId": "amazon.titan-text-lite-v1", "modelLifecycle": {"status": "LEGACY"}},
            {"modelId": "anthropic.claude-sonnet-4-5-20250929-v1:0", "modelLifecycle": {"status": "ACTIVE"}}]}"#;
        let got = parse_list_foundation_models(answer).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].id.as_str(), got[0].status.as_str()),
            ("amazon.titan-text-lite-v1", "legacy")
        );
        let err = |b: &[u8]| parse_list_foundation_models(b).unwrap_err().to_string();
        assert!(err(b"[]").starts_with("$.modelSummaries: missing"));
        assert!(
            err(br#"{"modelSummaries":[{"modelId":"m"}]}"#)
                .starts_with("$.modelSummaries[0].modelLifecycle.status")
        );
        assert!(
            err(br#"{"modelSummaries":[{"modelId":"m","modelLifecycle":{"status":"GONE"}}]}"#)
                .contains("unknown state \"GONE\"")
        );
        assert!(err(b"{").starts_with("$: not JSON"));
    }

    #[test]
    fn the_committed_list_reads() {
        let l = BedrockLifecycle::committed();
        assert!(l.models.len() >= 10);
        assert!(l.source.contains("docs.aws.amazon.com"));
    }
}
