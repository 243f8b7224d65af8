//! Problems found in a policy document, each with the JSON path of the element at fault.
//!
//! One diagnostic per problem, and every problem reported at once, so that someone fixing a
//! policy sees the whole list on the first run.

use serde::Serialize;
use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Likely a mistake, but the policy is accepted.
    Warning,
    /// The policy is refused.
    Error,
}

/// One problem, e.g. `$.Statement[2].Condition.StringEqualz: unknown condition operator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// JSON path of the element at fault, starting with `$`.
    pub path: String,
    /// One line saying what is wrong.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn warning(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.path, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.path, self.message),
        }
    }
}

/// A JSON path under construction.
#[derive(Debug, Clone)]
pub(crate) struct JsonPath(String);

impl JsonPath {
    pub(crate) fn root() -> JsonPath {
        JsonPath("$".into())
    }

    pub(crate) fn key(&self, k: &str) -> JsonPath {
        let plain = !k.is_empty()
            && k.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '/' | '*' | '$'));
        if plain {
            JsonPath(format!("{}.{}", self.0, k))
        } else {
            JsonPath(format!(
                "{}[{}]",
                self.0,
                serde_json::Value::String(k.to_owned())
            ))
        }
    }

    pub(crate) fn index(&self, i: usize) -> JsonPath {
        JsonPath(format!("{}[{}]", self.0, i))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
