//! What the gateway reads of an OpenAI request body, checked before anything is decided or
//! forwarded.
//!
//! Fields Gatehouse does not read pass through untouched (OpenAI's API grows, and
//! OpenAI-compatible servers add their own), but every field it does read must have the
//! type OpenAI documents, so that the policy, the guardrail and the upstream all see the
//! same request: a `messages` that is a string, a `max_tokens` that is a float or a
//! negative number, an `n` of zero is refused with a 400 in OpenAI's shape.
//!
//! The token bound ([`generation_bound`]) is the largest number of tokens the upstream
//! could generate from the body as forwarded: the largest of every per-choice cap an
//! OpenAI-compatible server reads ([`CAP_FIELDS`]: `max_tokens`, `max_completion_tokens`,
//! and llama.cpp's `n_predict`), times the number of sequences it generates (`n`, and on
//! `/v1/completions` `best_of`). A `null` cap means "not given" in OpenAI's API; such
//! fields are removed before forwarding ([`drop_null_caps`]) so that no upstream can read
//! them as "no limit" beside a number the policy was shown.

use super::error::GatewayError;
use super::invoke::Endpoint;
use serde_json::{Map, Value};

/// The per-choice output caps OpenAI-compatible servers read: OpenAI's two names, and
/// llama.cpp's own (which it prefers over `max_tokens` when both are given).
pub const CAP_FIELDS: &[&str] = &["max_tokens", "max_completion_tokens", "n_predict"];

/// The fields that multiply generation: `n` choices, `best_of` candidates generated
/// server-side (legacy completions).
const CHOICE_FIELDS: &[&str] = &["n", "best_of"];

type Body = Map<String, Value>;

fn bad(param: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_param(param, message)
}

/// Checks the shape of the fields Gatehouse reads on a model endpoint.
pub fn check(ep: Endpoint, body: &Body) -> Result<(), GatewayError> {
    for k in CAP_FIELDS {
        optional_count(body, k, 0)?;
    }
    for k in CHOICE_FIELDS {
        optional_count(body, k, 1)?;
    }
    match body.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(_)) if ep != Endpoint::Embeddings => {}
        Some(Value::Bool(false)) => {}
        Some(_) if ep == Endpoint::Embeddings => {
            return Err(bad("stream", "Embeddings are not streamed."));
        }
        Some(_) => return Err(bad("stream", "stream must be true or false.")),
    }
    if let Some(v) = body.get("stream_options")
        && !matches!(v, Value::Null | Value::Object(_))
    {
        return Err(bad("stream_options", "stream_options must be an object."));
    }
    match ep {
        Endpoint::Chat => check_messages(body),
        Endpoint::Completions => check_prompt(body, "prompt"),
        Endpoint::Embeddings => check_prompt(body, "input"),
    }?;
    for k in ["tools", "functions"] {
        match body.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_object) => {}
            Some(_) => {
                return Err(bad(
                    if k == "tools" { "tools" } else { "functions" },
                    format!("{k} must be an array of objects."),
                ));
            }
        }
    }
    Ok(())
}

/// An integer ≥ `min`, or absent/`null`.
fn optional_count(body: &Body, key: &'static str, min: u64) -> Result<Option<u64>, GatewayError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= min => Ok(Some(n)),
            _ => Err(bad(
                key,
                format!(
                    "{key} must be {} integer.",
                    if min == 0 {
                        "a non-negative"
                    } else {
                        "a positive"
                    }
                ),
            )),
        },
    }
}

fn check_messages(body: &Body) -> Result<(), GatewayError> {
    let Some(Value::Array(msgs)) = body.get("messages") else {
        return Err(bad(
            "messages",
            "messages must be an array of message objects.",
        ));
    };
    if msgs.is_empty() {
        return Err(bad(
            "messages",
            "messages must contain at least one message.",
        ));
    }
    for (i, m) in msgs.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(bad(
                "messages",
                format!("messages[{i}] must be an object with a role."),
            ));
        };
        match m.get("role") {
            Some(Value::String(r)) if !r.is_empty() => {}
            _ => {
                return Err(bad(
                    "messages",
                    format!("messages[{i}].role must be a non-empty string."),
                ));
            }
        }
        match m.get("content") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    let typed = p
                        .as_object()
                        .and_then(|p| p.get("type"))
                        .is_some_and(Value::is_string);
                    if !typed {
                        return Err(bad(
                            "messages",
                            format!("messages[{i}].content[{j}] must be an object with a type."),
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    "messages",
                    format!("messages[{i}].content must be a string or an array of parts."),
                ));
            }
        }
        if let Some(n) = m.get("name")
            && !n.is_string()
        {
            return Err(bad(
                "messages",
                format!("messages[{i}].name must be a string."),
            ));
        }
        match m.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) if calls.iter().all(Value::is_object) => {}
            Some(_) => {
                return Err(bad(
                    "messages",
                    format!("messages[{i}].tool_calls must be an array of objects."),
                ));
            }
        }
    }
    Ok(())
}

/// `prompt` (completions) and `input` (embeddings): a string, a list of strings, a list of
/// token ids, or a list of lists of token ids.
fn check_prompt(body: &Body, key: &'static str) -> Result<(), GatewayError> {
    let ok = match body.get(key) {
        Some(Value::String(_)) => true,
        Some(Value::Array(items)) => {
            items.iter().all(Value::is_string)
                || items.iter().all(Value::is_u64)
                || items
                    .iter()
                    .all(|x| x.as_array().is_some_and(|t| t.iter().all(Value::is_u64)))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(bad(
            key,
            format!(
                "{key} must be a string, an array of strings, or an array of token ids (or of arrays of them)."
            ),
        ))
    }
}

/// Whether the prompt is given (wholly or partly) as token ids, which no text pattern
/// can read.
pub fn has_token_ids(body: &Body) -> bool {
    ["prompt", "input"].iter().any(|k| match body.get(*k) {
        Some(Value::Array(items)) => items.iter().any(|x| x.is_u64() || x.is_array()),
        _ => false,
    })
}

/// Removes `null` caps (OpenAI: the same as not given); true when any was removed.
pub fn drop_null_caps(body: &mut Body) -> bool {
    let before = body.len();
    body.retain(|k, v| !(v.is_null() && CAP_FIELDS.contains(&k.as_str())));
    body.len() != before
}

/// The largest per-choice cap the body sets, if any (after [`check`]).
pub fn per_choice_cap(body: &Body) -> Option<u64> {
    CAP_FIELDS
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_u64))
        .max()
}

/// How many sequences the upstream generates (after [`check`]).
pub fn choices(body: &Body) -> u64 {
    CHOICE_FIELDS
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_u64))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// `ai:MaxTokens`: the most tokens the upstream could generate from this body, or `None`
/// when it sets no cap (the upstream's default applies, and the key is absent).
pub fn generation_bound(body: &Body) -> Option<u64> {
    per_choice_cap(body).map(|c| c.saturating_mul(choices(body)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Body {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_bound_is_the_largest_cap_times_the_choices() {
        let b = |v: Value| generation_bound(&obj(v));
        assert_eq!(b(json!({"max_tokens": 100})), Some(100));
        assert_eq!(
            b(json!({"max_completion_tokens": 10, "max_tokens": 100000})),
            Some(100000)
        );
        assert_eq!(b(json!({"max_tokens": 10, "n_predict": 5000})), Some(5000));
        assert_eq!(b(json!({"max_tokens": 100, "n": 4})), Some(400));
        assert_eq!(
            b(json!({"max_tokens": 100, "n": 2, "best_of": 5})),
            Some(500)
        );
        assert_eq!(b(json!({"n": 8})), None);
        assert_eq!(b(json!({"max_tokens": u64::MAX, "n": 2})), Some(u64::MAX));
    }

    #[test]
    fn null_caps_are_removed_so_the_number_beside_them_decides() {
        let mut body = obj(json!({"max_completion_tokens": null, "max_tokens": 100000}));
        assert!(drop_null_caps(&mut body));
        assert_eq!(body, obj(json!({"max_tokens": 100000})));
        assert_eq!(generation_bound(&body), Some(100000));
        let mut none = obj(json!({"max_tokens": 5}));
        assert!(!drop_null_caps(&mut none));
    }

    #[test]
    fn fields_gatehouse_reads_must_be_well_typed() {
        let msg = json!([{"role": "user", "content": "hi"}]);
        let refused = [
            json!({"messages": "hi"}),
            json!({"messages": null}),
            json!({"messages": []}),
            json!({"messages": [1, 2]}),
            json!({"messages": [{"content": "no role"}]}),
            json!({"messages": [{"role": "user", "content": 5}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
            json!({"messages": [{"role": "user", "name": 3}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": "x"}]}),
            json!({"messages": msg, "max_tokens": -1}),
            json!({"messages": msg, "max_tokens": 1.5}),
            json!({"messages": msg, "max_completion_tokens": "100"}),
            json!({"messages": msg, "n_predict": -1}),
            json!({"messages": msg, "n": 0}),
            json!({"messages": msg, "stream": "yes"}),
            json!({"messages": msg, "stream_options": true}),
            json!({"messages": msg, "tools": {"type": "function"}}),
        ];
        for v in refused {
            assert!(check(Endpoint::Chat, &obj(v.clone())).is_err(), "{v}");
        }
        let accepted = [
            json!({"messages": msg}),
            json!({"messages": msg, "max_tokens": null, "n": null, "unknown_extra": [1]}),
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
            json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c"}]}]}),
        ];
        for v in accepted {
            assert!(check(Endpoint::Chat, &obj(v.clone())).is_ok(), "{v}");
        }
        for (ep, k) in [
            (Endpoint::Completions, "prompt"),
            (Endpoint::Embeddings, "input"),
        ] {
            for ok in [
                json!("x"),
                json!(["a", "b"]),
                json!([1, 2]),
                json!([[1], [2, 3]]),
            ] {
                assert!(check(ep, &obj(json!({ k: ok }))).is_ok());
            }
            for no in [json!(null), json!(5), json!([{"a": 1}]), json!(["a", 1])] {
                assert!(check(ep, &obj(json!({ k: no }))).is_err());
            }
            assert!(check(ep, &obj(json!({}))).is_err());
        }
        assert!(
            check(
                Endpoint::Embeddings,
                &obj(json!({"input": "x", "stream": true}))
            )
            .is_err()
        );
    }
}
