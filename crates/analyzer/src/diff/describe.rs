//! The public shape of an answer: condition literals, resource and principal cells, and the
//! changes built from them, each with the one-line wording reports print.

use gatehouse_policy::Request;
use serde::Serialize;
use std::fmt;

/// One condition entry (operator, key, values) as it appears in either version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Atom {
    /// The operator as written, e.g. `IpAddress` or `ForAnyValue:StringLike`.
    pub operator: String,
    /// The context key.
    pub key: String,
    /// The values, as text.
    pub values: Vec<String>,
}

/// A condition entry that must hold (or must not) for a change to apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Literal {
    /// The condition entry.
    #[serde(flatten)]
    pub atom: Atom,
    /// True when the entry must hold, false when it must not.
    pub holds: bool,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.atom;
        let values = if a.values.len() == 1 {
            a.values[0].clone()
        } else {
            format!("[{}]", a.values.join(", "))
        };
        let base = a
            .operator
            .trim_start_matches("ForAnyValue:")
            .trim_start_matches("ForAllValues:");
        let plain = !a.operator.contains(':') && !base.ends_with("IfExists");
        let phrase = match (base, self.holds) {
            ("IpAddress", true) | ("NotIpAddress", false) if plain => {
                Some(format!("{} is in {values}", a.key))
            }
            ("IpAddress", false) | ("NotIpAddress", true) if plain => {
                Some(format!("{} is outside {values} (or absent)", a.key))
            }
            ("StringEquals" | "StringLike" | "ArnEquals" | "ArnLike", true) if plain => {
                Some(format!("{} matches {values}", a.key))
            }
            ("StringEquals" | "StringLike" | "ArnEquals" | "ArnLike", false) if plain => {
                Some(format!("{} does not match {values} (or is absent)", a.key))
            }
            ("Bool", true) if plain => Some(format!("{} is {values}", a.key)),
            ("Bool", false) if plain => Some(format!("{} is not {values} (or is absent)", a.key)),
            ("Null", true) if plain => Some(format!(
                "{} is {}",
                a.key,
                if values == "true" {
                    "absent"
                } else {
                    "present"
                }
            )),
            ("Null", false) if plain => Some(format!(
                "{} is {}",
                a.key,
                if values == "true" {
                    "present"
                } else {
                    "absent"
                }
            )),
            _ => None,
        };
        match phrase {
            Some(p) => f.write_str(&p),
            None if self.holds => write!(f, "{}({}, {values}) holds", a.operator, a.key),
            None => write!(f, "{}({}, {values}) does not hold", a.operator, a.key),
        }
    }
}

/// A set of resources: those matching every pattern in `matching` and none in `excluding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceCell {
    /// Resource patterns (of either version) the resources match.
    pub matching: Vec<String>,
    /// More specific patterns they do not match.
    pub excluding: Vec<String>,
    /// One such resource.
    pub example: String,
}

impl fmt::Display for ResourceCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matching.is_empty() {
            write!(f, "resources such as {}", self.example)?;
        } else {
            f.write_str(&self.matching.join(" ∩ "))?;
        }
        if !self.excluding.is_empty() {
            write!(f, " except {}", self.excluding.join(", "))?;
        }
        Ok(())
    }
}

/// A set of principals (resource-based and trust policies): those that match every
/// `Principal` entry in `matching` and none in `excluding`, as the engine matches them (an
/// account id or `arn:...:root` matches every principal of the account; a role matches its
/// sessions; `*` and `AWS:*` match everyone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalCell {
    /// Entries of either version that match, as `*` or `TYPE:ID` (`AWS:123456789012`,
    /// `Federated:token.actions.githubusercontent.com`, `Service:...`, `CanonicalUser:...`).
    pub matching: Vec<String>,
    /// Entries they do not match (named when the match is through a wildcard, or none).
    pub excluding: Vec<String>,
    /// One such principal.
    pub example: String,
}

impl fmt::Display for PrincipalCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matching.is_empty() {
            f.write_str("any principal")?;
        } else {
            write!(f, "principal {}", self.matching.join(" and "))?;
        }
        if !self.excluding.is_empty() {
            write!(f, " except {}", self.excluding.join(", "))?;
        }
        write!(f, " (such as {})", self.example)
    }
}

/// One difference: these actions on these resources under these conditions.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Catalog actions affected (canonical spelling).
    pub actions: Vec<String>,
    /// Actions outside the catalog (including ones a service adds later), described by the
    /// patterns they match.
    pub other_actions: Vec<String>,
    /// The principals (resource-based and trust policies only; empty for identity policies,
    /// whose principal is whoever holds them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<PrincipalCell>,
    /// The resources.
    pub resource: ResourceCell,
    /// When: any of these conjunctions (an empty conjunction: always).
    pub when: Vec<Vec<Literal>>,
    /// A concrete request in this change.
    pub example: Request,
    #[serde(skip)]
    pub(super) action_sigs: Vec<Vec<bool>>,
    #[serde(skip)]
    pub(super) resource_sig: Vec<bool>,
    #[serde(skip)]
    pub(super) principal_sigs: Vec<Vec<bool>>,
}

impl Change {
    /// The actions as one line (long lists shortened).
    pub fn actions_label(&self) -> String {
        let mut parts: Vec<String> = self.actions.iter().take(6).cloned().collect();
        if self.actions.len() > 6 {
            parts.push(format!("… {} more", self.actions.len() - 6));
        }
        parts.extend(self.other_actions.iter().cloned());
        parts.join(", ")
    }

    /// The principals as one line (empty for identity policies).
    pub fn principals_label(&self) -> String {
        self.principals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The condition as one line.
    pub fn when_label(&self) -> String {
        if self.when.iter().any(Vec::is_empty) {
            return "always".into();
        }
        self.when
            .iter()
            .map(|c| {
                c.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect::<Vec<_>>()
            .join("; or when ")
    }
}
