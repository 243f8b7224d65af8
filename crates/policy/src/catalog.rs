//! The catalog of services, actions, resource types and condition keys (`catalog.json`).
//!
//! Data, not code: the validator, the analyzer and the docs read the same file. The engine
//! itself never consults it; a policy for a service the catalog does not know evaluates
//! exactly as AWS would evaluate it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The catalog shipped with Gatehouse (`ai`, `iam`, `sts` and AWS's global condition keys).
pub const BUILTIN_CATALOG: &str = include_str!("../catalog/catalog.json");

/// A catalog of services.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalog {
    /// Where the data came from.
    #[serde(default)]
    pub source: String,
    /// Condition keys valid in every service, e.g. `aws:SourceIp`.
    pub global_condition_keys: BTreeMap<String, ConditionKeyInfo>,
    /// Services by prefix (`ai`, `iam`, ...).
    pub services: BTreeMap<String, Service>,
}

/// One service.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Display name.
    pub name: String,
    /// Actions by name (as AWS capitalises them).
    pub actions: BTreeMap<String, ActionInfo>,
    /// Resource types and their ARN templates.
    pub resource_types: BTreeMap<String, String>,
    /// Service-specific condition keys.
    pub condition_keys: BTreeMap<String, ConditionKeyInfo>,
}

/// One action.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionInfo {
    /// AWS access level: `List`, `Read`, `Write`, `Permissions management`, `Tagging`.
    pub access: String,
    /// Resource types the action can be scoped to (empty: only `*`).
    pub resources: Vec<String>,
    /// Condition keys the action supports.
    pub condition_keys: Vec<String>,
}

/// One condition key.
#[derive(Debug, Clone, Deserialize)]
pub struct ConditionKeyInfo {
    /// AWS's type name: `String`, `ArrayOfString`, `Numeric`, `Bool`, `Date`, `IPAddress`, `ARN`...
    #[serde(rename = "type")]
    pub key_type: String,
}

impl ConditionKeyInfo {
    /// True for keys that carry a list of values (`ArrayOf...`).
    pub fn is_multivalued(&self) -> bool {
        self.key_type.starts_with("ArrayOf")
    }
}

/// An error reading a catalog file.
#[derive(Debug, thiserror::Error)]
#[error("invalid catalog: {0}")]
pub struct CatalogError(#[from] serde_json::Error);

impl Catalog {
    /// Parses a catalog file.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The built-in catalog, parsed once.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_json(BUILTIN_CATALOG).unwrap_or_else(|_| Catalog {
                source: "empty (the built-in catalog failed to parse)".into(),
                global_condition_keys: BTreeMap::new(),
                services: BTreeMap::new(),
            })
        })
    }

    /// A service by prefix (case-insensitive).
    pub fn service(&self, prefix: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(prefix))
            .map(|(_, s)| s)
    }

    /// An action by `service:Name` (case-insensitive), with its canonical name.
    pub fn action(&self, action: &str) -> Option<(&str, &ActionInfo)> {
        let (svc, name) = action.split_once(':')?;
        self.service(svc)?
            .actions
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, a)| (n.as_str(), a))
    }

    /// Information about a condition key: global or of a service; keys with a
    /// `${TagKey}`-style suffix in the catalog match any suffix.
    pub fn condition_key(&self, key: &str) -> Option<&ConditionKeyInfo> {
        if let Some(v) = self
            .global_condition_keys
            .iter()
            .find(|(k, _)| key_matches(k, key))
        {
            return Some(v.1);
        }
        let svc = key.split_once(':')?.0;
        self.service(svc)?
            .condition_keys
            .iter()
            .find(|(k, _)| key_matches(k, key))
            .map(|(_, v)| v)
    }
}

/// Compares a catalog key (possibly `prefix/${Var}`) with a policy key, case-insensitively.
fn key_matches(catalog_key: &str, key: &str) -> bool {
    match catalog_key.find("${") {
        Some(i) => {
            key.len() > i
                && key.is_char_boundary(i)
                && catalog_key[..i].eq_ignore_ascii_case(&key[..i])
        }
        None => catalog_key.eq_ignore_ascii_case(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads() {
        let c = Catalog::from_json(BUILTIN_CATALOG);
        assert!(c.is_ok(), "{c:?}");
        let c = Catalog::builtin();
        assert!(c.action("ai:invokemodel").is_some());
        assert!(c.action("iam:CreateUser").is_some());
        assert!(c.action("sts:AssumeRole").is_some());
        assert!(c.action("iam:CreateUserz").is_none());
        assert!(
            c.condition_key("aws:TagKeys")
                .is_some_and(ConditionKeyInfo::is_multivalued)
        );
        assert!(
            c.condition_key("aws:PrincipalTag/team")
                .is_some_and(|k| !k.is_multivalued())
        );
        assert!(c.condition_key("AWS:SOURCEIP").is_some());
        assert!(c.condition_key("ai:MaxTokens").is_some());
        assert!(c.condition_key("s3:prefix").is_none());
    }
}
