//! The caller's `filters` of OpenAI's vector store search: read strictly, and written into
//! the backend's own filter as structure (never as text), so a value cannot become an
//! operator or widen what the backend is asked for.
//!
//! OpenAI's shapes: a comparison `{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin",
//! "key": K, "value": V}` and a compound `{"type": "and"|"or", "filters": [...]}`. The
//! caller's filter only narrows: every returned document is still decided against the
//! full policy.

use serde_json::{Map, Value, json};

/// Why a filter was refused (the message of a 400, naming where).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filters{path}: {message}")]
pub struct FilterError {
    /// Where in `filters` (`.filters[1].value`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The deepest nesting and the most comparisons a filter may hold.
pub const MAX_DEPTH: usize = 8;
/// See [`MAX_DEPTH`].
pub const MAX_NODES: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than (numbers).
    Gt,
    /// Greater than or equal (numbers).
    Gte,
    /// Less than (numbers).
    Lt,
    /// Less than or equal (numbers).
    Lte,
    /// One of a list.
    In,
    /// None of a list.
    Nin,
}

impl Comparison {
    fn parse(s: &str) -> Option<Comparison> {
        Some(match s {
            "eq" => Comparison::Eq,
            "ne" => Comparison::Ne,
            "gt" => Comparison::Gt,
            "gte" => Comparison::Gte,
            "lt" => Comparison::Lt,
            "lte" => Comparison::Lte,
            "in" => Comparison::In,
            "nin" => Comparison::Nin,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Comparison::Eq => "eq",
            Comparison::Ne => "ne",
            Comparison::Gt => "gt",
            Comparison::Gte => "gte",
            Comparison::Lt => "lt",
            Comparison::Lte => "lte",
            Comparison::In => "in",
            Comparison::Nin => "nin",
        }
    }
}

/// A filter, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `key op value`.
    Compare {
        /// The metadata key.
        key: String,
        /// The operator.
        op: Comparison,
        /// A scalar, or a list of scalars for `in`/`nin`.
        value: Value,
    },
    /// All of.
    And(Vec<Filter>),
    /// Any of.
    Or(Vec<Filter>),
}

impl Filter {
    /// Reads OpenAI's filter JSON.
    pub fn parse(v: &Value) -> Result<Filter, FilterError> {
        let mut nodes = 0;
        parse_at(v, "", 0, &mut nodes)
    }

    /// The filter as Chroma's `where`.
    pub fn to_chroma(&self) -> Value {
        match self {
            Filter::Compare { key, op, value } => {
                let op = format!("${}", op.name());
                let mut inner = Map::new();
                inner.insert(op, value.clone());
                let mut outer = Map::new();
                outer.insert(key.clone(), Value::Object(inner));
                Value::Object(outer)
            }
            Filter::And(fs) => compound("$and", fs),
            Filter::Or(fs) => compound("$or", fs),
        }
    }

    /// The filter as OpenAI writes it (what an OpenAI-compatible upstream is sent: the
    /// parsed form, never the caller's text).
    pub fn to_openai(&self) -> Value {
        match self {
            Filter::Compare { key, op, value } => {
                json!({"type": op.name(), "key": key, "value": value})
            }
            Filter::And(fs) => {
                json!({"type": "and", "filters": fs.iter().map(Filter::to_openai).collect::<Vec<_>>()})
            }
            Filter::Or(fs) => {
                json!({"type": "or", "filters": fs.iter().map(Filter::to_openai).collect::<Vec<_>>()})
            }
        }
    }
}

/// Chroma wants two or more operands under `$and`/`$or`: one is written alone.
fn compound(op: &str, fs: &[Filter]) -> Value {
    if let [only] = fs {
        return only.to_chroma();
    }
    let mut m = Map::new();
    m.insert(
        op.to_owned(),
        Value::Array(fs.iter().map(Filter::to_chroma).collect()),
    );
    Value::Object(m)
}

/// Both conditions (the caller's filter and what the policy implies), as Chroma's `where`.
pub fn chroma_and(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    match (a, b) {
        (Some(a), Some(b)) => Some(json!({"$and": [a, b]})),
        (a, b) => a.or(b),
    }
}

fn err(path: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn parse_at(v: &Value, path: &str, depth: usize, nodes: &mut usize) -> Result<Filter, FilterError> {
    *nodes += 1;
    if depth > MAX_DEPTH || *nodes > MAX_NODES {
        return Err(err(
            path,
            format!("at most {MAX_DEPTH} levels and {MAX_NODES} filters"),
        ));
    }
    let Value::Object(m) = v else {
        return Err(err(path, "expected an object"));
    };
    let Some(Value::String(kind)) = m.get("type") else {
        return Err(err(&format!("{path}.type"), "expected a string"));
    };
    match kind.as_str() {
        "and" | "or" => {
            if let Some(extra) = m.keys().find(|k| !matches!(k.as_str(), "type" | "filters")) {
                return Err(err(path, format!("unknown field {extra:?}")));
            }
            let Some(Value::Array(items)) = m.get("filters") else {
                return Err(err(&format!("{path}.filters"), "expected a list"));
            };
            if items.is_empty() {
                return Err(err(
                    &format!("{path}.filters"),
                    "expected at least one filter",
                ));
            }
            let fs = items
                .iter()
                .enumerate()
                .map(|(i, f)| parse_at(f, &format!("{path}.filters[{i}]"), depth + 1, nodes))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if kind == "and" {
                Filter::And(fs)
            } else {
                Filter::Or(fs)
            })
        }
        other => {
            let Some(op) = Comparison::parse(other) else {
                return Err(err(
                    &format!("{path}.type"),
                    format!("{other:?} is not one of eq, ne, gt, gte, lt, lte, in, nin, and, or"),
                ));
            };
            if let Some(extra) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "type" | "key" | "value"))
            {
                return Err(err(path, format!("unknown field {extra:?}")));
            }
            let Some(Value::String(key)) = m.get("key") else {
                return Err(err(&format!("{path}.key"), "expected a string"));
            };
            check_key(key).map_err(|m| err(&format!("{path}.key"), m))?;
            let value = m
                .get("value")
                .ok_or_else(|| err(&format!("{path}.value"), "missing"))?;
            check_value(op, value).map_err(|m| err(&format!("{path}.value"), m))?;
            Ok(Filter::Compare {
                key: key.clone(),
                op,
                value: value.clone(),
            })
        }
    }
}

/// A metadata key: 1-128 characters, none a control character, not starting with `$` or
/// `#` (Chroma's operators and its own keys).
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 128 {
        return Err("must be 1-128 characters".into());
    }
    if key.starts_with('$') || key.starts_with('#') {
        return Err("must not start with $ or #".into());
    }
    if key.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn check_scalar(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if s.len() > 1024 => Err("a string of at most 1024 bytes".into()),
        Value::String(_) | Value::Bool(_) => Ok(()),
        Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
        _ => Err("expected a string, a number or a boolean".into()),
    }
}

fn check_value(op: Comparison, v: &Value) -> Result<(), String> {
    match op {
        Comparison::Eq | Comparison::Ne => check_scalar(v),
        Comparison::Gt | Comparison::Gte | Comparison::Lt | Comparison::Lte => match v {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
            _ => Err(format!("{} compares numbers", op.name())),
        },
        Comparison::In | Comparison::Nin => match v {
            Value::Array(items) if !items.is_empty() && items.len() <= 256 => {
                items.iter().try_for_each(check_scalar)
            }
            _ => Err(format!("{} takes a list of 1-256 values", op.name())),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn compound_filters_become_chroma_where() {
        let f = Filter::parse(&json!({"type": "and", "filters": [
            {"type": "eq", "key": "dept", "value": "hr"},
            {"type": "or", "filters": [{"type": "gte", "key": "year", "value": 2020}]},
        ]}))
        .unwrap();
        assert_eq!(
            f.to_chroma(),
            json!({"$and": [{"dept": {"$eq": "hr"}}, {"year": {"$gte": 2020}}]})
        );
        assert_eq!(
            Filter::parse(&f.to_openai()).unwrap(),
            f,
            "the OpenAI form reads back the same"
        );
    }

    #[test]
    fn injection_stays_a_value() {
        // A value that looks like an operator is a string compared for equality.
        let f = Filter::parse(&json!({"type": "eq", "key": "dept", "value": "{\"$ne\": \"x\"}"}))
            .unwrap();
        assert_eq!(f.to_chroma(), json!({"dept": {"$eq": "{\"$ne\": \"x\"}"}}));
        // Objects as values, operator keys, unknown fields and types are refused.
        for bad in [
            json!({"type": "eq", "key": "dept", "value": {"$ne": "x"}}),
            json!({"type": "eq", "key": "$or", "value": "x"}),
            json!({"type": "eq", "key": "#document", "value": "x"}),
            json!({"type": "eq", "key": "dept", "value": "x", "where": {}}),
            json!({"type": "regex", "key": "dept", "value": "x"}),
            json!({"type": "gt", "key": "year", "value": "2020"}),
            json!({"type": "and", "filters": []}),
            json!({"type": "in", "key": "dept", "value": [{"a": 1}]}),
            json!("dept = hr"),
        ] {
            assert!(Filter::parse(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"type": "eq", "key": "k", "value": 1});
        for _ in 0..12 {
            deep = json!({"type": "and", "filters": [deep]});
        }
        let e = Filter::parse(&deep).unwrap_err();
        assert!(e.message.contains("levels"), "{e}");
    }
}
