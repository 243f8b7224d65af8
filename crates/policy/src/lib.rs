//! Gatehouse's policy language: AWS IAM JSON policies, parsed, validated, compiled and
//! evaluated with AWS's semantics, and every decision explained.
//!
//! The crate does no I/O. The flow is:
//!
//! ```
//! use gatehouse_policy::{Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request};
//!
//! let doc = PolicyDocument::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{"Effect": "Allow", "Action": "ai:InvokeModel",
//!                    "Resource": "arn:gatehouse:ai:local:111122223333:model/${aws:PrincipalTag/team}-*"}]
//! }"#).map_err(|e| e.to_string())?;
//! let identity = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("invoke", doc)])
//!     .map_err(|e| e.to_string())?;
//! let request = Request::new(
//!     "arn:gatehouse:iam::111122223333:user/alice",
//!     "ai:InvokeModel",
//!     "arn:gatehouse:ai:local:111122223333:model/search-llama",
//! ).with("aws:PrincipalTag/team", "search");
//! let decision = Evaluation::identity(&identity).decide(&request);
//! assert!(decision.is_allow());
//! # Ok::<(), String>(())
//! ```
//!
//! Compiling ([`PolicySet::new`]) is separate from deciding ([`Evaluation::decide`]): compile
//! once per principal, decide many times.

mod arn;
pub mod catalog;
mod condition;
mod decision;
mod diagnostic;
pub mod model;
pub mod operator;
mod parse;
mod pattern;
mod request;
mod set;
mod template;
mod validate;

pub use catalog::Catalog;
pub use decision::{Decision, DecisionKind, Evaluation, Explanation, Missing, NearMiss};
pub use diagnostic::{Diagnostic, Severity};
pub use model::{Effect, PolicyDocument, Statement, Version};
pub use parse::{Parsed, parse_policy, parse_policy_bytes, parse_value};
pub use pattern::{WildcardPattern, wildcard_match, wildcard_match_ignore_ascii_case};
pub use request::{Arn, Context, ContextValue, Request};
pub use set::{CompileError, NamedPolicy, PolicySet, PolicyType, StatementRef};
pub use validate::{validate, validate_bytes};

/// A policy document that could not be parsed: every error found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct PolicyError(pub Vec<Diagnostic>);

fn summary(d: &[Diagnostic]) -> String {
    match d {
        [] => "invalid policy".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl PolicyDocument {
    /// Parses policy text; any error refuses the whole document.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        let parsed = parse_policy(text);
        match parsed.document {
            Some(doc) => Ok(doc),
            None => Err(PolicyError(
                parsed
                    .diagnostics
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .collect(),
            )),
        }
    }
}
