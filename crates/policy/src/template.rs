//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, `${*}`, `${?}`,
//! `${$}`.
//!
//! A string that may hold variables is parsed once into a [`Template`]; at decision time the
//! variables are looked up in the request. Text that comes from a variable, and the
//! characters written as `${*}`, `${?}` and `${$}`, is always literal: it can never act as a
//! wildcard. A variable whose key is absent (and that has no default) makes the whole
//! element fail to match, as AWS documents.

use crate::pattern::{OwnedTok, Tok, TokBuf, glob_match, tokenize};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text written in the policy (may contain wildcard characters).
    Text(Box<str>),
    /// A character written as `${*}`, `${?}` or `${$}`: always literal.
    Escaped(&'static str),
    /// A variable with an optional default.
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// Looks up the value a variable stands for; `None` when the key is absent or multivalued.
pub(crate) trait VariableSource {
    fn variable(&self, key: &str) -> Option<&str>;
}

/// A problem in a `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariableSyntaxError(pub String);

/// Parses `text` into parts. `substitute` is false under Version 2008-10-17, where the text
/// is taken as written.
pub(crate) fn parse(text: &str, substitute: bool) -> Result<Vec<Part>, VariableSyntaxError> {
    let mut parts = Vec::new();
    if !substitute {
        parts.push(Part::Text(text.into()));
        return Ok(parts);
    }
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(VariableSyntaxError(format!(
                "unterminated policy variable `{}`",
                &rest[start..]
            )));
        };
        if start > 0 {
            parts.push(Part::Text(rest[..start].into()));
        }
        let inner = &rest[start + 2..start + 2 + len];
        parts.push(parse_reference(inner)?);
        rest = &rest[start + 2 + len + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.into()));
    }
    Ok(parts)
}

fn parse_reference(inner: &str) -> Result<Part, VariableSyntaxError> {
    match inner.trim() {
        "*" => return Ok(Part::Escaped("*")),
        "?" => return Ok(Part::Escaped("?")),
        "$" => return Ok(Part::Escaped("$")),
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let unquoted = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .ok_or_else(|| {
                    VariableSyntaxError(format!(
                        "the default value in `${{{inner}}}` must be in single quotes"
                    ))
                })?;
            (k.trim(), Some(unquoted.into()))
        }
        None => (inner.trim(), None),
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(VariableSyntaxError(format!(
            "`${{{inner}}}` does not name a context key"
        )));
    }
    Ok(Part::Var {
        key: key.into(),
        default,
    })
}

/// True when the parts reference at least one variable or escape.
pub(crate) fn is_dynamic(parts: &[Part]) -> bool {
    parts.iter().any(|p| !matches!(p, Part::Text(_)))
}

/// A template compiled for wildcard matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GlobTemplate {
    parts: Box<[GlobPart]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobPart {
    Tok(OwnedTok),
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

impl GlobTemplate {
    pub(crate) fn new(parts: &[Part]) -> GlobTemplate {
        let mut out = Vec::new();
        let mut toks = Vec::new();
        for p in parts {
            match p {
                Part::Text(t) => {
                    toks.clear();
                    tokenize(t, &mut toks);
                    out.extend(toks.drain(..).map(GlobPart::Tok));
                }
                Part::Escaped(e) => out.push(GlobPart::Tok(OwnedTok::Lit((*e).into()))),
                Part::Var { key, default } => out.push(GlobPart::Var {
                    key: key.clone(),
                    default: default.clone(),
                }),
            }
        }
        GlobTemplate {
            parts: out.into_boxed_slice(),
        }
    }

    /// Resolves the variables into borrowed tokens; `None` when a variable is unresolvable.
    pub(crate) fn resolve<'a>(
        &'a self,
        vars: &'a impl VariableSource,
        out: &mut TokBuf<'a>,
    ) -> Option<()> {
        out.clear();
        for p in self.parts.iter() {
            match p {
                GlobPart::Tok(t) => out.push(crate::pattern::AsTok::as_tok(t)),
                GlobPart::Var { key, default } => {
                    let v = vars.variable(key).or(default.as_deref())?;
                    out.push(Tok::Lit(v));
                }
            }
        }
        Some(())
    }

    /// Matches `s` after resolving variables.
    pub(crate) fn matches(&self, vars: &impl VariableSource, s: &str) -> bool {
        let mut toks = TokBuf::new();
        match self.resolve(vars, &mut toks) {
            Some(()) => glob_match(&toks, s),
            None => false,
        }
    }
}

/// A template compiled for exact comparison (`StringEquals` with variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExactTemplate {
    parts: Box<[Part]>,
}

impl ExactTemplate {
    pub(crate) fn new(parts: Vec<Part>) -> ExactTemplate {
        ExactTemplate {
            parts: parts.into_boxed_slice(),
        }
    }

    /// The text with variables substituted; `None` when a variable is unresolvable.
    pub(crate) fn render(&self, vars: &impl VariableSource) -> Option<String> {
        let mut s = String::new();
        for p in self.parts.iter() {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Escaped(e) => s.push_str(e),
                Part::Var { key, default } => {
                    s.push_str(vars.variable(key).or(default.as_deref())?)
                }
            }
        }
        Some(s)
    }

    /// Compares without building the rendered string.
    pub(crate) fn equals(&self, vars: &impl VariableSource, mut s: &str) -> bool {
        for p in self.parts.iter() {
            let piece = match p {
                Part::Text(t) => &**t,
                Part::Escaped(e) => e,
                Part::Var { key, default } => match vars.variable(key).or(default.as_deref()) {
                    Some(v) => v,
                    None => return false,
                },
            };
            match s.strip_prefix(piece) {
                Some(r) => s = r,
                None => return false,
            }
        }
        s.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);
    impl VariableSource for Vars {
        fn variable(&self, key: &str) -> Option<&str> {
            self.0.get(key).copied()
        }
    }

    fn vars() -> Vars {
        Vars(HashMap::from([("aws:username", "alice"), ("team", "a*b")]))
    }

    #[test]
    fn parses_references() {
        let p = parse("model/${aws:username}/${team, 'none'}${*}", true).unwrap_or_default();
        assert_eq!(p.len(), 5);
        assert_eq!(
            p[3],
            Part::Var {
                key: "team".into(),
                default: Some("none".into())
            }
        );
        assert_eq!(p[4], Part::Escaped("*"));
        assert_eq!(
            parse("${x", true).map(|_| ()),
            Err(VariableSyntaxError(
                "unterminated policy variable `${x`".into()
            ))
        );
        assert!(parse("${a, none}", true).is_err());
        assert_eq!(
            parse("${x}", false).unwrap_or_default(),
            vec![Part::Text("${x}".into())]
        );
    }

    #[test]
    fn variable_text_is_literal() {
        let v = vars();
        let t = GlobTemplate::new(&parse("x/${team}", true).unwrap_or_default());
        assert!(t.matches(&v, "x/a*b"));
        assert!(!t.matches(&v, "x/aXXb"));
        let t = GlobTemplate::new(&parse("x/${*}", true).unwrap_or_default());
        assert!(t.matches(&v, "x/*"));
        assert!(!t.matches(&v, "x/y"));
        let t = GlobTemplate::new(&parse("${missing}*", true).unwrap_or_default());
        assert!(!t.matches(&v, "anything"));
        let t = GlobTemplate::new(&parse("${missing, 'd'}*", true).unwrap_or_default());
        assert!(t.matches(&v, "dx"));
    }

    #[test]
    fn exact_templates() {
        let v = vars();
        let t = ExactTemplate::new(parse("u-${aws:username}", true).unwrap_or_default());
        assert!(t.equals(&v, "u-alice"));
        assert!(!t.equals(&v, "u-alicex"));
        assert_eq!(t.render(&v).as_deref(), Some("u-alice"));
        let t = ExactTemplate::new(parse("${nope}", true).unwrap_or_default());
        assert!(!t.equals(&v, ""));
    }
}
