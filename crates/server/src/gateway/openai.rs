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
//!
//! The body is forwarded as the caller wrote it (when Gatehouse changes nothing), so it
//! must not mean one thing to Gatehouse and another to the upstream: a key given twice in
//! one object ([`parse_unambiguous`]; parsers differ on which one counts), and a top-level
//! key that is a field Gatehouse reads spelled in another case ([`check`]; Go's
//! `encoding/json`, behind Ollama and LocalAI, matches field names ignoring case, with
//! Unicode folding), are refused.

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

/// The top-level fields Gatehouse reads (or writes) on a model endpoint, besides
/// [`CAP_FIELDS`] and [`CHOICE_FIELDS`].
const READ_FIELDS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "input",
    "suffix",
    "stream",
    "stream_options",
    "tools",
    "functions",
];

/// Parses a request body as JSON, refusing any object that gives a key twice (at any
/// depth): which of the two an upstream's parser keeps is its own choice.
pub fn parse_unambiguous(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = UniqueKeys.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Builds a [`Value`] as `serde_json` does, but a repeated key is an error.
struct UniqueKeys;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(UniqueKeys)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format_args!(
                    "the key {k:?} is given twice in one object"
                )));
            }
            let v = map.next_value_seed(UniqueKeys)?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// Case folding as Go's `encoding/json` matches field names (Unicode simple folding:
/// `K`, the Kelvin sign, is `k`; `ſ` is `s`).
fn fold(name: &str) -> String {
    name.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// A key of `object` that is one of `fields` in another spelling.
fn misspelled(object: &Body, fields: &[&'static str]) -> Option<(String, &'static str)> {
    object.keys().find_map(|k| {
        if fields.contains(&k.as_str()) {
            return None;
        }
        let folded = fold(k);
        fields
            .iter()
            .find(|f| fold(f) == folded)
            .map(|f| (k.clone(), *f))
    })
}

/// Refuses a key that an upstream matching names ignoring case would read as one of the
/// fields Gatehouse reads, while Gatehouse does not.
fn check_spelling(body: &Body) -> Result<(), GatewayError> {
    let top: Vec<&'static str> = READ_FIELDS
        .iter()
        .chain(CAP_FIELDS)
        .chain(CHOICE_FIELDS)
        .copied()
        .collect();
    let found = misspelled(body, &top).or_else(|| match body.get("stream_options") {
        Some(Value::Object(o)) => misspelled(o, &["include_usage"]),
        _ => None,
    });
    match found {
        None => Ok(()),
        Some((given, field)) => Err(bad(
            field,
            format!(
                "Unrecognized request argument {given:?}: parameter names are case-sensitive; the parameter is {field:?}."
            ),
        )),
    }
}

/// Checks the shape of the fields Gatehouse reads on a model endpoint.
pub fn check(ep: Endpoint, body: &Body) -> Result<(), GatewayError> {
    check_spelling(body)?;
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
    fn a_key_given_twice_is_refused_at_any_depth() {
        for raw in [
            r#"{"max_tokens": 1, "max_tokens": 2}"#,
            r#"{"messages": [{"role": "user", "content": "a", "content": "b"}]}"#,
            r#"[{"a": {"b": 1, "b": 1}}]"#,
        ] {
            let e = parse_unambiguous(raw.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("given twice"), "{raw}: {e}");
        }
        let raw = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "A": {"a": 1}}"#;
        assert_eq!(
            parse_unambiguous(raw.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert!(parse_unambiguous(b"{} x").is_err());
    }

    #[test]
    fn fields_gatehouse_reads_are_refused_in_other_spellings() {
        let msg = json!([{"role": "user", "content": "hi"}]);
        for k in [
            "Max_Tokens",
            "MODEL",
            "N",
            "Stream",
            "max_to\u{212a}ens",
            "\u{17f}tream",
        ] {
            let body = obj(json!({"messages": msg, k: 5}));
            let e = check(Endpoint::Chat, &body).unwrap_err();
            assert!(e.message.contains("case-sensitive"), "{k}: {e}");
        }
        let body = obj(json!({"messages": msg, "stream_options": {"INCLUDE_USAGE": true}}));
        assert_eq!(
            check(Endpoint::Chat, &body).unwrap_err().param,
            Some("include_usage")
        );
        let fine = obj(json!({"messages": msg, "Temperature": 1, "user": "u"}));
        assert!(check(Endpoint::Chat, &fine).is_ok());
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
