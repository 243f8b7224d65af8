//! Guardrails per deployment: a cap on `max_tokens`, the request parameters a caller may
//! set, and patterns a prompt must not match. They are data of the deployment, changed
//! with `ai:CreateGuardrail`/`UpdateGuardrail`/`DeleteGuardrail` — a permission separate
//! from invoking the model — and checked after authorization, before anything is forwarded.

use super::error::GatewayError;
use regex::RegexSet;
use serde::{Deserialize, Serialize};

/// The stored settings (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    /// Largest `max_tokens` (or `max_completion_tokens`) allowed; also applied when the
    /// caller sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Top-level request parameters allowed besides `model`, `messages`, `prompt`, `input`,
    /// `stream`, `stream_options`; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_parameters: Option<Vec<String>>,
    /// Regular expressions (case-insensitive) no prompt text may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_patterns: Vec<String>,
}

/// Settings compiled for the request path.
#[derive(Debug, Clone)]
pub struct Guardrail {
    spec: GuardrailSpec,
    deny: Option<RegexSet>,
}

const ALWAYS_ALLOWED: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "input",
    "stream",
    "stream_options",
];

impl Guardrail {
    /// Parses and compiles settings; the error is for the administrator who wrote them.
    pub fn parse(json: &str) -> Result<Guardrail, String> {
        let spec: GuardrailSpec =
            serde_json::from_str(json).map_err(|e| format!("guardrail settings: {e}"))?;
        let deny = if spec.deny_patterns.is_empty() {
            None
        } else {
            let pats = spec.deny_patterns.iter().map(|p| format!("(?i){p}"));
            Some(RegexSet::new(pats).map_err(|e| format!("deny_patterns: {e}"))?)
        };
        Ok(Guardrail { spec, deny })
    }

    /// The settings.
    pub fn spec(&self) -> &GuardrailSpec {
        &self.spec
    }

    /// Checks (and, for the token cap, completes) a request body.
    pub fn apply(
        &self,
        body: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), GatewayError> {
        if let Some(allowed) = &self.spec.allowed_parameters {
            for k in body.keys() {
                if !ALWAYS_ALLOWED.contains(&k.as_str()) && !allowed.iter().any(|a| a == k) {
                    return Err(GatewayError::invalid_request(
                        "guardrail_violation",
                        format!("The parameter {k:?} is not allowed on this model."),
                    ));
                }
            }
        }
        if let Some(cap) = self.spec.max_tokens {
            let key = if body.contains_key("max_completion_tokens") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            match body.get(key).and_then(serde_json::Value::as_u64) {
                Some(n) if n > cap => {
                    return Err(GatewayError::invalid_request(
                        "guardrail_violation",
                        format!("{key} {n} exceeds this model's cap of {cap}."),
                    ));
                }
                Some(_) => {}
                None => {
                    body.insert(key.to_owned(), cap.into());
                }
            }
        }
        if let Some(deny) = &self.deny {
            let mut hit = false;
            for_each_prompt_text(body, &mut |t| hit = hit || deny.is_match(t));
            if hit {
                return Err(GatewayError::invalid_request(
                    "guardrail_violation",
                    "The prompt matches a pattern this model's guardrail denies.",
                ));
            }
        }
        Ok(())
    }
}

/// Calls `f` on every piece of prompt text: message contents (strings or text parts),
/// `prompt` and `input` (strings or lists of strings).
pub fn for_each_prompt_text(
    body: &serde_json::Map<String, serde_json::Value>,
    f: &mut dyn FnMut(&str),
) {
    use serde_json::Value;
    fn strings(v: &Value, f: &mut dyn FnMut(&str)) {
        match v {
            Value::String(s) => f(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, f)),
            Value::Object(o) => {
                if let Some(t) = o.get("text") {
                    strings(t, f);
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Array(msgs)) = body.get("messages") {
        for m in msgs {
            if let Some(c) = m.get("content") {
                strings(c, f);
            }
        }
    }
    for k in ["prompt", "input"] {
        if let Some(v) = body.get(k) {
            strings(v, f);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn cap_rejects_larger_and_fills_missing() {
        let g = Guardrail::parse(r#"{"max_tokens": 100}"#).unwrap();
        let mut b = body(serde_json::json!({"model": "m", "max_tokens": 101}));
        assert!(g.apply(&mut b).is_err());
        let mut b = body(serde_json::json!({"model": "m"}));
        assert!(g.apply(&mut b).is_ok());
        assert_eq!(b["max_tokens"], 100);
    }

    #[test]
    fn parameters_outside_the_list_are_refused() {
        let g = Guardrail::parse(r#"{"allowed_parameters": ["temperature"]}"#).unwrap();
        let mut ok = body(serde_json::json!({"model": "m", "messages": [], "temperature": 1}));
        assert!(g.apply(&mut ok).is_ok());
        let mut bad = body(serde_json::json!({"model": "m", "logit_bias": {}}));
        assert_eq!(
            g.apply(&mut bad).err().map(|e| e.code),
            Some("guardrail_violation")
        );
    }

    #[test]
    fn deny_patterns_see_every_prompt_form() {
        let g = Guardrail::parse(r#"{"deny_patterns": ["secret\\s+plan"]}"#).unwrap();
        for v in [
            serde_json::json!({"messages": [{"role": "user", "content": "the SECRET  plan"}]}),
            serde_json::json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "secret plan"}]}]}),
            serde_json::json!({"prompt": ["x", "secret plan"]}),
            serde_json::json!({"input": "secret plan"}),
        ] {
            assert!(g.apply(&mut body(v.clone())).is_err(), "{v}");
        }
        assert!(
            g.apply(&mut body(serde_json::json!({"prompt": "public plan"})))
                .is_ok()
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Guardrail::parse(r#"{"deny_patterns": ["("]}"#).is_err());
        assert!(Guardrail::parse(r#"{"max_token": 5}"#).is_err());
    }
}
