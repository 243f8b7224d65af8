//! Condition operators, compiled and evaluated with AWS's rules.
//!
//! Values are parsed once when a policy is compiled (numbers, dates, CIDRs, wildcard
//! patterns), so a decision only parses the request's side. The same compile step is what
//! the validator runs, so "this value is wrong for this operator" has one definition.
//!
//! The rules, from AWS's documentation of condition operators and multivalued keys:
//! - a key absent from the request makes a condition false, but a negated operator
//!   (`StringNotEquals`, `NotIpAddress`, ...) true, and `...IfExists` true;
//! - several values for one key are OR'd (NOR'd for negated operators);
//! - `ForAllValues` is true when the key is absent or empty, `ForAnyValue` false;
//! - `Null: true` is true when the key is absent, `Null: false` when it is present.

use crate::arn::ArnPattern;
use crate::model::{ConditionValue, Effect};
use crate::operator::{BaseOperator, Operator, SetQualifier, ValueKind};
use crate::pattern::Glob;
use crate::request::Prepared;
use crate::template::{self, ExactTemplate, GlobTemplate, Part};
use ipnet::IpNet;
use std::net::IpAddr;

/// A condition compiled for evaluation: one operator, one key, its values.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    pub(crate) op: Operator,
    pub(crate) key: Box<str>,
    test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn of(base: BaseOperator) -> Cmp {
        use BaseOperator::*;
        match base {
            NumericLessThan | DateLessThan => Cmp::Lt,
            NumericLessThanEquals | DateLessThanEquals => Cmp::Le,
            NumericGreaterThan | DateGreaterThan => Cmp::Gt,
            NumericGreaterThanEquals | DateGreaterThanEquals => Cmp::Ge,
            _ => Cmp::Eq,
        }
    }

    /// `request OP policy`.
    fn holds(self, request: f64, policy: f64) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

#[derive(Debug, Clone)]
enum StrValue {
    Static(Box<str>),
    Dynamic(ExactTemplate),
}

#[derive(Debug, Clone)]
enum LikeValue {
    Static(Glob),
    Dynamic(GlobTemplate),
}

#[derive(Debug, Clone)]
enum Test {
    /// `StringEquals`/`StringNotEquals` (and `IgnoreCase`, ASCII letters folded, with
    /// lower-cased static values).
    Equals {
        values: Box<[StrValue]>,
        ignore_case: bool,
    },
    Like(Box<[LikeValue]>),
    Number(Box<[f64]>, Cmp),
    Date(Box<[f64]>, Cmp),
    Bool(Box<[Box<str>]>),
    Binary(Box<[Box<str>]>),
    Ip(Box<[IpNet]>),
    Arn(Box<[ArnPattern]>),
    /// `Null`: true means "the key must be absent".
    Null(bool),
}

/// Why a condition could not be compiled; the message is one line, for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueError {
    /// Index of the offending value, when one value is at fault.
    pub(crate) index: Option<usize>,
    pub(crate) message: String,
}

impl CompiledCondition {
    /// Compiles `op` on `key` with `values`. `substitute` says whether `${...}` are variables.
    pub(crate) fn compile(
        op: Operator,
        key: &str,
        values: &[ConditionValue],
        substitute: bool,
    ) -> Result<CompiledCondition, ValueError> {
        let kind = op.base.value_kind();
        let at = |i: usize, message: String| ValueError {
            index: Some(i),
            message,
        };
        let parts_of = |i: usize, text: &str| -> Result<Vec<Part>, ValueError> {
            let parts = template::parse(text, substitute).map_err(|e| at(i, e.0))?;
            if !op.base.allows_variables() && template::is_dynamic(&parts) {
                return Err(at(
                    i,
                    format!(
                        "policy variables are not allowed in {} conditions (only in Resource and String/Arn conditions)",
                        op.base.name()
                    ),
                ));
            }
            Ok(parts)
        };
        let texts: Vec<std::borrow::Cow<'_, str>> =
            values.iter().map(ConditionValue::as_text).collect();
        let test = match kind {
            ValueKind::String => match op.base {
                BaseOperator::StringLike | BaseOperator::StringNotLike => {
                    let mut out = Vec::with_capacity(texts.len());
                    for (i, t) in texts.iter().enumerate() {
                        let parts = parts_of(i, t)?;
                        out.push(if template::is_dynamic(&parts) {
                            LikeValue::Dynamic(GlobTemplate::new(&parts))
                        } else {
                            LikeValue::Static(Glob::new(t))
                        });
                    }
                    Test::Like(out.into())
                }
                _ => {
                    let ignore_case = matches!(
                        op.base,
                        BaseOperator::StringEqualsIgnoreCase
                            | BaseOperator::StringNotEqualsIgnoreCase
                    );
                    let mut out = Vec::with_capacity(texts.len());
                    for (i, t) in texts.iter().enumerate() {
                        let parts = parts_of(i, t)?;
                        out.push(if template::is_dynamic(&parts) {
                            StrValue::Dynamic(ExactTemplate::new(parts))
                        } else if ignore_case {
                            StrValue::Static(t.to_ascii_lowercase().into())
                        } else {
                            StrValue::Static((**t).into())
                        });
                    }
                    Test::Equals {
                        values: out.into(),
                        ignore_case,
                    }
                }
            },
            ValueKind::Numeric => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    parts_of(i, t)?;
                    out.push(parse_number(t).ok_or_else(|| {
                        at(
                            i,
                            format!("`{t}` is not a number ({} needs numbers)", op.base.name()),
                        )
                    })?);
                }
                Test::Number(out.into(), Cmp::of(op.base))
            }
            ValueKind::Date => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    parts_of(i, t)?;
                    out.push(parse_date(t).ok_or_else(|| {
                        at(
                            i,
                            format!(
                                "`{t}` is not a date (ISO 8601 such as 2026-01-31T12:00:00Z, or epoch seconds)"
                            ),
                        )
                    })?);
                }
                Test::Date(out.into(), Cmp::of(op.base))
            }
            ValueKind::Bool => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    parts_of(i, t)?;
                    let lc = t.to_ascii_lowercase();
                    if lc != "true" && lc != "false" {
                        return Err(at(i, format!("`{t}` is not a boolean (true or false)")));
                    }
                    out.push(lc.into());
                }
                Test::Bool(out.into())
            }
            ValueKind::Binary => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    parts_of(i, t)?;
                    if !is_base64(t) {
                        return Err(at(i, format!("`{t}` is not base64")));
                    }
                    out.push((**t).into());
                }
                Test::Binary(out.into())
            }
            ValueKind::Ip => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    parts_of(i, t)?;
                    out.push(parse_cidr(t).ok_or_else(|| {
                        at(
                            i,
                            format!("`{t}` is not an IPv4 or IPv6 address or CIDR block"),
                        )
                    })?);
                }
                Test::Ip(out.into())
            }
            ValueKind::Arn => {
                let mut out = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    let parts = parts_of(i, t)?;
                    out.push(ArnPattern::new_condition(&parts));
                }
                Test::Arn(out.into())
            }
            ValueKind::Null => {
                let [one] = texts.as_slice() else {
                    return Err(ValueError {
                        index: None,
                        message: "Null takes exactly one value, true or false".into(),
                    });
                };
                parts_of(0, one)?;
                match one.to_ascii_lowercase().as_str() {
                    "true" => Test::Null(true),
                    "false" => Test::Null(false),
                    _ => return Err(at(0, format!("`{one}` is not a boolean (true or false)"))),
                }
            }
        };
        if values.is_empty() {
            return Err(ValueError {
                index: None,
                message: format!("no values for condition key `{key}`"),
            });
        }
        Ok(CompiledCondition {
            op,
            key: key.into(),
            test,
        })
    }

    /// Whether the condition holds for a statement of `effect`. A request value that cannot be
    /// read as the operator's type (an address that is no IP, a date that is no date, a number
    /// that is no number, a boolean that is neither `true` nor `false`) is an error, and an
    /// error fails closed: it keeps an `Allow` from granting and lets a `Deny` refuse.
    /// A condition on an open key (see `Prepared::is_open_key`) holds in an `Allow` and not
    /// in a `Deny`.
    pub(crate) fn holds(&self, req: &Prepared<'_>, effect: Effect) -> bool {
        if req.is_open_key(&self.key) {
            return effect == Effect::Allow;
        }
        self.evaluate(req).unwrap_or(effect == Effect::Deny)
    }

    /// Evaluates the condition against a request; `None` when a request value cannot be read
    /// as the operator's type.
    pub(crate) fn evaluate(&self, req: &Prepared<'_>) -> Option<bool> {
        let values = req.lookup(&self.key);
        if let Test::Null(must_be_absent) = self.test {
            let absent = values.is_none_or(|v| v.is_empty());
            return Some(absent == must_be_absent);
        }
        let negated = self.op.base.is_negated();
        let values = match values {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Some(match self.op.qualifier {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => self.op.if_exists,
                    None => self.op.if_exists || negated,
                });
            }
        };
        // Every value is read, so that an unreadable one is never skipped.
        let (mut matched, mut unmatched) = (false, false);
        for v in values.iter() {
            match self.any_value_matches(req, v)? {
                true => matched = true,
                false => unmatched = true,
            }
        }
        Some(match (self.op.qualifier, negated) {
            (None, _) => matched != negated,
            (Some(SetQualifier::ForAnyValue), false) => matched,
            (Some(SetQualifier::ForAnyValue), true) => unmatched,
            (Some(SetQualifier::ForAllValues), false) => !unmatched,
            (Some(SetQualifier::ForAllValues), true) => !matched,
        })
    }

    /// True when one request value matches at least one policy value (the positive test);
    /// `None` when the value cannot be read as the operator's type.
    fn any_value_matches(&self, req: &Prepared<'_>, v: &str) -> Option<bool> {
        Some(match &self.test {
            Test::Equals {
                values,
                ignore_case: false,
            } => values.iter().any(|p| match p {
                StrValue::Static(s) => **s == *v,
                StrValue::Dynamic(t) => t.equals(req, v),
            }),
            // ASCII letters only: AWS documents "ignoring case" without defining Unicode
            // case, and every name the engine compares ignoring case (actions, condition
            // keys) folds ASCII only; full Unicode folding would make the Kelvin sign `K`
            // equal `k` and the dotted `İ` equal `i̇`, letting look-alike values through.
            Test::Equals {
                values,
                ignore_case: true,
            } => values.iter().any(|p| match p {
                StrValue::Static(s) => s.eq_ignore_ascii_case(v),
                StrValue::Dynamic(t) => t.render(req).is_some_and(|r| r.eq_ignore_ascii_case(v)),
            }),
            Test::Like(values) => values.iter().any(|p| match p {
                LikeValue::Static(g) => g.matches(v),
                LikeValue::Dynamic(t) => t.matches(req, v),
            }),
            Test::Number(values, cmp) => {
                let n = parse_number(v)?;
                values.iter().any(|p| cmp.holds(n, *p))
            }
            Test::Date(values, cmp) => {
                let d = parse_date(v)?;
                values.iter().any(|p| cmp.holds(d, *p))
            }
            Test::Bool(values) => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return None;
                }
                values.iter().any(|p| p.eq_ignore_ascii_case(v))
            }
            Test::Binary(values) => values.iter().any(|p| **p == *v),
            Test::Ip(nets) => {
                let ip = req.parsed_ip(v)?;
                // An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is also its IPv4 address.
                let mapped = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
                    IpAddr::V4(_) => None,
                };
                nets.iter()
                    .any(|n| n.contains(&ip) || mapped.is_some_and(|m| n.contains(&m)))
            }
            Test::Arn(patterns) => patterns.iter().any(|p| p.matches(req, v)),
            Test::Null(_) => false,
        })
    }
}

/// Parses an integer or decimal as AWS's numeric operators accept it.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses a date as ISO 8601 (date, date-time with or without offset and fractions) or as
/// epoch seconds, into epoch seconds.
pub(crate) fn parse_date(s: &str) -> Option<f64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = s.trim();
    if let Some(n) = parse_number(t) {
        return Some(n);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis() as f64 / 1000.0);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
        "%Y-%m-%dT%H%#z",
        "%Y%m%dT%H%M%S%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Some(dt.timestamp_millis() as f64 / 1000.0);
        }
    }
    let naive = t.strip_suffix('Z').unwrap_or(t);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y%m%dT%H%M%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(dt.and_utc().timestamp_millis() as f64 / 1000.0);
        }
    }
    let d = NaiveDate::parse_from_str(naive, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64)
}

/// Parses an address or a CIDR block; a bare address is a /32 (or /128).
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let t = s.trim();
    if t.contains('/') {
        t.parse::<IpNet>().ok()
    } else {
        t.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok()
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && s.len() - s.trim_end_matches('=').len() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn cond(op: &str, key: &str, values: &[&str]) -> CompiledCondition {
        let values: Vec<ConditionValue> = values
            .iter()
            .map(|v| ConditionValue::String((*v).into()))
            .collect();
        let op = Operator::parse(op).unwrap_or(Operator {
            qualifier: None,
            base: BaseOperator::Null,
            if_exists: false,
        });
        match CompiledCondition::compile(op, key, &values, true) {
            Ok(c) => c,
            Err(e) => CompiledCondition {
                op,
                key: format!("compile error: {}", e.message).into(),
                test: Test::Null(false),
            },
        }
    }

    fn eval(c: &CompiledCondition, req: &Request) -> bool {
        c.holds(&Prepared::new(req), Effect::Allow)
    }

    fn req() -> Request {
        Request::new(
            "arn:gatehouse:iam::111122223333:user/alice",
            "ai:InvokeModel",
            "*",
        )
    }

    #[test]
    fn absent_keys() {
        let r = req();
        assert!(!eval(&cond("StringEquals", "k", &["v"]), &r));
        assert!(eval(&cond("StringNotEquals", "k", &["v"]), &r));
        assert!(eval(&cond("StringEqualsIfExists", "k", &["v"]), &r));
        assert!(eval(
            &cond("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"]),
            &r
        ));
        assert!(eval(&cond("ForAllValues:StringEquals", "k", &["v"]), &r));
        assert!(!eval(&cond("ForAnyValue:StringEquals", "k", &["v"]), &r));
        assert!(eval(&cond("Null", "k", &["true"]), &r));
        assert!(!eval(&cond("Null", "k", &["false"]), &r));
    }

    #[test]
    fn values_are_ored_and_negation_is_nor() {
        let r = req().with("k", "b");
        assert!(eval(&cond("StringEquals", "k", &["a", "b"]), &r));
        assert!(!eval(&cond("StringNotEquals", "k", &["a", "b"]), &r));
        assert!(eval(&cond("StringNotEquals", "k", &["a", "c"]), &r));
        assert!(eval(&cond("StringEqualsIgnoreCase", "K", &["B"]), &r));
        assert!(!eval(&cond("StringEquals", "k", &["B"]), &r));
        assert!(eval(&cond("StringLike", "k", &["?"]), &r));
        assert!(!eval(&cond("StringEquals", "k", &["*"]), &r));
    }

    #[test]
    fn multivalued() {
        let r = req().with("aws:TagKeys", vec!["team", "env"]);
        assert!(eval(
            &cond(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["team", "env", "x"]
            ),
            &r
        ));
        assert!(!eval(
            &cond("ForAllValues:StringEquals", "aws:TagKeys", &["team"]),
            &r
        ));
        assert!(eval(
            &cond("ForAnyValue:StringEquals", "aws:TagKeys", &["team"]),
            &r
        ));
        assert!(!eval(
            &cond("ForAnyValue:StringEquals", "aws:TagKeys", &["x"]),
            &r
        ));
        assert!(eval(
            &cond("ForAnyValue:StringNotEquals", "aws:TagKeys", &["team"]),
            &r
        ));
        assert!(!eval(
            &cond("ForAllValues:StringNotEquals", "aws:TagKeys", &["team"]),
            &r
        ));
        let empty = req().with("aws:TagKeys", Vec::<String>::new());
        assert!(eval(
            &cond("ForAllValues:StringEquals", "aws:TagKeys", &["team"]),
            &empty
        ));
        assert!(!eval(
            &cond("ForAnyValue:StringEquals", "aws:TagKeys", &["team"]),
            &empty
        ));
    }

    #[test]
    fn typed_operators() {
        let r = req()
            .with("n", "5")
            .with("d", "2026-01-02T00:00:00Z")
            .with("e", "1767312000")
            .with("ip", "10.1.2.3")
            .with("ip6", "2001:db8::1")
            .with("b", "true")
            .with("arn", "arn:gatehouse:iam::111122223333:role/ops");
        assert!(eval(&cond("NumericLessThan", "n", &["10"]), &r));
        assert!(!eval(&cond("NumericLessThan", "n", &["5"]), &r));
        assert!(eval(&cond("NumericLessThanEquals", "n", &["5.0"]), &r));
        assert!(eval(&cond("NumericGreaterThan", "n", &["4.5"]), &r));
        assert!(eval(&cond("NumericNotEquals", "n", &["4"]), &r));
        assert!(eval(&cond("DateGreaterThan", "d", &["2026-01-01"]), &r));
        assert!(eval(
            &cond("DateEquals", "e", &["2026-01-02T00:00:00Z"]),
            &r
        ));
        assert!(eval(&cond("DateLessThan", "d", &["1767312001"]), &r));
        assert!(eval(&cond("IpAddress", "ip", &["10.0.0.0/8"]), &r));
        assert!(eval(&cond("IpAddress", "ip", &["10.1.2.3"]), &r));
        assert!(!eval(&cond("IpAddress", "ip", &["192.168.0.0/16"]), &r));
        assert!(eval(&cond("IpAddress", "ip6", &["2001:db8::/32"]), &r));
        assert!(!eval(&cond("IpAddress", "ip6", &["10.0.0.0/8"]), &r));
        assert!(eval(&cond("Bool", "b", &["True"]), &r));
        assert!(eval(
            &cond("ArnLike", "arn", &["arn:gatehouse:iam::*:role/*"]),
            &r
        ));
        assert!(!eval(
            &cond("ArnNotLike", "arn", &["arn:gatehouse:iam::*:role/*"]),
            &r
        ));
        assert!(eval(
            &cond(
                "ArnEquals",
                "arn",
                &["arn:gatehouse:iam::111122223333:role/ops"]
            ),
            &r
        ));
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |op: &str, v: &str| {
            let op = Operator::parse(op).ok();
            op.map(|op| {
                CompiledCondition::compile(op, "k", &[ConditionValue::String(v.into())], true)
                    .is_err()
            })
        };
        assert_eq!(bad("IpAddress", "10.0.0.0/33"), Some(true));
        assert_eq!(bad("IpAddress", "not-an-ip"), Some(true));
        assert_eq!(bad("DateLessThan", "yesterday"), Some(true));
        assert_eq!(bad("NumericEquals", "ten"), Some(true));
        assert_eq!(bad("NumericEquals", "${aws:username}"), Some(true));
        assert_eq!(bad("Bool", "yes"), Some(true));
        assert_eq!(bad("StringEquals", "${aws:username}"), Some(false));
        assert_eq!(
            bad("DateLessThan", "2026-03-01T10:00:00.123+02:00"),
            Some(false)
        );
    }
}
