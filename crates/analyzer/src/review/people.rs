//! The review by person — "who can invoke models, anywhere?". Each cloud names the holder of
//! a grant its own way: AWS by ARN, Azure by user principal name (or a group), GCP by
//! `user:`/`group:` member, Gatehouse's own store like AWS. People are joined by the
//! identifiers the exports carry (an email or UPN, lower-cased); the people behind an IAM
//! Identity Center role come from Identity Center's assignments and identity store
//! ([`super::identity_center`]); what no export says — the members of other groups, the
//! people behind an IAM user without an email name or behind a federated role — comes from a
//! directory file the user supplies ([`Directory`]). A grant whose holder resolves to no
//! person is listed as unmatched, never dropped.

use super::Review;
use crate::model::Inventory;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Who is who where the exports do not say (the `--groups` file, JSON):
///
/// ```json
/// {
///   "groups": { "ml-team@example.com": ["alice@example.com", "group:interns@example.com"] },
///   "identities": {
///     "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Invoke_0a1b": ["group:ml-team@example.com"],
///     "arn:aws:iam::111122223333:user/deploy-bot": []
///   }
/// }
/// ```
///
/// A member is `user:EMAIL`, `group:ID` or a bare email (a user). `groups` gives each
/// group's members (groups may hold groups); `identities` the people or groups behind a
/// cloud identity (an AWS ARN, an Azure principal name, a GCP member), overriding what its
/// name suggests. Names compare case-insensitively.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Group → members.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Cloud identity → the members behind it.
    #[serde(default)]
    pub identities: BTreeMap<String, Vec<String>>,
    /// (account, permission set lower-cased) → the members assigned it in IAM Identity
    /// Center ([`super::identity_center::IdentityCenter::add_to`]; not part of the file).
    #[serde(skip)]
    pub permission_sets: BTreeMap<(String, String), Vec<String>>,
}

/// Why a directory file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct DirectoryError {
    /// The file.
    pub file: String,
    /// What is wrong, with line and column.
    pub message: String,
}

impl Directory {
    /// Parses a directory file.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Directory, DirectoryError> {
        let d: Directory = serde_json::from_slice(bytes).map_err(|e| DirectoryError {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Directory {
            groups: lower_keys(d.groups),
            identities: lower_keys(d.identities),
            permission_sets: BTreeMap::new(),
        })
    }

    /// The people a member stands for, and the groups it went through (cycle-safe).
    fn people(&self, member: &str, via: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        let member = member.trim().to_ascii_lowercase();
        if let Some(group) = member.strip_prefix("group:") {
            if via.iter().any(|g| g == group) {
                return;
            }
            via.push(group.to_owned());
            for m in self.groups.get(group).into_iter().flatten() {
                self.people(m, via, out);
            }
            via.pop();
        } else {
            let user = member.strip_prefix("user:").unwrap_or(&member);
            out.push((user.to_owned(), via.clone()));
        }
    }
}

fn lower_keys(m: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    m.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// One grant of model access, as a person holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PersonGrant {
    /// `aws`, `gatehouse`, `azure` or `gcp`.
    pub cloud: &'static str,
    /// `invoke` or `manage`.
    pub access: &'static str,
    /// The models: a resource pattern (AWS) or the scope the grant applies at.
    pub models: String,
    /// The cloud identity holding the grant (ARN, principal name, member).
    pub identity: String,
    /// The grant: policy statements, role assignment or binding.
    pub through: String,
    /// The groups the person holds it through, outermost first (empty: directly).
    pub via: Vec<String>,
}

/// A person and every grant they hold.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// The person (an email or UPN, lower-cased).
    pub person: String,
    /// Their grants, by cloud.
    pub grants: Vec<PersonGrant>,
}

/// The review by person.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ByPerson {
    /// Every person holding a grant.
    pub people: Vec<Person>,
    /// Grants whose holder resolves to no person (service identities, groups without
    /// known members, roles nobody was named behind).
    pub unmatched: Vec<PersonGrant>,
}

/// Azure built-in roles that invoke models (data actions on Azure OpenAI / AI services).
const AZURE_INVOKE: &[&str] = &[
    "cognitive services openai user",
    "cognitive services openai contributor",
    "cognitive services user",
    "azure ai user",
    "azure ai developer",
];
/// Azure built-in roles that manage model deployments (or everything).
const AZURE_MANAGE: &[&str] = &[
    "owner",
    "contributor",
    "cognitive services contributor",
    "cognitive services openai contributor",
    "azure ai developer",
    "azure ai administrator",
];
/// GCP predefined roles that invoke Vertex AI models.
const GCP_INVOKE: &[&str] = &[
    "roles/aiplatform.user",
    "roles/aiplatform.admin",
    "roles/owner",
    "roles/editor",
];
/// GCP predefined roles that manage Vertex AI models and endpoints.
const GCP_MANAGE: &[&str] = &["roles/aiplatform.admin", "roles/owner", "roles/editor"];

/// What a custom role's permissions allow of models: (invoke, manage).
fn custom_access<'a>(
    perms: impl Iterator<Item = &'a str>,
    invoke: &str,
    manage: &[&str],
) -> (bool, bool) {
    let mut out = (false, false);
    for p in perms {
        let p = p.to_ascii_lowercase();
        let wild = p.ends_with('*') && invoke.starts_with(p.trim_end_matches('*'));
        out.0 |= p == invoke || wild || p == "*";
        out.1 |= manage.iter().any(|m| p.starts_with(m)) || p == "*";
    }
    out
}

/// Collects grants from reviews of AWS exports or of Gatehouse's store (each with its cloud,
/// `aws` or `gatehouse`) and from Azure/GCP inventories, and resolves their holders.
pub fn by_person(
    reviews: &[(&'static str, &Review)],
    others: &[&Inventory],
    dir: &Directory,
) -> ByPerson {
    let mut grants: Vec<(Vec<String>, PersonGrant)> = Vec::new();
    let mut push =
        |members: Vec<String>, cloud, access, models: &str, identity: &str, through: String| {
            grants.push((
                members,
                PersonGrant {
                    cloud,
                    access,
                    models: models.to_owned(),
                    identity: identity.to_owned(),
                    through,
                    via: Vec::new(),
                },
            ));
        };
    for (cloud, r) in reviews {
        let invokers = r.model_invocation.iter().flat_map(|m| {
            m.invokers
                .iter()
                .map(move |a| ("invoke", m.models.as_str(), a))
        });
        let managers = r
            .guardrail_changes
            .iter()
            .map(|a| ("manage", a.resource.as_str(), a));
        for (access, models, a) in invokers.chain(managers) {
            push(
                aws_members(dir, &a.principal),
                cloud,
                access,
                models,
                &a.principal,
                a.through.join("; "),
            );
        }
    }
    let azure_custom: BTreeMap<String, (bool, bool)> = others
        .iter()
        .flat_map(|i| &i.azure_roles)
        .map(|r| {
            let perms = r.actions.iter().chain(&r.data_actions).map(|l| l.value.as_str());
            (
                r.name.to_ascii_lowercase(),
                custom_access(
                    perms,
                    "microsoft.cognitiveservices/accounts/openai/deployments/chat/completions/action",
                    &["microsoft.cognitiveservices/accounts/deployments/write", "microsoft.cognitiveservices/*"],
                ),
            )
        })
        .collect();
    let gcp_custom: BTreeMap<String, (bool, bool)> = others
        .iter()
        .flat_map(|i| &i.gcp_roles)
        .map(|r| {
            (
                r.name.to_ascii_lowercase(),
                custom_access(
                    r.permissions.iter().map(|l| l.value.as_str()),
                    "aiplatform.endpoints.predict",
                    &[
                        "aiplatform.endpoints.deploy",
                        "aiplatform.endpoints.create",
                        "aiplatform.models.upload",
                    ],
                ),
            )
        })
        .collect();
    for inv in others {
        for a in &inv.azure_assignments {
            let role = a.role.to_ascii_lowercase();
            let (invoke, manage) = azure_custom.get(&role).copied().unwrap_or((
                AZURE_INVOKE.contains(&role.as_str()),
                AZURE_MANAGE.contains(&role.as_str()),
            ));
            let members = dir
                .identities
                .get(&a.principal.to_ascii_lowercase())
                .cloned()
                .unwrap_or_else(|| match a.principal_type.to_ascii_lowercase().as_str() {
                    "user" => vec![format!("user:{}", a.principal)],
                    "group" => vec![format!("group:{}", a.principal)],
                    _ => Vec::new(),
                });
            let through = format!(
                "role assignment `{}` at `{}` ({} {})",
                a.role, a.scope, inv.file, a.path
            );
            for (yes, access) in [(invoke, "invoke"), (manage, "manage")] {
                if yes {
                    push(
                        members.clone(),
                        "azure",
                        access,
                        &a.scope,
                        &a.principal,
                        through.clone(),
                    );
                }
            }
        }
        for b in &inv.gcp_bindings {
            let role = b.role.to_ascii_lowercase();
            let custom = role.rsplit('/').next().and_then(|n| {
                gcp_custom.get(&role).or_else(|| {
                    gcp_custom
                        .iter()
                        .find(|(k, _)| k.ends_with(&format!("/{n}")))
                        .map(|(_, v)| v)
                })
            });
            let (invoke, manage) = custom.copied().unwrap_or((
                GCP_INVOKE.contains(&role.as_str()),
                GCP_MANAGE.contains(&role.as_str()),
            ));
            let scope = b.scope.clone().unwrap_or_else(|| inv.file.clone());
            let cond = b
                .condition
                .as_deref()
                .map(|c| format!(" if `{c}`"))
                .unwrap_or_default();
            let through = format!(
                "binding `{}` on `{scope}`{cond} ({} {})",
                b.role, inv.file, b.path
            );
            for member in &b.members {
                let lower = member.to_ascii_lowercase();
                let members = dir.identities.get(&lower).cloned().unwrap_or_else(|| {
                    if lower.starts_with("user:") || lower.starts_with("group:") {
                        vec![lower.clone()]
                    } else {
                        Vec::new()
                    }
                });
                for (yes, access) in [(invoke, "invoke"), (manage, "manage")] {
                    if yes {
                        push(
                            members.clone(),
                            "gcp",
                            access,
                            &scope,
                            member,
                            through.clone(),
                        );
                    }
                }
            }
        }
    }
    resolve(dir, grants)
}

/// The members behind an AWS (or Gatehouse) principal: those the directory names and those
/// assigned an IAM Identity Center role's permission set (both: neither source is the whole
/// story), else an IAM user named by email.
fn aws_members(dir: &Directory, arn: &str) -> Vec<String> {
    let named = dir.identities.get(&arn.to_ascii_lowercase());
    let assigned =
        super::identity_center::permission_set_role(arn).and_then(|k| dir.permission_sets.get(&k));
    if named.is_some() || assigned.is_some() {
        return named
            .into_iter()
            .chain(assigned)
            .flatten()
            .cloned()
            .collect();
    }
    match arn.split_once(":user/") {
        Some((_, name)) => {
            let name = name.rsplit('/').next().unwrap_or(name);
            if name.contains('@') {
                vec![format!("user:{name}")]
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    }
}

fn resolve(dir: &Directory, grants: Vec<(Vec<String>, PersonGrant)>) -> ByPerson {
    let mut people: BTreeMap<String, BTreeSet<PersonGrant>> = BTreeMap::new();
    let mut unmatched = BTreeSet::new();
    for (members, grant) in grants {
        let mut found = Vec::new();
        for m in &members {
            dir.people(m, &mut Vec::new(), &mut found);
        }
        if found.is_empty() {
            unmatched.insert(grant);
            continue;
        }
        for (person, via) in found {
            people.entry(person).or_default().insert(PersonGrant {
                via,
                ..grant.clone()
            });
        }
    }
    ByPerson {
        people: people
            .into_iter()
            .map(|(person, g)| Person {
                person,
                grants: g.into_iter().collect(),
            })
            .collect(),
        unmatched: unmatched.into_iter().collect(),
    }
}

impl ByPerson {
    /// Markdown: one table per person, then the unmatched grants.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::from("# Who can invoke or manage models, by person\n\n");
        let row = |s: &mut String, g: &PersonGrant| {
            let via = if g.via.is_empty() {
                "directly".to_owned()
            } else {
                g.via.join(" → ")
            };
            let cells = [g.cloud, g.access, &g.models, &g.identity, &g.through, &via];
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        };
        const HEAD: &str =
            "| Cloud | Access | Models | Identity | Through | Via |\n|---|---|---|---|---|---|\n";
        for p in &self.people {
            let _ = writeln!(s, "## {}\n", p.person);
            s.push_str(HEAD);
            for g in &p.grants {
                row(&mut s, g);
            }
            s.push('\n');
        }
        s.push_str("## Unmatched identities\n\n");
        if self.unmatched.is_empty() {
            s.push_str("None.\n");
        } else {
            s.push_str(HEAD);
            for g in &self.unmatched {
                row(&mut s, g);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn groups_expand_through_groups_without_looping() {
        let d = Directory::parse(
            "g.json",
            br#"{"groups": {"A@x": ["group:b@x", "carol@x"], "b@x": ["user:Dan@x", "group:a@x"]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        d.people("group:a@x", &mut Vec::new(), &mut out);
        assert_eq!(
            out,
            vec![
                ("dan@x".to_owned(), vec!["a@x".to_owned(), "b@x".to_owned()]),
                ("carol@x".to_owned(), vec!["a@x".to_owned()]),
            ]
        );
        assert!(
            Directory::parse("g.json", br#"{"group": {}}"#)
                .unwrap_err()
                .to_string()
                .starts_with("g.json: unknown field `group`")
        );
    }
}
