//! Bad input (issue 2, "Bad input"): malformed JSON, wrong types in every element, an empty
//! `Statement`, a 10 MB policy, deeply nested JSON, invalid UTF-8, a BOM, NUL bytes, huge
//! numbers, overlong strings. Each gives a clear diagnostic (path and message) and never a
//! panic. And any error while deciding is a deny: garbage context values never let a
//! statement whose condition needs them grant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gatehouse_policy::{
    Catalog, DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
    parse_policy, parse_policy_bytes, validate_bytes,
};
use proptest::prelude::*;
use std::time::Instant;

/// The errors for `bytes`, as `(path, message)`; checks that no document came back.
fn errors(bytes: &[u8]) -> Vec<(String, String)> {
    let parsed = parse_policy_bytes(bytes);
    let errors: Vec<(String, String)> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.path.clone(), d.message.clone()))
        .collect();
    assert!(
        !errors.is_empty(),
        "expected errors for {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    assert!(parsed.document.is_none(), "a document despite {errors:?}");
    // The same through the validator and the all-or-nothing API.
    let validated = validate_bytes(bytes, Catalog::builtin());
    assert!(validated.document.is_none());
    if let Ok(text) = std::str::from_utf8(bytes) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        assert!(PolicyDocument::parse(text).is_err());
    }
    errors
}

/// Asserts one of the errors is at `path` and mentions `fragment`.
#[track_caller]
fn assert_error(text: impl AsRef<[u8]>, path: &str, fragment: &str) {
    let errs = errors(text.as_ref());
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(fragment)),
        "no error at `{path}` mentioning `{fragment}` in {errs:?}"
    );
}

/// A one-statement document with `statement` spliced in.
fn doc(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

#[test]
fn malformed_json() {
    for text in [
        "{",
        "{\"Version\": \"2012-10-17\",",
        "{\"Statement\": [}",
        "{'Version': '2012-10-17'}",
        "{\"Version\": \"2012-10-17\", \"Statement\": []} trailing",
        "{\"Statement\": [{\"Effect\": \"Allow\",}]}",
        "nul",
        "\"just a string",
    ] {
        assert_error(text, "$", "invalid JSON");
    }
    // Valid JSON, but not a document.
    assert_error(
        "[]",
        "$",
        "a policy document must be a JSON object, not a list",
    );
    assert_error("null", "$", "not null");
    assert_error("42", "$", "not a number");
    assert_error("\"policy\"", "$", "not a string");
    assert_error("{}", "$", "missing Statement");
    for blank in ["", " ", "\n\t\r\n "] {
        assert_error(blank, "$", "empty file: expected a JSON policy document");
    }
}

#[test]
fn wrong_types_in_every_element() {
    let top = |k: &str, v: &str| {
        format!(
            r#"{{"Version":"2012-10-17","{k}":{v},"Statement":{{"Effect":"Allow","Action":"*","Resource":"*"}}}}"#
        )
    };
    assert_error(
        r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        "$.Version",
        "unknown Version 2012",
    );
    assert_error(
        r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        "$.Version",
        "expected \"2012-10-17\" or \"2008-10-17\"",
    );
    assert_error(top("Id", "5"), "$.Id", "Id must be a string, not a number");
    assert_error(top("Bogus", "1"), "$.Bogus", "unknown element `Bogus`");
    for (v, ty) in [
        ("\"x\"", "a string"),
        ("5", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        assert_error(
            format!(r#"{{"Version":"2012-10-17","Statement":{v}}}"#),
            "$.Statement",
            &format!("Statement must be an object or a list of objects, not {ty}"),
        );
    }
    assert_error(
        doc("1"),
        "$.Statement[0]",
        "a statement must be a JSON object, not a number",
    );
    assert_error(doc("[]"), "$.Statement[0]", "not a list");

    let st = |extra: &str| {
        doc(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"*",{extra}}}"#
        ))
    };
    assert_error(
        st(r#""Sid":[]"#),
        "$.Statement[0].Sid",
        "Sid must be a string, not a list",
    );
    assert_error(
        st(r#""Bogus":{}"#),
        "$.Statement[0].Bogus",
        "unknown element `Bogus`",
    );
    assert_error(
        st(r#""Condition":[]"#),
        "$.Statement[0].Condition",
        "Condition must be an object of operators, not a list",
    );
    assert_error(
        st(r#""Condition":{"StringEquals":"x"}"#),
        "$.Statement[0].Condition.StringEquals",
        "an operator takes an object of condition keys, not a string",
    );
    assert_error(
        st(r#""Condition":{"StringEquals":{}}"#),
        "$.Statement[0].Condition.StringEquals",
        "no condition keys",
    );
    assert_error(
        st(r#""Condition":{"StringEquals":{"k":{}}}"#),
        "$.Statement[0].Condition.StringEquals.k",
        "condition values must be strings, numbers or booleans, not an object",
    );
    assert_error(
        st(r#""Condition":{"StringEquals":{"k":["a",null]}}"#),
        "$.Statement[0].Condition.StringEquals.k[1]",
        "not null",
    );
    assert_error(
        st(r#""Condition":{"StringEquals":{"k":[]}}"#),
        "$.Statement[0].Condition.StringEquals.k",
        "at least one value",
    );
    assert_error(
        st(r#""Condition":{"Null":{"k":["true","false"]}}"#),
        "$.Statement[0].Condition.Null.k",
        "Null takes exactly one value",
    );
    assert_error(
        st(r#""Condition":{"Bool":{"k":"yes"}}"#),
        "$.Statement[0].Condition.Bool.k",
        "not a boolean",
    );
    assert_error(
        st(r#""Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8",5]}}"#),
        "$.Statement[0].Condition.IpAddress.aws:SourceIp[1]",
        "`5` is not an IPv4 or IPv6 address",
    );
    assert_error(
        st(r#""Condition":{"DateLessThan":{"aws:CurrentTime":true}}"#),
        "$.Statement[0].Condition.DateLessThan.aws:CurrentTime",
        "`true` is not a date",
    );
    assert_error(
        st(r#""Condition":{"BinaryEquals":{"k":"not base64!"}}"#),
        "$.Statement[0].Condition.BinaryEquals.k",
        "not base64",
    );

    // Effect, Action, Resource, Principal with every wrong JSON type.
    let wrong = [
        ("5", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
        ("{}", "an object"),
    ];
    for (v, ty) in wrong {
        assert_error(
            doc(&format!(r#"{{"Effect":{v},"Action":"*","Resource":"*"}}"#)),
            "$.Statement[0].Effect",
            "Effect must be \"Allow\" or \"Deny\"",
        );
        for key in ["Action", "NotAction"] {
            assert_error(
                doc(&format!(
                    r#"{{"Effect":"Allow","{key}":{v},"Resource":"*"}}"#
                )),
                &format!("$.Statement[0].{key}"),
                &format!("{key} must be a string or a list of strings, not {ty}"),
            );
            assert_error(
                doc(&format!(
                    r#"{{"Effect":"Allow","{key}":["ai:X",{v}],"Resource":"*"}}"#
                )),
                &format!("$.Statement[0].{key}[1]"),
                &format!("{key} entries must be strings, not {ty}"),
            );
        }
        for key in ["Resource", "NotResource"] {
            assert_error(
                doc(&format!(r#"{{"Effect":"Allow","Action":"*","{key}":{v}}}"#)),
                &format!("$.Statement[0].{key}"),
                &format!("{key} must be a string or a list of strings, not {ty}"),
            );
        }
        for key in ["Principal", "NotPrincipal"] {
            let path = format!("$.Statement[0].{key}");
            let text = doc(&format!(r#"{{"Effect":"Allow","Action":"*","{key}":{v}}}"#));
            if v == "{}" {
                assert_error(text, &path, "Principal names no one");
            } else {
                assert_error(text, &path, "Principal must be \"*\" or an object");
            }
            assert_error(
                doc(&format!(
                    r#"{{"Effect":"Allow","Action":"*","{key}":{{"AWS":{v}}}}}"#
                )),
                &format!("{path}.AWS"),
                "AWS must be a string or a list of strings",
            );
        }
    }
    assert_error(
        doc(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
        "$.Statement[0].Action",
        "must not be an empty list",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Action":"*","Principal":{"Bogus":"x"}}"#),
        "$.Statement[0].Principal.Bogus",
        "unknown principal type `Bogus`",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Action":"*","Principal":{"AWS":"alice"}}"#),
        "$.Statement[0].Principal.AWS",
        "`alice` is not an AWS principal",
    );
    assert_error(
        doc(r#"{"Effect":"Maybe","Action":"*","Resource":"*"}"#),
        "$.Statement[0].Effect",
        "not \"Maybe\"",
    );
    assert_error(
        doc(r#"{"Action":"*","Resource":"*"}"#),
        "$.Statement[0]",
        "missing Effect",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Resource":"*"}"#),
        "$.Statement[0]",
        "missing Action or NotAction",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Action":"*"}"#),
        "$.Statement[0]",
        "missing Resource or NotResource",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Action":"invoke","Resource":"*"}"#),
        "$.Statement[0].Action",
        "is not an action",
    );
    assert_error(
        doc(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3"}"#),
        "$.Statement[0].Resource",
        "is not an ARN",
    );

    // Every problem at once, each at its own path.
    let errs = errors(
        br#"{"Version":1,"Id":2,"Statement":[{"Sid":3,"Effect":4,"Action":5,"Resource":6,"Condition":7}]}"#,
    );
    let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
    for p in [
        "$.Version",
        "$.Id",
        "$.Statement[0].Sid",
        "$.Statement[0].Effect",
        "$.Statement[0].Action",
        "$.Statement[0].Resource",
        "$.Statement[0].Condition",
    ] {
        assert!(paths.contains(&p), "{p} missing from {errs:?}");
    }
}

#[test]
fn empty_statement() {
    assert_error(
        r#"{"Version":"2012-10-17","Statement":[]}"#,
        "$.Statement",
        "empty Statement: a policy needs at least one statement",
    );
    // An empty object is a statement with nothing in it.
    assert_error(
        r#"{"Version":"2012-10-17","Statement":{}}"#,
        "$.Statement",
        "missing Effect",
    );
    assert_error(
        r#"{"Version":"2012-10-17","Statement":[{}]}"#,
        "$.Statement[0]",
        "missing Effect",
    );
}

/// About 10 MB of statements: parses (or fails) cleanly and quickly, even in debug builds.
#[test]
fn a_ten_megabyte_policy() {
    let statement = |i: usize| {
        format!(
            r#"{{"Sid":"S{i}","Effect":"{}","Action":["ai:InvokeModel","ai:Get*","iam:{i}"],"Resource":"arn:gatehouse:ai:local:111122223333:model/m-{i}-*","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":["t{i}","${{aws:username}}"]}},"IpAddress":{{"aws:SourceIp":"10.{}.0.0/16"}}}}}}"#,
            if i.is_multiple_of(50) {
                "Deny"
            } else {
                "Allow"
            },
            i % 256
        )
    };
    let mut text = String::from(r#"{"Version":"2012-10-17","Statement":["#);
    let mut n = 0;
    while text.len() < 10 * 1024 * 1024 {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&statement(n));
        n += 1;
    }
    text.push_str("]}");
    println!("10 MB policy: {} bytes, {n} statements", text.len());

    let t = Instant::now();
    let parsed = parse_policy(&text);
    let parse_time = t.elapsed();
    let doc = parsed.document.expect("a valid 10 MB policy parses");
    assert_eq!(doc.statements.len(), n);

    let t = Instant::now();
    let validated = validate_bytes(text.as_bytes(), Catalog::builtin());
    let validate_time = t.elapsed();
    assert!(!validated.diagnostics.iter().any(|d| d.is_error()));

    let t = Instant::now();
    let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("big", doc)]).unwrap();
    let compile_time = t.elapsed();
    let req = Request::new(
        "arn:gatehouse:iam::111122223333:user/alice",
        "ai:InvokeModel",
        "arn:gatehouse:ai:local:111122223333:model/m-7-x",
    )
    .with("aws:PrincipalTag/team", "t7")
    .with("aws:SourceIp", "10.7.1.1");
    let eval = Evaluation::identity(&set);
    let t = Instant::now();
    let d = eval.decide(&req);
    let decide_time = t.elapsed();
    assert_eq!(d, eval.decide_linear(&req));
    assert_eq!(d.decision, DecisionKind::Allow);
    assert_eq!(d.statements[0].sid.as_deref(), Some("S7"));
    println!(
        "parse {parse_time:?}, validate {validate_time:?}, compile {compile_time:?}, decide {decide_time:?}"
    );
    // The times are printed, not asserted: wall-clock bounds in a test fail on a loaded
    // machine and prove nothing on a quiet one. The costs are measured in BENCHMARKS.md.

    // The same size, broken at the very end: one clear error, no document.
    let mut broken = text.clone();
    broken.truncate(broken.len() - 2);
    broken.push_str(r#",{"Effect":"Allow","Action":5,"Resource":"*"}]}"#);
    let parsed = parse_policy_bytes(broken.as_bytes());
    assert!(parsed.document.is_none());
    let errs: Vec<(String, String)> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.path.clone(), d.message.clone()))
        .collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, format!("$.Statement[{n}].Action"));
    // And truncated: invalid JSON, reported at the root.
    let parsed = parse_policy(&text[..text.len() / 2]);
    assert!(parsed.document.is_none());
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].path, "$");
    assert!(parsed.diagnostics[0].message.starts_with("invalid JSON"));
}

#[test]
fn deeply_nested_json() {
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    for text in [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        deep("[", "]", 100_000),
        deep("{\"Statement\":", "}", 50_000),
    ] {
        let errs = errors(text.as_bytes());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "$");
        assert!(errs[0].1.contains("invalid JSON"), "{errs:?}");
    }
    // Nesting inside a condition value, shallow enough for the JSON parser.
    let nested = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringEquals":{{"k":{}}}}}}}}}"#,
        deep("[", "]", 100)
    );
    assert_error(
        nested,
        "$.Statement.Condition.StringEquals.k[0]",
        "not a list",
    );
    // And inside a URL-encoded get-policy-version document.
    let encoded = format!(
        r#"{{"PolicyVersion":{{"Document":"{}"}}}}"#,
        "%5B".repeat(100_000)
    );
    assert_error(
        encoded,
        "$.PolicyVersion.Document",
        "document text is not JSON",
    );
}

#[test]
fn invalid_utf8() {
    for bytes in [
        &b"\xff"[..],
        b"{\"Version\":\"2012-10-17\",\"Statement\":\"\xc3\x28\"}",
        b"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ai:\xed\xa0\x80\",\"Resource\":\"*\"}}",
        b"\xfe\xff\x00{",
    ] {
        let errs = errors(bytes);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "$");
        assert!(errs[0].1.starts_with("not valid UTF-8 (at byte "), "{errs:?}");
    }
    let errs = errors(b"{\"Version\":\"\xff\"}");
    assert_eq!(errs[0].1, "not valid UTF-8 (at byte 12)");
    // A UTF-8 text whose JSON escapes name a lone surrogate is invalid JSON.
    assert_error(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ai:\ud800","Resource":"*"}}"#,
        "$",
        "invalid JSON",
    );
}

#[test]
fn byte_order_mark() {
    let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}}"#;
    let with_bom = format!("\u{feff}{text}");
    let parsed = parse_policy_bytes(with_bom.as_bytes());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(parsed.document, PolicyDocument::parse(text).ok());
    let validated = validate_bytes(with_bom.as_bytes(), Catalog::builtin());
    assert!(validated.document.is_some());
    // Two BOMs, or a BOM after whitespace, are not JSON.
    assert_error(format!("\u{feff}{with_bom}"), "$", "invalid JSON");
    assert_error(format!(" {with_bom}"), "$", "invalid JSON");
    // A BOM alone is an empty file.
    assert_error("\u{feff}", "$", "empty file");
}

#[test]
fn nul_bytes() {
    // Raw NUL bytes are not JSON, wherever they are.
    for text in [
        "\0",
        "{\"Version\":\"2012-10-17\",\0\"Statement\":[]}",
        "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ai:\0\",\"Resource\":\"*\"}}",
        "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}\0",
    ] {
        assert_error(text, "$", "invalid JSON");
    }
    // Escaped NULs are JSON text; where they make a value invalid, the element says so.
    assert_error(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow\u0000","Action":"*","Resource":"*"}}"#,
        "$.Statement.Effect",
        "Effect must be",
    );
    assert_error(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.1\u0000"}}}}"#,
        "$.Statement.Condition.IpAddress.aws:SourceIp",
        "is not an IPv4 or IPv6 address",
    );
    // Where any text is allowed, a NUL is text: the document round-trips.
    let text = r#"{"Version":"2012-10-17","Statement":{"Sid":"a\u0000b","Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/\u0000","Condition":{"StringEquals":{"k\u0000":"v\u0000"}}}}"#;
    let doc = PolicyDocument::parse(text).unwrap();
    assert_eq!(doc.statements[0].sid.as_deref(), Some("a\0b"));
    assert_eq!(
        PolicyDocument::parse(&doc.to_json().to_string()),
        Ok(doc.clone())
    );
    // A NUL in a request never matches text without it.
    let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("nul", doc)]).unwrap();
    let eval = Evaluation::identity(&set);
    let req = |k: &str, v: &str| {
        Request::new(
            "arn:aws:iam::111122223333:user/a",
            "s3:GetObject",
            "arn:aws:s3:::b/\0",
        )
        .with(k, v)
    };
    assert!(eval.decide(&req("k\0", "v\0")).is_allow());
    assert!(!eval.decide(&req("k", "v")).is_allow());
    assert!(!eval.decide(&req("k\0", "v")).is_allow());
}

#[test]
fn huge_numbers() {
    let cond = |op: &str, v: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{op}":{{"ai:MaxTokens":{v}}}}}}}}}"#
        )
    };
    // Beyond f64: the JSON parser refuses the number.
    assert_error(
        cond("NumericLessThan", "1e400"),
        "$",
        "invalid JSON: number out of range",
    );
    assert_error(
        cond("NumericLessThan", "-1e400"),
        "$",
        "invalid JSON: number out of range",
    );
    // As text, it is not a (finite) number.
    assert_error(
        cond("NumericLessThan", "\"1e400\""),
        "$.Statement.Condition.NumericLessThan.ai:MaxTokens",
        "`1e400` is not a number",
    );
    assert_error(
        cond("NumericEquals", &format!("\"{}\"", "9".repeat(400))),
        "$.Statement.Condition.NumericEquals.ai:MaxTokens",
        "is not a number",
    );
    assert_error(
        cond("DateLessThan", "\"1e400\""),
        "$.Statement.Condition.DateLessThan.ai:MaxTokens",
        "is not a date",
    );
    for bad in [
        "\"NaN\"",
        "\"inf\"",
        "\"-infinity\"",
        "\"0x10\"",
        "\"1_000\"",
    ] {
        assert_error(
            cond("NumericEquals", bad),
            "$.Statement.Condition.NumericEquals.ai:MaxTokens",
            "is not a number",
        );
    }
    // Large but finite numbers parse, round-trip and compare.
    for big in [
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "123456789012345678901234567890",
        "1.7976931348623157e308",
        "5e-324",
    ] {
        let text = cond("NumericLessThanEquals", big);
        let doc = PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{big}: {e}"));
        assert_eq!(
            PolicyDocument::parse(&doc.to_json().to_string()),
            Ok(doc.clone())
        );
        PolicySet::new(PolicyType::Identity, [NamedPolicy::new("n", doc)]).unwrap();
    }
    let doc = PolicyDocument::parse(&cond("NumericLessThan", "1e300")).unwrap();
    let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("n", doc)]).unwrap();
    let eval = Evaluation::identity(&set);
    let req = |v: &str| {
        Request::new("arn:aws:iam::111122223333:user/a", "ai:X", "*").with("ai:MaxTokens", v)
    };
    assert!(eval.decide(&req("1e299")).is_allow());
    assert!(!eval.decide(&req("1e300")).is_allow());
    assert!(
        !eval.decide(&req("1e999")).is_allow(),
        "infinity is not a number"
    );
    assert!(!eval.decide(&req(&"9".repeat(400))).is_allow());
}

#[test]
fn overlong_strings() {
    let long = "a".repeat(4 * 1024 * 1024);
    let t = Instant::now();
    // Long but valid text: accepted.
    let text = doc(&format!(
        r#"{{"Sid":"{long}","Effect":"Allow","Action":"ai:{long}","Resource":"arn:aws:s3:::{long}","Condition":{{"StringLike":{{"k":"{long}*"}}}}}}"#
    ));
    let d = PolicyDocument::parse(&text).unwrap();
    assert_eq!(
        PolicyDocument::parse(&d.to_json().to_string()),
        Ok(d.clone())
    );
    let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("long", d)]).unwrap();
    let req = Request::new(
        "arn:aws:iam::111122223333:user/a",
        format!("ai:{long}"),
        format!("arn:aws:s3:::{long}"),
    )
    .with("k", format!("{long}!"));
    assert!(Evaluation::identity(&set).decide(&req).is_allow());
    // Long and invalid: a clear error at the right path.
    assert_error(
        doc(&format!(
            r#"{{"Effect":"Allow","Action":"{long}","Resource":"*"}}"#
        )),
        "$.Statement[0].Action",
        "is not an action (expected service:Action, or *)",
    );
    assert_error(
        doc(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"{long}"}}"#
        )),
        "$.Statement[0].Resource",
        "is not an ARN",
    );
    assert_error(
        doc(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{long}":{{"k":"v"}}}}}}"#
        )),
        &format!("$.Statement[0].Condition.{long}"),
        "unknown condition operator",
    );
    assert_error(
        doc(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${{{long}"}}"#
        )),
        "$.Statement[0].Resource",
        "unterminated policy variable",
    );
    println!("overlong strings: {:?}", t.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Any error while deciding is a deny
// ---------------------------------------------------------------------------------------------

const GARBAGE: &[&str] = &[
    "",
    " ",
    "not-a-value",
    "10.0.0.0/33",
    "300.1.1.1",
    "10.1.2.3/8",
    "yesterday",
    "2026-13-45T99:99:99Z",
    "1e999",
    "NaN",
    "inf",
    "0x10",
    "🦀",
    "\0",
];

/// An `Allow` statement with one condition on `key`.
fn allow_with(op: &str, key: &str, value: &str) -> PolicySet {
    let text = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "ai:InvokeModel", "Resource": "*",
                      "Condition": {op: {key: value}}}
    })
    .to_string();
    let doc = PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{op}: {e}"));
    PolicySet::new(PolicyType::Identity, [NamedPolicy::new("p", doc)]).unwrap()
}

/// `Allow *` and a `Deny` statement with one condition on `key`.
fn deny_with(op: &str, key: &str, value: &str) -> PolicySet {
    let text = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ai:InvokeModel", "Resource": "*",
             "Condition": {op: {key: value}}}
        ]
    })
    .to_string();
    let doc = PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{op}: {e}"));
    PolicySet::new(PolicyType::Identity, [NamedPolicy::new("p", doc)]).unwrap()
}

fn invoke() -> Request {
    Request::new(
        "arn:gatehouse:iam::111122223333:user/alice",
        "ai:InvokeModel",
        "arn:gatehouse:ai:local:111122223333:model/m",
    )
}

/// Operators that compare typed values, with a valid policy value and the key they test.
/// Negated operators included: a value that cannot be read is not "different from" the
/// policy's value, it is an error, and an error never grants.
const TYPED: &[(&str, &str, &str)] = &[
    ("IpAddress", "aws:SourceIp", "0.0.0.0/0"),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8"),
    ("NumericEquals", "ai:MaxTokens", "5"),
    ("NumericNotEquals", "ai:MaxTokens", "5"),
    ("NumericLessThan", "ai:MaxTokens", "1e300"),
    ("NumericLessThanEquals", "ai:MaxTokens", "1e300"),
    ("NumericGreaterThan", "ai:MaxTokens", "-1e300"),
    ("NumericGreaterThanEquals", "ai:MaxTokens", "-1e300"),
    ("DateEquals", "aws:CurrentTime", "2026-01-01T00:00:00Z"),
    ("DateNotEquals", "aws:CurrentTime", "2026-01-01T00:00:00Z"),
    ("DateLessThan", "aws:CurrentTime", "9999-12-31T00:00:00Z"),
    (
        "DateLessThanEquals",
        "aws:CurrentTime",
        "9999-12-31T00:00:00Z",
    ),
    ("DateGreaterThan", "aws:CurrentTime", "1970-01-02T00:00:00Z"),
    (
        "DateGreaterThanEquals",
        "aws:CurrentTime",
        "1970-01-02T00:00:00Z",
    ),
    ("Bool", "aws:SecureTransport", "true"),
    ("Bool", "aws:SecureTransport", "false"),
];

#[test]
fn garbage_context_values_never_grant() {
    let mut granted = Vec::new();
    for (op, key, value) in TYPED {
        for prefix in ["", "ForAnyValue:", "ForAllValues:"] {
            for suffix in ["", "IfExists"] {
                let op = format!("{prefix}{op}{suffix}");
                let set = allow_with(&op, key, value);
                let eval = Evaluation::identity(&set);
                let deny_set = deny_with(&op, key, value);
                let deny = Evaluation::identity(&deny_set);
                for garbage in GARBAGE {
                    for req in [
                        invoke().with(*key, *garbage),
                        invoke().with(*key, vec![*garbage]),
                        invoke().with(key.to_uppercase(), vec![*garbage, *garbage]),
                    ] {
                        let d = eval.decide(&req);
                        assert_eq!(d, eval.decide_linear(&req));
                        if d.is_allow() {
                            granted.push(format!("{op} {key}={:?}", req.context.get(key)));
                        }
                        // The same condition on a Deny refuses.
                        let d = deny.decide(&req);
                        assert_eq!(d, deny.decide_linear(&req));
                        if d.decision != DecisionKind::ExplicitDeny {
                            granted.push(format!(
                                "Deny {op} {key}={:?} did not deny",
                                req.context.get(key)
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        granted.is_empty(),
        "{} garbage requests were allowed:\n{}",
        granted.len(),
        granted.join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For arbitrary text as the context value, a typed condition grants only when the value
    /// reads as that type.
    #[test]
    fn arbitrary_context_text_grants_only_when_it_reads(
        which in 0..TYPED.len(),
        text in prop_oneof![
            "\\PC{0,12}",
            "[0-9.:/a-fA-F]{0,16}",
            "[0-9eE+.-]{0,10}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{0,8}Z?",
        ],
    ) {
        let (op, key, value) = TYPED[which];
        let set = allow_with(op, key, value);
        let eval = Evaluation::identity(&set);
        let req = invoke().with(key, text.as_str());
        let d = eval.decide(&req);
        prop_assert_eq!(&d, &eval.decide_linear(&req));
        if d.is_allow() {
            let reads = match op {
                o if o.contains("Ip") => text.trim().parse::<std::net::IpAddr>().is_ok(),
                o if o.starts_with("Numeric") => text.trim().parse::<f64>().is_ok_and(f64::is_finite),
                o if o.starts_with("Bool") => text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false"),
                // Dates: a number, or text that starts like an ISO 8601 date.
                _ => text.trim().parse::<f64>().is_ok_and(f64::is_finite)
                    || text.trim().get(..4).is_some_and(|y| y.bytes().all(|b| b.is_ascii_digit())),
            };
            prop_assert!(reads, "{} {}={:?} granted", op, key, text);
        }
    }
}
