//! The gateway's reading of a model call: the first byte picks the endpoint (chat,
//! completions, embeddings), the rest is the JSON body, checked as `prepare` does
//! (`openai::check`), then a fixed guardrail (token cap, allowed parameters, deny patterns)
//! applied and null caps dropped, as before a decision. Never a panic; a refusal is an
//! OpenAI `invalid_request_error` (400); and what is decided is what is forwarded:
//! - the body is parsed as the gateway does (`openai::parse_unambiguous`), which reads
//!   the value serde_json reads or refuses a repeated key;
//! - dropping null caps does not change the token bound (`ai:MaxTokens`);
//! - the body as forwarded (serialized, read again) passes the same checks with the same
//!   bound;
//! - a body the guardrail lets through stays valid, and generates at most the cap.
#![no_main]

use gatehouse_server::gateway::guardrail::Guardrail;
use gatehouse_server::gateway::{Endpoint, openai};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::sync::OnceLock;

const CAP: u64 = 256;

fn guardrail() -> &'static Guardrail {
    static G: OnceLock<Guardrail> = OnceLock::new();
    G.get_or_init(|| {
        Guardrail::parse(&format!(
            r#"{{"max_tokens": {CAP}, "allowed_parameters": ["temperature", "top_p", "max_tokens",
                "max_completion_tokens", "n_predict", "n", "best_of", "stop", "tools", "tool_choice",
                "user", "seed", "response_format", "logprobs", "encoding_format", "dimensions"],
                "deny_patterns": ["ignore (all )?previous instructions", "BEGIN [A-Z ]*PRIVATE KEY"]}}"#
        ))
        .unwrap_or_else(|e| panic!("the fixed guardrail does not parse: {e}"))
    })
}

fn refusal(e: &gatehouse_server::gateway::error::GatewayError) {
    assert_eq!(e.status.as_u16(), 400, "{e}");
    assert_eq!(e.kind, "invalid_request_error");
    assert!(!e.message.is_empty());
}

/// The body as the upstream receives it, read again.
fn forwarded(body: &Map<String, Value>) -> Map<String, Value> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|e| panic!("{e}"));
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => m,
        other => panic!("the forwarded body reads as {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let ep = match selector % 3 {
        0 => Endpoint::Chat,
        1 => Endpoint::Completions,
        _ => Endpoint::Embeddings,
    };
    // The gateway's parser: serde_json's value, or a refusal of a repeated key.
    let Ok(parsed) = openai::parse_unambiguous(raw) else {
        return;
    };
    assert_eq!(
        serde_json::from_slice::<Value>(raw).ok().as_ref(),
        Some(&parsed),
        "the gateway's parser reads another value than serde_json"
    );
    let Value::Object(mut body) = parsed else {
        return;
    };
    if let Err(e) = openai::check(ep, &body) {
        refusal(&e);
        return;
    }
    let bound = openai::generation_bound(&body);
    let mut without_nulls = body.clone();
    openai::drop_null_caps(&mut without_nulls);
    assert_eq!(openai::generation_bound(&without_nulls), bound);
    assert!(
        openai::CAP_FIELDS
            .iter()
            .all(|k| without_nulls.get(*k).is_none_or(|v| !v.is_null()))
    );
    let again = forwarded(&without_nulls);
    assert!(
        openai::check(ep, &again).is_ok(),
        "the forwarded body fails the checks"
    );
    assert_eq!(
        openai::generation_bound(&again),
        bound,
        "the forwarded body reads another bound"
    );

    match guardrail().apply(ep, &mut body) {
        Err(e) => refusal(&e),
        Ok(()) => {
            openai::drop_null_caps(&mut body);
            let sent = forwarded(&body);
            if let Err(e) = openai::check(ep, &sent) {
                panic!("a body the guardrail let through fails the checks: {e}");
            }
            if ep != Endpoint::Embeddings {
                let after = openai::generation_bound(&sent);
                assert!(
                    after.is_some_and(|n| n <= CAP),
                    "the guardrail let {after:?} tokens through"
                );
            }
        }
    }
});
