//! Reading AWS IAM JSON policy text into the model, reporting every problem at once.
//!
//! Parsing is strict where AWS is strict (unknown elements, `Action` with `NotAction`, a
//! missing `Effect`, malformed ARNs, unknown operators, values of the wrong type for their
//! operator, variables where AWS allows none) and lenient where AWS is lenient (a string
//! or a list wherever either is allowed). Any error means no document: a policy that AWS
//! would refuse is never half-evaluated.

use crate::arn::is_arn_shaped;
use crate::condition::CompiledCondition;
use crate::diagnostic::{Diagnostic, JsonPath};
use crate::model::{
    ActionBlock, ConditionBlock, ConditionEntry, ConditionValue, Effect, PolicyDocument, Principal,
    PrincipalBlock, PrincipalKind, ResourceBlock, Statement, Version,
};
use crate::operator::{Operator, OperatorError};
use crate::template;
use serde_json::{Map, Value};

/// The result of parsing: a document when there was no error, and every diagnostic.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The document, when no error was found.
    pub document: Option<PolicyDocument>,
    /// Every problem found (errors and warnings).
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses policy text. Accepts a plain policy document, or the output of
/// `aws iam get-policy-version` (`{"PolicyVersion": {"Document": ...}}`), whose document may
/// be an object or URL-encoded JSON text.
pub fn parse_policy(text: &str) -> Parsed {
    let mut diags = Vec::new();
    if text.trim().is_empty() {
        diags.push(Diagnostic::error(
            "$",
            "empty file: expected a JSON policy document",
        ));
        return Parsed {
            document: None,
            diagnostics: diags,
        };
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            diags.push(Diagnostic::error("$", format!("invalid JSON: {e}")));
            return Parsed {
                document: None,
                diagnostics: diags,
            };
        }
    };
    parse_value(&value)
}

/// Parses raw bytes, refusing text that is not UTF-8.
pub fn parse_policy_bytes(bytes: &[u8]) -> Parsed {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_policy(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(e) => Parsed {
            document: None,
            diagnostics: vec![Diagnostic::error(
                "$",
                format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
            )],
        },
    }
}

/// Parses an already-decoded JSON value (see [`parse_policy`]).
pub fn parse_value(value: &Value) -> Parsed {
    let mut diags = Vec::new();
    let root = JsonPath::root();
    let document = match unwrap_policy_version(value, &root, &mut diags) {
        Some((doc, path)) => match doc {
            DocSource::Borrowed(v) => parse_document(v, &path, &mut diags),
            DocSource::Owned(v) => parse_document(&v, &path, &mut diags),
        },
        None => None,
    };
    let document = if diags.iter().any(Diagnostic::is_error) {
        None
    } else {
        document
    };
    Parsed {
        document,
        diagnostics: diags,
    }
}

enum DocSource<'a> {
    Borrowed(&'a Value),
    Owned(Value),
}

fn unwrap_policy_version<'a>(
    value: &'a Value,
    root: &JsonPath,
    diags: &mut Vec<Diagnostic>,
) -> Option<(DocSource<'a>, JsonPath)> {
    let Some(pv) = value.as_object().and_then(|o| o.get("PolicyVersion")) else {
        return Some((DocSource::Borrowed(value), root.clone()));
    };
    let path = root.key("PolicyVersion").key("Document");
    match pv.get("Document") {
        Some(Value::String(s)) => {
            let decoded = percent_decode(s);
            match serde_json::from_str::<Value>(&decoded) {
                Ok(v) => Some((DocSource::Owned(v), path)),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        path.as_str(),
                        format!("document text is not JSON: {e}"),
                    ));
                    None
                }
            }
        }
        Some(doc) => Some((DocSource::Borrowed(doc), path)),
        None => {
            diags.push(Diagnostic::error(
                root.key("PolicyVersion").as_str(),
                "missing Document",
            ));
            None
        }
    }
}

/// Decodes `%XX` escapes (the IAM API returns documents URL-encoded).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const TOP_KEYS: [&str; 3] = ["Version", "Id", "Statement"];
const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

const VARIABLE_PLACES: &str =
    "policy variables are only allowed in Resource and in String and Arn condition values";

fn parse_document(
    value: &Value,
    path: &JsonPath,
    diags: &mut Vec<Diagnostic>,
) -> Option<PolicyDocument> {
    let Some(obj) = value.as_object() else {
        diags.push(Diagnostic::error(
            path.as_str(),
            format!(
                "a policy document must be a JSON object, not {}",
                type_name(value)
            ),
        ));
        return None;
    };
    for k in obj.keys() {
        if !TOP_KEYS.contains(&k.as_str()) {
            diags.push(Diagnostic::error(
                path.key(k).as_str(),
                format!("unknown element `{k}` (expected Version, Id or Statement)"),
            ));
        }
    }
    let version = match obj.get("Version") {
        None => None,
        Some(Value::String(s)) if s == "2012-10-17" => Some(Version::V2012_10_17),
        Some(Value::String(s)) if s == "2008-10-17" => Some(Version::V2008_10_17),
        Some(other) => {
            diags.push(Diagnostic::error(
                path.key("Version").as_str(),
                format!("unknown Version {other} (expected \"2012-10-17\" or \"2008-10-17\")"),
            ));
            None
        }
    };
    let substitute = version == Some(Version::V2012_10_17);
    let id = match obj.get("Id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            diags.push(Diagnostic::error(
                path.key("Id").as_str(),
                format!("Id must be a string, not {}", type_name(other)),
            ));
            None
        }
    };
    let spath = path.key("Statement");
    let statements = match obj.get("Statement") {
        None => {
            diags.push(Diagnostic::error(path.as_str(), "missing Statement"));
            return None;
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                diags.push(Diagnostic::error(
                    spath.as_str(),
                    "empty Statement: a policy needs at least one statement",
                ));
            }
            items
                .iter()
                .enumerate()
                .filter_map(|(i, s)| parse_statement(s, &spath.index(i), substitute, diags))
                .collect()
        }
        Some(s @ Value::Object(_)) => parse_statement(s, &spath, substitute, diags)
            .into_iter()
            .collect(),
        Some(other) => {
            diags.push(Diagnostic::error(
                spath.as_str(),
                format!(
                    "Statement must be an object or a list of objects, not {}",
                    type_name(other)
                ),
            ));
            return None;
        }
    };
    Some(PolicyDocument {
        version,
        id,
        statements,
    })
}

fn parse_statement(
    value: &Value,
    path: &JsonPath,
    substitute: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Statement> {
    let Some(obj) = value.as_object() else {
        diags.push(Diagnostic::error(
            path.as_str(),
            format!(
                "a statement must be a JSON object, not {}",
                type_name(value)
            ),
        ));
        return None;
    };
    let before = diags.iter().filter(|d| d.is_error()).count();
    for k in obj.keys() {
        if !STATEMENT_KEYS.contains(&k.as_str()) {
            diags.push(Diagnostic::error(
                path.key(k).as_str(),
                format!("unknown element `{k}` in a statement"),
            ));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            diags.push(Diagnostic::error(
                path.key("Sid").as_str(),
                format!("Sid must be a string, not {}", type_name(other)),
            ));
            None
        }
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Some(Effect::Allow),
        Some(Value::String(s)) if s == "Deny" => Some(Effect::Deny),
        Some(other) => {
            diags.push(Diagnostic::error(
                path.key("Effect").as_str(),
                format!("Effect must be \"Allow\" or \"Deny\", not {other}"),
            ));
            None
        }
        None => {
            diags.push(Diagnostic::error(path.as_str(), "missing Effect"));
            None
        }
    };

    let principal = match pick_pair(obj, "Principal", "NotPrincipal", path, diags) {
        Some((negated, key, v)) => parse_principal(v, &path.key(key), diags)
            .map(|principal| PrincipalBlock { negated, principal }),
        None => None,
    };

    let action = match pick_pair(obj, "Action", "NotAction", path, diags) {
        Some((negated, key, v)) => {
            let p = path.key(key);
            string_list(v, &p, key, diags).map(|patterns| {
                for (i, a) in patterns.iter().enumerate() {
                    check_action(a, &p, i, patterns.len(), substitute, diags);
                }
                ActionBlock { negated, patterns }
            })
        }
        None => {
            if !obj.contains_key("Action") && !obj.contains_key("NotAction") {
                diags.push(Diagnostic::error(
                    path.as_str(),
                    "missing Action or NotAction",
                ));
            }
            None
        }
    };

    let resource = match pick_pair(obj, "Resource", "NotResource", path, diags) {
        Some((negated, key, v)) => {
            let p = path.key(key);
            string_list(v, &p, key, diags).map(|patterns| {
                for (i, r) in patterns.iter().enumerate() {
                    check_resource(r, &elem_path(&p, i, patterns.len()), substitute, diags);
                }
                ResourceBlock { negated, patterns }
            })
        }
        None => {
            let has_principal = obj.contains_key("Principal") || obj.contains_key("NotPrincipal");
            if !has_principal && !obj.contains_key("Resource") && !obj.contains_key("NotResource") {
                diags.push(Diagnostic::error(
                    path.as_str(),
                    "missing Resource or NotResource",
                ));
            }
            None
        }
    };

    let condition = match obj.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_condition(v, &path.key("Condition"), substitute, diags),
    };

    let after = diags.iter().filter(|d| d.is_error()).count();
    if after > before {
        return None;
    }
    Some(Statement {
        sid,
        effect: effect?,
        principal,
        action: action?,
        resource,
        condition,
    })
}

/// Finds `positive` or `negative`; reports both present as an error.
fn pick_pair<'a>(
    obj: &'a Map<String, Value>,
    positive: &'static str,
    negative: &'static str,
    path: &JsonPath,
    diags: &mut Vec<Diagnostic>,
) -> Option<(bool, &'static str, &'a Value)> {
    match (obj.get(positive), obj.get(negative)) {
        (Some(_), Some(_)) => {
            diags.push(Diagnostic::error(
                path.as_str(),
                format!("a statement cannot have both {positive} and {negative}"),
            ));
            None
        }
        (Some(v), None) => Some((false, positive, v)),
        (None, Some(v)) => Some((true, negative, v)),
        (None, None) => None,
    }
}

fn elem_path(p: &JsonPath, i: usize, len: usize) -> JsonPath {
    if len == 1 { p.clone() } else { p.index(i) }
}

/// A string or a non-empty list of strings.
fn string_list(
    v: &Value,
    path: &JsonPath,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => {
            diags.push(Diagnostic::error(
                path.as_str(),
                format!("{what} must not be an empty list"),
            ));
            None
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        ok = false;
                        diags.push(Diagnostic::error(
                            path.index(i).as_str(),
                            format!("{what} entries must be strings, not {}", type_name(other)),
                        ));
                    }
                }
            }
            ok.then_some(out)
        }
        other => {
            diags.push(Diagnostic::error(
                path.as_str(),
                format!(
                    "{what} must be a string or a list of strings, not {}",
                    type_name(other)
                ),
            ));
            None
        }
    }
}

fn has_variable(s: &str, substitute: bool) -> bool {
    substitute && s.contains("${")
}

fn check_action(
    a: &str,
    path: &JsonPath,
    i: usize,
    len: usize,
    substitute: bool,
    diags: &mut Vec<Diagnostic>,
) {
    let p = elem_path(path, i, len);
    if has_variable(a, substitute) {
        diags.push(Diagnostic::error(p.as_str(), VARIABLE_PLACES));
        return;
    }
    if a == "*" {
        return;
    }
    let valid = match a.split_once(':') {
        Some((svc, name)) => {
            !svc.is_empty()
                && !name.is_empty()
                && svc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '?' | '.'))
                && !name.contains(':')
                && !name.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        diags.push(Diagnostic::error(
            p.as_str(),
            format!("`{a}` is not an action (expected service:Action, or *)"),
        ));
    }
}

fn check_resource(r: &str, path: &JsonPath, substitute: bool, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = template::parse(r, substitute) {
        diags.push(Diagnostic::error(path.as_str(), e.0));
        return;
    }
    if !is_arn_shaped(r) {
        diags.push(Diagnostic::error(
            path.as_str(),
            format!("`{r}` is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE) or *"),
        ));
    }
}

fn parse_principal(v: &Value, path: &JsonPath, diags: &mut Vec<Diagnostic>) -> Option<Principal> {
    match v {
        Value::String(s) if s == "*" => Some(Principal::Any),
        Value::Object(m) => {
            if m.is_empty() {
                diags.push(Diagnostic::error(path.as_str(), "Principal names no one"));
                return None;
            }
            let mut entries = Vec::with_capacity(m.len());
            let mut ok = true;
            for (k, ids) in m {
                let kp = path.key(k);
                let Some(kind) = PrincipalKind::parse(k) else {
                    diags.push(Diagnostic::error(
                        kp.as_str(),
                        format!(
                            "unknown principal type `{k}` (expected AWS, Federated, Service or CanonicalUser)"
                        ),
                    ));
                    ok = false;
                    continue;
                };
                let Some(list) = string_list(ids, &kp, k, diags) else {
                    ok = false;
                    continue;
                };
                for (i, id) in list.iter().enumerate() {
                    let ip = elem_path(&kp, i, list.len());
                    if id.contains("${") {
                        diags.push(Diagnostic::error(ip.as_str(), VARIABLE_PLACES));
                        ok = false;
                    } else if kind == PrincipalKind::Aws
                        && !(id == "*"
                            || (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
                            || is_arn_shaped(id))
                    {
                        diags.push(Diagnostic::error(
                            ip.as_str(),
                            format!("`{id}` is not an AWS principal (an account id, an ARN, or *)"),
                        ));
                        ok = false;
                    }
                }
                entries.push((kind, list));
            }
            ok.then_some(Principal::Typed(entries))
        }
        other => {
            diags.push(Diagnostic::error(
                path.as_str(),
                format!(
                    "Principal must be \"*\" or an object such as {{\"AWS\": [...]}}, not {other}"
                ),
            ));
            None
        }
    }
}

fn parse_condition(
    v: &Value,
    path: &JsonPath,
    substitute: bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ConditionBlock> {
    let Some(ops) = v.as_object() else {
        diags.push(Diagnostic::error(
            path.as_str(),
            format!(
                "Condition must be an object of operators, not {}",
                type_name(v)
            ),
        ));
        return Vec::new();
    };
    let mut blocks = Vec::with_capacity(ops.len());
    for (op_text, keys) in ops {
        let op_path = path.key(op_text);
        let op = match Operator::parse(op_text) {
            Ok(op) => Some(op),
            Err(OperatorError::Unknown) => {
                diags.push(Diagnostic::error(
                    op_path.as_str(),
                    format!("unknown condition operator `{op_text}`"),
                ));
                None
            }
            Err(OperatorError::IfExistsOnNull) => {
                diags.push(Diagnostic::error(
                    op_path.as_str(),
                    "`IfExists` cannot be used with the Null operator",
                ));
                None
            }
        };
        let Some(keys) = keys.as_object() else {
            diags.push(Diagnostic::error(
                op_path.as_str(),
                format!(
                    "an operator takes an object of condition keys, not {}",
                    type_name(keys)
                ),
            ));
            continue;
        };
        if keys.is_empty() {
            diags.push(Diagnostic::error(
                op_path.as_str(),
                "no condition keys for this operator",
            ));
        }
        let mut entries = Vec::with_capacity(keys.len());
        for (key, vals) in keys {
            let kp = op_path.key(key);
            if key.contains("${") {
                diags.push(Diagnostic::error(kp.as_str(), VARIABLE_PLACES));
                continue;
            }
            let Some(values) = condition_values(vals, &kp, diags) else {
                continue;
            };
            if let Some(op) = op
                && let Err(e) = CompiledCondition::compile(op, key, &values, substitute)
            {
                let p = match e.index {
                    Some(i) if matches!(vals, Value::Array(_)) => kp.index(i),
                    _ => kp.clone(),
                };
                diags.push(Diagnostic::error(p.as_str(), e.message));
            }
            entries.push(ConditionEntry {
                key: key.clone(),
                values,
            });
        }
        blocks.push(ConditionBlock {
            operator: op_text.clone(),
            entries,
        });
    }
    blocks
}

fn condition_values(
    v: &Value,
    path: &JsonPath,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<ConditionValue>> {
    let one = |v: &Value| -> Option<ConditionValue> {
        match v {
            Value::String(s) => Some(ConditionValue::String(s.clone())),
            Value::Number(n) => Some(ConditionValue::Number(n.clone())),
            Value::Bool(b) => Some(ConditionValue::Bool(*b)),
            _ => None,
        }
    };
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                diags.push(Diagnostic::error(
                    path.as_str(),
                    "a condition key needs at least one value",
                ));
                return None;
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match one(item) {
                    Some(c) => out.push(c),
                    None => {
                        diags.push(Diagnostic::error(
                            path.index(i).as_str(),
                            format!(
                                "condition values must be strings, numbers or booleans, not {}",
                                type_name(item)
                            ),
                        ));
                        return None;
                    }
                }
            }
            Some(out)
        }
        other => match one(other) {
            Some(c) => Some(vec![c]),
            None => {
                diags.push(Diagnostic::error(
                    path.as_str(),
                    format!(
                        "condition values must be strings, numbers or booleans, not {}",
                        type_name(other)
                    ),
                ));
                None
            }
        },
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_policy(text)
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"},
            {"Effect":"Allow","Action":"ai:X","NotAction":"ai:Y","Resource":"*"},
            {"Effect":"Allow","Action":"ai:X","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}},
            {"Action":"ai:X","Resource":"nope","Bogus":1},
            {"Effect":"Deny","Action":"ai:X","Resource":"*","Condition":{
               "IpAddress":{"aws:SourceIp":["10.0.0.0/8","300.1.1.1"]},
               "NullIfExists":{"k":"true"},
               "NumericLessThan":{"n":"${aws:username}"}}}
        ]}"#;
        let e = errors(text);
        assert!(
            e.contains(
                &"$.Statement[1]: a statement cannot have both Action and NotAction".to_string()
            ),
            "{e:?}"
        );
        assert!(
            e.contains(
                &"$.Statement[2].Condition.StringEqualz: unknown condition operator `StringEqualz`"
                    .to_string()
            ),
            "{e:?}"
        );
        assert!(
            e.contains(&"$.Statement[3]: missing Effect".to_string()),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("$.Statement[3].Bogus: unknown element")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("$.Statement[3].Resource: `nope` is not an ARN")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|l| l
                .starts_with("$.Statement[4].Condition.IpAddress.aws:SourceIp[1]: `300.1.1.1`")),
            "{e:?}"
        );
        assert!(e.contains(&"$.Statement[4].Condition.NullIfExists: `IfExists` cannot be used with the Null operator".to_string()), "{e:?}");
        assert!(
            e.iter().any(|l| l.starts_with(
                "$.Statement[4].Condition.NumericLessThan.n: policy variables are not allowed"
            )),
            "{e:?}"
        );
        assert_eq!(e.len(), 8, "{e:?}");
    }

    #[test]
    fn bad_documents() {
        assert_eq!(
            errors(""),
            vec!["$: empty file: expected a JSON policy document"]
        );
        assert!(errors("{").iter().all(|l| l.starts_with("$: invalid JSON")));
        assert_eq!(
            errors("[]"),
            vec!["$: a policy document must be a JSON object, not a list"]
        );
        assert_eq!(
            errors(r#"{"Version":"2012-10-17","Statement":[]}"#),
            vec!["$.Statement: empty Statement: a policy needs at least one statement"]
        );
        let deep = "[".repeat(100_000);
        assert_eq!(errors(&deep).len(), 1);
        assert!(
            parse_policy_bytes(b"{\"a\":\"\xff\"}").diagnostics[0]
                .message
                .contains("UTF-8")
        );
    }

    #[test]
    fn variables_are_checked_where_they_appear() {
        let e = errors(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ai:${x}","Resource":"arn:gatehouse:ai:::model/${aws:username}"}}"#,
        );
        assert_eq!(e, vec![format!("$.Statement.Action: {VARIABLE_PLACES}")]);
        // under 2008-10-17 the same text is literal
        assert!(errors(r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"ai:${x}","Resource":"*"}}"#).is_empty());
    }

    #[test]
    fn accepts_get_policy_version_output() {
        let text = r#"{"PolicyVersion":{"Document":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]},"VersionId":"v1","IsDefaultVersion":true}}"#;
        assert!(parse_policy(text).document.is_some());
        let encoded = r#"{"PolicyVersion":{"Document":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D"}}"#;
        assert!(parse_policy(encoded).document.is_some());
        let bad = r#"{"PolicyVersion":{"Document":{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}}}"#;
        assert!(errors(bad)[0].starts_with("$.PolicyVersion.Document.Statement[0].Effect"));
    }
}
