//! Arbitrary bytes into the parser: never a panic; and whenever a document comes back, its
//! own JSON parses back to the same document (serialize ∘ parse is the identity).
#![no_main]

use gatehouse_policy::{Catalog, PolicyDocument, parse_policy_bytes, validate_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_policy_bytes(data);
    let has_error = parsed.diagnostics.iter().any(|d| d.is_error());
    assert_eq!(parsed.document.is_some(), !has_error, "{:?}", parsed.diagnostics);
    for d in &parsed.diagnostics {
        assert!(d.path.starts_with('$'), "{d:?}");
        assert!(!d.message.is_empty(), "{d:?}");
    }
    if let Some(doc) = parsed.document {
        let text = doc.to_json().to_string();
        match PolicyDocument::parse(&text) {
            Ok(again) => assert_eq!(again, doc, "{text}"),
            Err(e) => panic!("own JSON does not parse: {e}\n{text}"),
        }
    }
    // The validator agrees with the parser on whether there is a document.
    let validated = validate_bytes(data, Catalog::builtin());
    assert_eq!(validated.document.is_some(), !has_error);
});
