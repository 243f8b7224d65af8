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

use crate::pattern::{Glob, Tok, TokBuf, glob_match};
use crate::template::{ExactTemplate, GlobTemplate, Part, VariableSource, is_dynamic};

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
    /// Contains policy variables but no wildcard: matched by equality with the substituted
    /// text, piece by piece, which needs neither tokens nor segments (segment-wise equality
    /// is whole-string equality).
    DynamicExact {
        template: ExactTemplate,
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
            let wildcard = parts.iter().any(|p| match p {
                Part::Text(t) => crate::pattern::has_wildcard(t),
                _ => false,
            });
            if !wildcard {
                return ArnPattern::DynamicExact {
                    template: ExactTemplate::new(parts.to_vec()),
                    strict,
                };
            }
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
        self.matches_with(vars, value, || split_arn(value))
    }

    /// Matches `value`, whose six segments `segments` gives when asked (a request's resource
    /// is split once per decision, not once per statement).
    pub(crate) fn matches_with<'v>(
        &self,
        vars: &impl VariableSource,
        value: &'v str,
        segments: impl FnOnce() -> Option<[&'v str; 6]>,
    ) -> bool {
        match self {
            ArnPattern::Any => true,
            ArnPattern::Exact(e) => **e == *value,
            ArnPattern::Segments(globs) => {
                segments().is_some_and(|segs| globs.iter().zip(segs).all(|(g, seg)| g.matches(seg)))
            }
            ArnPattern::Whole(g) => g.matches(value),
            ArnPattern::Never => false,
            ArnPattern::DynamicExact { template, strict } => {
                template.equals(vars, value) && (!strict || segments().is_some())
            }
            ArnPattern::Dynamic { template, strict } => {
                let mut toks = TokBuf::new();
                if template.resolve(vars, &mut toks).is_none() {
                    return false;
                }
                let colons: usize = toks
                    .iter()
                    .map(|t| match t {
                        Tok::Lit(l) => memchr::memchr_iter(b':', l.as_bytes()).count(),
                        _ => 0,
                    })
                    .sum();
                if colons < 5 {
                    return !strict && glob_match(&toks, value);
                }
                segments().is_some_and(|segs| segments_match(&toks, segs))
            }
        }
    }
}

/// Matches resolved tokens that hold at least five literal colons against `value`, one
/// colon-separated segment at a time: the tokens are cut at their first five literal colons
/// and each piece must match the value's segment in the same place (the sixth piece takes the
/// rest, colons included). Streams the pieces so that nothing is allocated.
fn segments_match(toks: &[Tok<'_>], value: [&str; 6]) -> bool {
    let mut segments = value.into_iter();
    let mut piece: smallvec::SmallVec<[Tok<'_>; 8]> = smallvec::SmallVec::new();
    let mut cut = 0usize;
    for t in toks {
        match t {
            Tok::Lit(l) if cut < 5 => {
                let mut rest = *l;
                while cut < 5 {
                    let Some(pos) = memchr::memchr(b':', rest.as_bytes()) else {
                        break;
                    };
                    if pos > 0 {
                        piece.push(Tok::Lit(&rest[..pos]));
                    }
                    if !segments.next().is_some_and(|seg| glob_match(&piece, seg)) {
                        return false;
                    }
                    piece.clear();
                    cut += 1;
                    rest = &rest[pos + 1..];
                }
                if !rest.is_empty() {
                    piece.push(Tok::Lit(rest));
                }
            }
            other => piece.push(*other),
        }
    }
    cut == 5 && segments.next().is_some_and(|seg| glob_match(&piece, seg))
}

/// The six colon-separated segments of an ARN (the sixth keeps any further colons); `None`
/// when there are fewer than five colons.
pub(crate) fn split_arn(s: &str) -> Option<[&str; 6]> {
    // A plain loop: the colons of an ARN come early, and a SIMD search's setup costs more
    // than it saves on strings this short.
    let mut out = [""; 6];
    let (mut found, mut start) = (0usize, 0usize);
    for (i, b) in s.bytes().enumerate() {
        if b == b':' {
            *out.get_mut(found)? = s.get(start..i)?;
            start = i + 1;
            found += 1;
            if found == 5 {
                out[5] = s.get(start..)?;
                return Some(out);
            }
        }
    }
    None
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
    fn arns_split_into_six_segments() {
        assert_eq!(
            split_arn("arn:aws:logs:r:1:log-group:x:y"),
            Some(["arn", "aws", "logs", "r", "1", "log-group:x:y"])
        );
        assert_eq!(
            split_arn("arn:aws:s3:::"),
            Some(["arn", "aws", "s3", "", "", ""])
        );
        assert_eq!(split_arn("arn:aws:s3::"), None);
        assert_eq!(split_arn("*"), None);
    }

    #[test]
    fn variables_without_wildcards_match_by_equality() {
        let parts = parse("arn:gatehouse:iam::1:user/${aws:username}", true).unwrap_or_default();
        let resource = ArnPattern::new(&parts);
        assert!(matches!(resource, ArnPattern::DynamicExact { .. }));
        assert!(resource.matches(&NoVars, "arn:gatehouse:iam::1:user/alice"));
        assert!(!resource.matches(&NoVars, "arn:gatehouse:iam::1:user/alice2"));
        // fewer than six segments: equality for Resource, never for an Arn* condition
        let short = parse("user/${aws:username}", true).unwrap_or_default();
        assert!(ArnPattern::new(&short).matches(&NoVars, "user/alice"));
        assert!(!ArnPattern::new_condition(&short).matches(&NoVars, "user/alice"));
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
