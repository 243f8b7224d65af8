//! The policy document as data: what a parsed AWS IAM JSON policy says, nothing more.
//!
//! The model is normalised (a single string becomes a one-element list, a statement object
//! becomes a one-element list) so that two documents that mean the same thing compare
//! equal, and so that `parse(serialize(doc)) == doc` holds. Evaluation never reads this
//! model directly: [`crate::PolicySet`] compiles it first.

use serde_json::{Map, Value};
use std::fmt;

/// The policy language version. Variables are substituted only under `2012-10-17`; under
/// `2008-10-17` (and when `Version` is absent) `${...}` is literal text, as in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2012-10-17`: the current language, with policy variables.
    V2012_10_17,
    /// `2008-10-17`: the original language; `${...}` is plain text.
    V2008_10_17,
}

impl Version {
    /// The version string as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2012_10_17 => "2012-10-17",
            Version::V2008_10_17 => "2008-10-17",
        }
    }
}

/// A whole policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// `Version`, when given.
    pub version: Option<Version>,
    /// `Id`, when given.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// True when `${...}` in this document are policy variables rather than literal text.
    pub fn substitutes_variables(&self) -> bool {
        self.version == Some(Version::V2012_10_17)
    }

    /// Serialises the document as AWS policy JSON.
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        if let Some(v) = self.version {
            top.insert("Version".into(), Value::String(v.as_str().into()));
        }
        if let Some(id) = &self.id {
            top.insert("Id".into(), Value::String(id.clone()));
        }
        top.insert(
            "Statement".into(),
            Value::Array(self.statements.iter().map(Statement::to_json).collect()),
        );
        Value::Object(top)
    }
}

impl fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Effect {
    /// Grants, subject to every other applicable policy.
    Allow,
    /// Refuses, whatever any other policy says.
    Deny,
}

impl Effect {
    /// The effect as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`, when given.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` or `NotPrincipal` (resource-based and trust policies only).
    pub principal: Option<PrincipalBlock>,
    /// `Action` or `NotAction`.
    pub action: ActionBlock,
    /// `Resource` or `NotResource`; absent in resource-based policies, where the resource
    /// is the one the policy is attached to.
    pub resource: Option<ResourceBlock>,
    /// `Condition`, one block per operator, in document order.
    pub condition: Vec<ConditionBlock>,
}

impl Statement {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(sid) = &self.sid {
            m.insert("Sid".into(), Value::String(sid.clone()));
        }
        m.insert("Effect".into(), Value::String(self.effect.as_str().into()));
        if let Some(p) = &self.principal {
            let key = if p.negated {
                "NotPrincipal"
            } else {
                "Principal"
            };
            m.insert(key.into(), p.principal.to_json());
        }
        let key = if self.action.negated {
            "NotAction"
        } else {
            "Action"
        };
        m.insert(key.into(), string_or_list(&self.action.patterns));
        if let Some(r) = &self.resource {
            let key = if r.negated { "NotResource" } else { "Resource" };
            m.insert(key.into(), string_or_list(&r.patterns));
        }
        if !self.condition.is_empty() {
            let mut c = Map::new();
            for block in &self.condition {
                let mut keys = Map::new();
                for entry in &block.entries {
                    let values: Vec<Value> =
                        entry.values.iter().map(ConditionValue::to_json).collect();
                    let v = match <[Value; 1]>::try_from(values) {
                        Ok([one]) => one,
                        Err(many) => Value::Array(many),
                    };
                    keys.insert(entry.key.clone(), v);
                }
                c.insert(block.operator.clone(), Value::Object(keys));
            }
            m.insert("Condition".into(), Value::Object(c));
        }
        Value::Object(m)
    }
}

fn string_or_list(items: &[String]) -> Value {
    match items {
        [one] => Value::String(one.clone()),
        _ => Value::Array(items.iter().cloned().map(Value::String).collect()),
    }
}

/// `Action` (or `NotAction` when `negated`): action patterns such as `ai:Invoke*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionBlock {
    /// True for `NotAction`.
    pub negated: bool,
    /// The patterns, as written.
    pub patterns: Vec<String>,
}

/// `Resource` (or `NotResource` when `negated`): ARN patterns or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceBlock {
    /// True for `NotResource`.
    pub negated: bool,
    /// The patterns, as written.
    pub patterns: Vec<String>,
}

/// `Principal` (or `NotPrincipal` when `negated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalBlock {
    /// True for `NotPrincipal`.
    pub negated: bool,
    /// Who the block names.
    pub principal: Principal,
}

/// The principals a `Principal` element names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `"*"`: everyone, authenticated or not.
    Any,
    /// `{"AWS": [...], "Service": [...], ...}`, in document order.
    Typed(Vec<(PrincipalKind, Vec<String>)>),
}

impl Principal {
    fn to_json(&self) -> Value {
        match self {
            Principal::Any => Value::String("*".into()),
            Principal::Typed(entries) => {
                let mut m = Map::new();
                for (kind, ids) in entries {
                    m.insert(kind.as_str().into(), string_or_list(ids));
                }
                Value::Object(m)
            }
        }
    }
}

/// The kinds of principal AWS's `Principal` element distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// `AWS`: account ids, account root ARNs, user, role and session ARNs, or `*`.
    Aws,
    /// `Federated`: identity providers.
    Federated,
    /// `Service`: service principals such as `ai.gatehouse.internal`.
    Service,
    /// `CanonicalUser`: canonical user ids.
    CanonicalUser,
}

impl PrincipalKind {
    /// The key as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Aws => "AWS",
            PrincipalKind::Federated => "Federated",
            PrincipalKind::Service => "Service",
            PrincipalKind::CanonicalUser => "CanonicalUser",
        }
    }

    /// Parses a `Principal` key.
    pub fn parse(s: &str) -> Option<PrincipalKind> {
        Some(match s {
            "AWS" => PrincipalKind::Aws,
            "Federated" => PrincipalKind::Federated,
            "Service" => PrincipalKind::Service,
            "CanonicalUser" => PrincipalKind::CanonicalUser,
            _ => return None,
        })
    }
}

/// One operator of a `Condition` with its keys, e.g. `"StringEquals": {"k": ["v"]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionBlock {
    /// The operator as written (`ForAnyValue:StringLikeIfExists`).
    pub operator: String,
    /// The keys tested with this operator, in document order.
    pub entries: Vec<ConditionEntry>,
}

/// One condition key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionEntry {
    /// The context key as written (key names are matched case-insensitively).
    pub key: String,
    /// The values; a request matches when any of them matches (none, for negated operators).
    pub values: Vec<ConditionValue>,
}

/// A condition value keeps its JSON type so that a document round-trips.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionValue {
    /// A JSON string.
    String(String),
    /// A JSON number, as written.
    Number(serde_json::Number),
    /// A JSON boolean.
    Bool(bool),
}

impl ConditionValue {
    /// The value as text, as IAM compares it.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ConditionValue::String(s) => std::borrow::Cow::Borrowed(s),
            ConditionValue::Number(n) => std::borrow::Cow::Owned(n.to_string()),
            ConditionValue::Bool(b) => {
                std::borrow::Cow::Borrowed(if *b { "true" } else { "false" })
            }
        }
    }

    fn to_json(&self) -> Value {
        match self {
            ConditionValue::String(s) => Value::String(s.clone()),
            ConditionValue::Number(n) => Value::Number(n.clone()),
            ConditionValue::Bool(b) => Value::Bool(*b),
        }
    }
}
