//! The gateway's reading of a model call: the first byte picks the endpoint (chat,
//! completions, embeddings), the rest is the JSON body. Never a panic; a refusal is an
//! OpenAI `invalid_request_error` (400) with a message; an accepted body names a model, and
//! reads the same again once serialized as the gateway forwards it (what was decided is
//! what goes upstream). A fixed guardrail (token cap, allowed parameters, deny patterns) is
//! then applied as for a deployment that has one: never a panic, and a body it lets through
//! still reads back with the same model and stream flag, and a cap within the guardrail's.
#![no_main]

use gatehouse_server::gateway::guardrail::Guardrail;
use gatehouse_server::gateway::{Endpoint, parse_model_request};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CAP: u64 = 256;

fn guardrail() -> &'static Guardrail {
    static G: OnceLock<Guardrail> = OnceLock::new();
    G.get_or_init(|| {
        Guardrail::parse(&format!(
            r#"{{"max_tokens": {CAP}, "allowed_parameters": ["temperature", "top_p", "max_tokens",
                "max_completion_tokens", "n", "stop", "tools", "tool_choice", "user", "seed",
                "response_format", "logprobs", "encoding_format", "dimensions"],
                "deny_patterns": ["ignore (all )?previous instructions", "BEGIN [A-Z ]*PRIVATE KEY"]}}"#
        ))
        .unwrap_or_else(|e| panic!("the fixed guardrail does not parse: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ep = match selector % 3 {
        0 => Endpoint::Chat,
        1 => Endpoint::Completions,
        _ => Endpoint::Embeddings,
    };
    let req = match parse_model_request(ep, body) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.status.as_u16(), 400, "{e}");
            assert_eq!(e.kind, "invalid_request_error");
            assert!(!e.message.is_empty());
            return;
        }
    };
    assert!(!req.model.is_empty());
    assert!(!(ep == Endpoint::Embeddings && req.stream));
    let forwarded = serde_json::to_vec(&req.body).unwrap_or_else(|e| panic!("{e}"));
    match parse_model_request(ep, &forwarded) {
        Ok(again) => assert_eq!(again, req, "the forwarded body reads differently"),
        Err(e) => panic!("the forwarded body does not parse: {e}"),
    }
    let mut body = req.body.clone();
    if guardrail().apply(&mut body).is_ok() {
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|e| panic!("{e}"));
        let after = parse_model_request(ep, &bytes)
            .unwrap_or_else(|e| panic!("a body the guardrail let through does not parse: {e}"));
        assert_eq!(after.model, req.model);
        assert_eq!(after.stream, req.stream);
        assert!(
            after.max_tokens.is_some_and(|n| n <= CAP),
            "the guardrail let {:?} tokens through",
            after.max_tokens
        );
    }
});
