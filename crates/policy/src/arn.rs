//! ARN patterns, as used by `Resource`, `Principal` and the `Arn*` condition operators.
//!
//! AWS matches an ARN pattern one colon-separated segment at a time (partition, service,
//! region, account, resource), so a `*` in the region cannot swallow the account. The
//! resource segment is everything after the fifth colon and may itself contain colons.
//!
//! The two uses differ for patterns of fewer than six segments: in `Resource`, a `*` that
//! ends a segment "can expand to match beyond the colon boundaries" (AWS's Resource
//! documentation), so `arn:aws:s3:*` is matched as a whole string; the `Arn*` operators
//! check "each of the six colon-delimited components separately", so such a pattern never
//! matches there.

use crate::pattern::{Glob, Tok, glob_match};
use crate::template::{GlobTemplate, Part, VariableSource, is_dynamic};

/// A compiled ARN (or `*`) pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `*`.
    Any,
    /// No wildcard and no variable.
    Exact(Box<str>),
    /// Six segments, each a wildcard pattern.
    Segments(Box<[Glob; 6]>),
    /// Fewer than six segments: matched as one string (`Resource`).
    Whole(Glob),
    /// Fewer than six segments in an `Arn*` condition: matches nothing.
    Never,
    /// Contains policy variables: resolved per request, then matched as above; `strict` for
    /// `Arn*` conditions (fewer than six segments match nothing).
    Dynamic {
        template: GlobTemplate,
        strict: bool,
    },
}

impl ArnPattern {
    /// A pattern for the `Resource` element.
    pub(crate) fn new(parts: &[Part]) -> ArnPattern {
        ArnPattern::build(parts, false)
    }

    /// A pattern for an `Arn*` condition operator.
    pub(crate) fn new_condition(parts: &[Part]) -> ArnPattern {
        ArnPattern::build(parts, true)
    }

    fn build(parts: &[Part], strict: bool) -> ArnPattern {
        if is_dynamic(parts) {
            return ArnPattern::Dynamic {
                template: GlobTemplate::new(parts),
                strict,
            };
        }
        let text: String = parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(&**t),
                _ => None,
            })
            .collect();
        match ArnPattern::from_static(&text) {
            ArnPattern::Whole(_) if strict => ArnPattern::Never,
            p => p,
        }
    }

    pub(crate) fn from_static(text: &str) -> ArnPattern {
        if text == "*" {
            return ArnPattern::Any;
        }
        if !crate::pattern::has_wildcard(text) {
            return ArnPattern::Exact(text.into());
        }
        let segs: Vec<&str> = text.splitn(6, ':').collect();
        match <[&str; 6]>::try_from(segs) {
            Ok(s) => ArnPattern::Segments(Box::new(s.map(Glob::new))),
            Err(_) => ArnPattern::Whole(Glob::new(text)),
        }
    }

    /// The literal ARN when the pattern has no wildcard or variable (used for indexing).
    pub(crate) fn as_exact(&self) -> Option<&str> {
        match self {
            ArnPattern::Exact(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn matches(&self, vars: &impl VariableSource, value: &str) -> bool {
        match self {
            ArnPattern::Any => true,
            ArnPattern::Exact(e) => **e == *value,
            ArnPattern::Segments(globs) => {
                let mut it = value.splitn(6, ':');
                globs
                    .iter()
                    .all(|g| it.next().is_some_and(|seg| g.matches(seg)))
            }
            ArnPattern::Whole(g) => g.matches(value),
            ArnPattern::Never => false,
            ArnPattern::Dynamic { template, strict } => {
                let mut toks = Vec::new();
                if template.resolve(vars, &mut toks).is_none() {
                    return false;
                }
                match split_segments(&toks) {
                    Some(segs) => {
                        let mut it = value.splitn(6, ':');
                        segs.iter()
                            .all(|s| it.next().is_some_and(|seg| glob_match(s, seg)))
                    }
                    None => !strict && glob_match(&toks, value),
                }
            }
        }
    }
}

/// Splits resolved tokens at the first five literal colons; `None` when there are fewer.
fn split_segments<'a>(toks: &[Tok<'a>]) -> Option<[Vec<Tok<'a>>; 6]> {
    let mut segs: [Vec<Tok<'a>>; 6] = Default::default();
    let mut i = 0usize;
    for t in toks {
        match t {
            Tok::Lit(l) if i < 5 => {
                let mut rest = *l;
                while let Some(pos) = rest.find(':').filter(|_| i < 5) {
                    if pos > 0 {
                        segs[i].push(Tok::Lit(&rest[..pos]));
                    }
                    i += 1;
                    rest = &rest[pos + 1..];
                }
                if !rest.is_empty() {
                    segs[i].push(Tok::Lit(rest));
                }
            }
            other => segs[i].push(*other),
        }
    }
    (i == 5).then_some(segs)
}

/// True when `text` has the shape of an ARN (`arn:` and at least six segments) or is `*`.
pub(crate) fn is_arn_shaped(text: &str) -> bool {
    text == "*" || (text.starts_with("arn:") && text.splitn(6, ':').count() == 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    struct NoVars;
    impl VariableSource for NoVars {
        fn variable(&self, key: &str) -> Option<&str> {
            (key == "aws:username").then_some("alice")
        }
    }

    fn m(p: &str, v: &str) -> bool {
        let parts = parse(p, true).unwrap_or_default();
        ArnPattern::new(&parts).matches(&NoVars, v)
    }

    #[test]
    fn segment_matching() {
        let user = "arn:gatehouse:iam::111122223333:user/alice";
        assert!(m("*", user));
        assert!(m(user, user));
        assert!(m("arn:gatehouse:iam::*:user/*", user));
        assert!(!m(
            "arn:gatehouse:iam::*:user/*",
            "arn:gatehouse:sts::111122223333:user/alice"
        ));
        // a `*` in one segment does not span into the next
        assert!(!m(
            "arn:gatehouse:*::111122223333:user/alice",
            "arn:gatehouse:iam:r:111122223333:user/alice"
        ));
        assert!(m(
            "arn:gatehouse:*:*:111122223333:user/alice",
            "arn:gatehouse:iam:r:111122223333:user/alice"
        ));
        assert!(m("arn:gatehouse:*", user));
        assert!(m("arn:*:iam::111122223333:user/alice", user));
        assert!(!m("arn:*:iam::111122223333:user/ALICE", user));
        assert!(m(
            "arn:gatehouse:logs:*:*:log-group:x:*",
            "arn:gatehouse:logs:r:1:log-group:x:y:z"
        ));
        assert!(!m("arn:gatehouse:iam::111122223333:user/*", "*"));
    }

    #[test]
    fn variables_in_arns() {
        assert!(m(
            "arn:gatehouse:iam::*:user/${aws:username}",
            "arn:gatehouse:iam::1:user/alice"
        ));
        assert!(!m(
            "arn:gatehouse:iam::*:user/${aws:username}",
            "arn:gatehouse:iam::1:user/bob"
        ));
        assert!(!m(
            "arn:gatehouse:iam::*:user/${nope}",
            "arn:gatehouse:iam::1:user/"
        ));
        assert!(m(
            "arn:gatehouse:iam::*:user/${*}",
            "arn:gatehouse:iam::1:user/*"
        ));
        assert!(!m(
            "arn:gatehouse:iam::*:user/${*}",
            "arn:gatehouse:iam::1:user/x"
        ));
    }
}
