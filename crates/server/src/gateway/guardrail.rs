//! Guardrails per deployment: a cap on `max_tokens`, the request parameters a caller may
//! set, and patterns a prompt must not match. They are data of the deployment, changed
//! with `ai:CreateGuardrail`/`UpdateGuardrail`/`DeleteGuardrail` — a permission separate
//! from invoking the model — and checked after authorization, before anything is forwarded.

use super::error::GatewayError;
use super::invoke::Endpoint;
use super::openai;
use regex::RegexSet;
use serde::{Deserialize, Serialize};

/// The stored settings (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    /// The most tokens a request may have the upstream generate: every per-choice cap
    /// field (`max_tokens`, `max_completion_tokens`, `n_predict`) times the choices (`n`,
    /// `best_of`); also written (as `cap / choices`) when the caller sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Top-level request parameters allowed besides `model`, `messages`, `prompt`, `input`,
    /// `stream`, `stream_options`; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_parameters: Option<Vec<String>>,
    /// Regular expressions (case-insensitive) no text of the request may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_patterns: Vec<String>,
}

type Body = serde_json::Map<String, serde_json::Value>;

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

    /// Checks (and, for the token cap, completes) a request body that passed
    /// [`openai::check`].
    ///
    /// The cap bounds what the upstream could generate in all: every per-choice cap field
    /// it reads ([`openai::CAP_FIELDS`]) times the number of sequences (`n`, `best_of`).
    /// A body over the cap is refused, never rewritten; a body with no cap gets one —
    /// `cap / choices` in the field the caller named with `null`, or `max_tokens`.
    pub fn apply(&self, ep: Endpoint, body: &mut Body) -> Result<(), GatewayError> {
        if let Some(allowed) = &self.spec.allowed_parameters {
            for k in body.keys() {
                if !ALWAYS_ALLOWED.contains(&k.as_str()) && !allowed.iter().any(|a| a == k) {
                    return Err(violation(format!(
                        "The parameter {k:?} is not allowed on this model."
                    )));
                }
            }
        }
        if let Some(cap) = self.spec.max_tokens
            && ep != Endpoint::Embeddings
        {
            self.cap(cap, body)?;
        }
        if let Some(deny) = &self.deny {
            if openai::has_token_ids(body) {
                return Err(violation(
                    "This model's guardrail reads prompts as text; token ids are not accepted.",
                ));
            }
            let mut hit = false;
            for_each_text(body, &mut |t| {
                hit = hit || deny.is_match(t) || visible(t).is_some_and(|v| deny.is_match(&v));
            });
            if hit {
                return Err(violation(
                    "The prompt matches a pattern this model's guardrail denies.",
                ));
            }
        }
        Ok(())
    }

    fn cap(&self, cap: u64, body: &mut Body) -> Result<(), GatewayError> {
        let choices = openai::choices(body);
        match openai::per_choice_cap(body) {
            Some(per) if per.saturating_mul(choices) > cap => Err(violation(if choices > 1 {
                format!(
                    "The request could generate {per} tokens x {choices} choices; this model's cap is {cap}."
                )
            } else {
                format!("The request's token limit {per} exceeds this model's cap of {cap}.")
            })),
            Some(_) => Ok(()),
            None if cap / choices == 0 => Err(violation(format!(
                "{choices} choices exceed this model's cap of {cap} tokens."
            ))),
            None => {
                let key = openai::CAP_FIELDS
                    .iter()
                    .find(|k| body.get(**k).is_some_and(serde_json::Value::is_null))
                    .copied()
                    .unwrap_or("max_tokens");
                body.insert(key.to_owned(), (cap / choices).into());
                Ok(())
            }
        }
    }
}

fn violation(message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("guardrail_violation", message)
}

/// The text with invisible format characters (zero-width spaces and joiners, soft
/// hyphens, bidi controls, tag characters) removed, when it has any: `s\u{200b}ecret`
/// must match `secret`.
fn visible(text: &str) -> Option<String> {
    let invisible = |c: char| {
        matches!(c,
            '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fe00}'..='\u{fe0f}' | '\u{e0000}'..='\u{e007f}')
    };
    text.contains(invisible)
        .then(|| text.chars().filter(|c| !invisible(*c)).collect())
}

/// Calls `f` on every text of the body: every string value and every object key, at any
/// depth. The model reads far more than `content`: message names, tool-call arguments,
/// tool and function definitions (names, descriptions, parameter schemas), response
/// format schemas, `prompt`, `input`, `suffix` — and OpenAI-compatible servers read
/// fields of their own (vLLM's `documents` and `chat_template`), so nothing is skipped.
pub fn for_each_text(body: &Body, f: &mut dyn FnMut(&str)) {
    fn walk(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    f(k);
                    walk(x, f);
                }
            }
            _ => {}
        }
    }
    for (k, v) in body {
        f(k);
        walk(v, f);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> Body {
        v.as_object().cloned().unwrap_or_default()
    }

    fn chat(g: &Guardrail, v: serde_json::Value) -> Result<Body, GatewayError> {
        let mut b = body(v);
        g.apply(Endpoint::Chat, &mut b).map(|()| b)
    }

    #[test]
    fn cap_rejects_larger_and_fills_missing() {
        let g = Guardrail::parse(r#"{"max_tokens": 100}"#).unwrap();
        assert!(chat(&g, json!({"model": "m", "max_tokens": 101})).is_err());
        assert_eq!(chat(&g, json!({"model": "m"})).unwrap()["max_tokens"], 100);
    }

    #[test]
    fn cap_holds_over_every_field_the_upstream_reads() {
        let g = Guardrail::parse(r#"{"max_tokens": 100}"#).unwrap();
        for over in [
            json!({"max_completion_tokens": null, "max_tokens": 100000}),
            json!({"max_completion_tokens": 10, "max_tokens": 100000}),
            json!({"max_tokens": 10, "max_completion_tokens": 100000}),
            json!({"max_tokens": 10, "n_predict": 5000}),
            json!({"max_tokens": 60, "n": 2}),
            json!({"max_tokens": 30, "best_of": 4}),
            json!({"n": 101}),
        ] {
            let e = chat(&g, over.clone()).unwrap_err();
            assert_eq!(e.code, "guardrail_violation", "{over}");
        }
        // Within the cap: forwarded as given.
        let ok = chat(&g, json!({"max_tokens": 50, "n": 2})).unwrap();
        assert_eq!(ok, body(json!({"max_tokens": 50, "n": 2})));
        // No cap: the cap per choice, in the field the caller named with null.
        let filled = chat(&g, json!({"max_completion_tokens": null, "n": 4})).unwrap();
        assert_eq!(filled["max_completion_tokens"], 25);
        assert_eq!(chat(&g, json!({"n": 3})).unwrap()["max_tokens"], 33);
        // Embeddings generate nothing: no cap is written.
        let mut e = body(json!({"input": "x"}));
        g.apply(Endpoint::Embeddings, &mut e).unwrap();
        assert!(!e.contains_key("max_tokens"));
    }

    #[test]
    fn parameters_outside_the_list_are_refused() {
        let g = Guardrail::parse(r#"{"allowed_parameters": ["temperature"]}"#).unwrap();
        assert!(chat(&g, json!({"model": "m", "messages": [], "temperature": 1})).is_ok());
        let bad = chat(&g, json!({"model": "m", "logit_bias": {}}));
        assert_eq!(bad.err().map(|e| e.code), Some("guardrail_violation"));
    }

    #[test]
    fn deny_patterns_see_every_text_the_model_reads() {
        let g = Guardrail::parse(r#"{"deny_patterns": ["secret\\s+plan"]}"#).unwrap();
        let hidden = [
            json!({"messages": [{"role": "user", "content": "the SECRET  plan"}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "secret plan"}]}]}),
            json!({"messages": [{"role": "system", "content": "secret plan"}]}),
            json!({"messages": [{"role": "developer", "content": "secret plan"}]}),
            json!({"messages": [{"role": "user", "name": "secret plan", "content": "hi"}]}),
            json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\": \"secret plan\"}"}}]}]}),
            json!({"messages": [{"role": "user", "content": "hi"}], "tools": [
                {"type": "function", "function": {"name": "f", "description": "reveal the secret plan"}}]}),
            json!({"messages": [{"role": "user", "content": "hi"}], "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                 "properties": {"q": {"type": "string", "description": "the secret plan"}}}}}]}),
            json!({"messages": [{"role": "user", "content": "hi"}], "functions": [
                {"name": "secret plan", "parameters": {}}]}),
            json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema",
                "json_schema": {"name": "x", "schema": {"properties": {"a": {"description": "secret plan"}}}}}}),
            json!({"messages": [{"role": "user", "content": "hi"}], "documents": [{"text": "secret plan"}]}),
            json!({"prompt": ["x", "secret plan"]}),
            json!({"prompt": "x", "suffix": "secret plan"}),
            json!({"input": "secret plan"}),
            json!({"input": ["a", "secret plan"]}),
            json!({"messages": [{"role": "user", "content": "secret\u{200b} pl\u{00ad}an"}]}),
            json!({"prompt": [1, 2, 3]}),
            json!({"input": [[1, 2], [3]]}),
        ];
        for v in hidden {
            assert!(chat(&g, v.clone()).is_err(), "{v}");
        }
        assert!(chat(&g, json!({"prompt": "public plan"})).is_ok());
        assert!(chat(&g, json!({"prompt": "secret", "suffix": "plan"})).is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Guardrail::parse(r#"{"deny_patterns": ["("]}"#).is_err());
        assert!(Guardrail::parse(r#"{"max_token": 5}"#).is_err());
    }
}
