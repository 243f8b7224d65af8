//! Validation: the parser's errors plus the warnings that need the catalog.
//!
//! Warnings never refuse a policy; they point at what is probably a mistake: an action the
//! catalog does not know for a service it does know, `Allow` with `NotAction`,
//! `NotResource` or `NotPrincipal` (grants more than it seems to), `ForAllValues` on a
//! single-valued key (true whenever the key is absent), duplicate `Sid`s.

use crate::catalog::Catalog;
use crate::diagnostic::{Diagnostic, JsonPath};
use crate::model::{Effect, PolicyDocument};
use crate::operator::{Operator, SetQualifier};
use crate::parse::{Parsed, parse_policy_bytes};
use crate::pattern::{Glob, has_wildcard};

/// Parses and validates policy bytes: every error and warning, with JSON paths.
pub fn validate_bytes(bytes: &[u8], catalog: &Catalog) -> Parsed {
    let mut parsed = parse_policy_bytes(bytes);
    if let Some(doc) = &parsed.document {
        let base = base_path(bytes);
        parsed.diagnostics.extend(warnings(doc, &base, catalog));
    }
    parsed
}

/// Parses and validates policy text (see [`validate_bytes`]).
pub fn validate(text: &str, catalog: &Catalog) -> Parsed {
    validate_bytes(text.as_bytes(), catalog)
}

/// The path of the document inside the file (`get-policy-version` output nests it).
fn base_path(bytes: &[u8]) -> JsonPath {
    let nested = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("PolicyVersion").is_some());
    if nested {
        JsonPath::root().key("PolicyVersion").key("Document")
    } else {
        JsonPath::root()
    }
}

/// The catalog-aware warnings for a parsed document.
pub fn warnings(doc: &PolicyDocument, base: &JsonPath, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut sids = std::collections::HashSet::new();
    for (i, st) in doc.statements.iter().enumerate() {
        let sp = base.key("Statement").index(i);
        if let Some(sid) = &st.sid
            && !sids.insert(sid.as_str())
        {
            out.push(Diagnostic::warning(
                sp.key("Sid").as_str(),
                format!("duplicate Sid `{sid}`"),
            ));
        }
        if st.effect == Effect::Allow {
            if st.action.negated {
                out.push(Diagnostic::warning(
                    sp.key("NotAction").as_str(),
                    "Allow with NotAction allows every action not listed, including those of services added later",
                ));
            }
            if st.resource.as_ref().is_some_and(|r| r.negated) {
                out.push(Diagnostic::warning(
                    sp.key("NotResource").as_str(),
                    "Allow with NotResource allows every resource not listed",
                ));
            }
            if st.principal.as_ref().is_some_and(|p| p.negated) {
                out.push(Diagnostic::warning(
                    sp.key("NotPrincipal").as_str(),
                    "Allow with NotPrincipal allows every principal not listed, including anonymous ones",
                ));
            }
        }
        let key = if st.action.negated {
            "NotAction"
        } else {
            "Action"
        };
        let ap = sp.key(key);
        let n = st.action.patterns.len();
        for (j, a) in st.action.patterns.iter().enumerate() {
            let p = if n == 1 { ap.clone() } else { ap.index(j) };
            if let Some(w) = unknown_action(a, catalog) {
                out.push(Diagnostic::warning(p.as_str(), w));
            }
        }
        for block in &st.condition {
            let Ok(op) = Operator::parse(&block.operator) else {
                continue;
            };
            if op.qualifier != Some(SetQualifier::ForAllValues) {
                continue;
            }
            for entry in &block.entries {
                if catalog
                    .condition_key(&entry.key)
                    .is_some_and(|k| !k.is_multivalued())
                {
                    out.push(Diagnostic::warning(
                        sp.key("Condition").key(&block.operator).key(&entry.key).as_str(),
                        format!(
                            "ForAllValues on single-valued key `{}`: the condition is also true when the key is absent",
                            entry.key
                        ),
                    ));
                }
            }
        }
    }
    out
}

fn unknown_action(action: &str, catalog: &Catalog) -> Option<String> {
    let (svc, name) = action.split_once(':')?;
    if has_wildcard(svc) {
        return None;
    }
    let service = catalog.service(svc)?;
    if has_wildcard(name) {
        let g = Glob::new(&name.to_lowercase());
        let any = service.actions.keys().any(|k| g.matches(&k.to_lowercase()));
        return (!any).then(|| format!("`{action}` matches no known {svc} action"));
    }
    let known = service.actions.keys().any(|k| k.eq_ignore_ascii_case(name));
    (!known).then(|| format!("unknown action `{action}`: the {svc} service has no action `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        validate(text, Catalog::builtin())
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn warnings_are_reported() {
        let l = lines(
            r#"{"Version":"2012-10-17","Statement":[
              {"Sid":"A","Effect":"Allow","NotAction":"ai:InvokeModel","NotResource":"arn:gatehouse:ai:local:1:model/x"},
              {"Sid":"A","Effect":"Allow","Action":["ai:InvokeModle","ai:Invoke*","ai:Nope*","s3:Whatever"],"Resource":"*",
               "Condition":{"ForAllValues:StringEquals":{"aws:SourceVpce":"private","aws:TagKeys":"team"}}}]}"#,
        );
        let expect = [
            "$.Statement[0].NotAction: warning: Allow with NotAction",
            "$.Statement[0].NotResource: warning: Allow with NotResource",
            "$.Statement[1].Sid: warning: duplicate Sid `A`",
            "$.Statement[1].Action[0]: warning: unknown action `ai:InvokeModle`",
            "$.Statement[1].Action[2]: warning: `ai:Nope*` matches no known ai action",
            "$.Statement[1].Condition.ForAllValues:StringEquals.aws:SourceVpce: warning: ForAllValues on single-valued key",
        ];
        for e in expect {
            assert!(l.iter().any(|x| x.starts_with(e)), "missing {e} in {l:?}");
        }
        assert_eq!(l.len(), expect.len(), "{l:?}");
    }
}
