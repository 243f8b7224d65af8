//! Wildcard matching (`*` and `?`) as IAM uses it in actions, resources, principals and
//! `StringLike`/`ArnLike` conditions.
//!
//! Patterns are compiled once into the cheapest form that answers them (any, exact,
//! prefix, suffix, general), because the decision path matches them millions of times.
//! A pattern is a sequence of tokens rather than a string so that text that came from a
//! policy variable (including `${*}` and `${?}`) is always matched literally.

/// One piece of a wildcard pattern, borrowing its literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// Literal text, matched exactly.
    Lit(&'a str),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Tokens of a pattern resolved for one request; inline up to 16 so that a decision does not
/// allocate for ordinary patterns.
pub(crate) type TokBuf<'a> = smallvec::SmallVec<[Tok<'a>; 16]>;

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` exactly one
/// (case-sensitive, no ARN segments): the engine's own matcher, for callers outside the
/// policy language (such as budget patterns on principal ARNs). Allocates nothing for
/// patterns of up to 16 pieces.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    match simple_shape(pattern) {
        Shape::Exact => pattern == text,
        Shape::Prefix(n) => text.as_bytes().get(..n) == pattern.as_bytes().get(..n),
        Shape::General => glob_match(&borrowed_tokens(pattern), text),
    }
}

/// As [`wildcard_match`], but ASCII letters match whatever their case (`?` and `*` as there;
/// other characters exactly): how AWS compares action names, for callers that match action
/// patterns outside a compiled policy (the analyzer's catalog expansion). Allocates nothing
/// for patterns of up to 16 pieces.
pub fn wildcard_match_ignore_ascii_case(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    match simple_shape(pattern) {
        Shape::Exact => p.eq_ignore_ascii_case(t),
        Shape::Prefix(n) => t
            .get(..n)
            .zip(p.get(..n))
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)),
        Shape::General => glob_match_with::<true, _>(&borrowed_tokens(pattern), text),
    }
}

/// The shapes most action and ARN patterns have, answered without tokenizing (callers such
/// as the analyzer match one uncompiled pattern against thousands of names).
enum Shape {
    /// No wildcard.
    Exact,
    /// One trailing `*` after this many literal bytes.
    Prefix(usize),
    /// Anything else.
    General,
}

fn simple_shape(pattern: &str) -> Shape {
    let p = pattern.as_bytes();
    match p.iter().position(|&b| b == b'*' || b == b'?') {
        None => Shape::Exact,
        Some(i) if i + 1 == p.len() && p.get(i) == Some(&b'*') => Shape::Prefix(i),
        Some(_) => Shape::General,
    }
}

/// A `*`/`?` pattern compiled once for many matches, with the engine's matcher: for callers
/// that test one pattern against many names (the analyzer expanding an action pattern over
/// a catalog of thousands of actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WildcardPattern(Glob);

impl WildcardPattern {
    /// Compiles a pattern: `*` is any run of characters, `?` exactly one.
    pub fn new(pattern: &str) -> WildcardPattern {
        WildcardPattern(Glob::new(pattern))
    }

    /// As [`wildcard_match`].
    pub fn matches(&self, text: &str) -> bool {
        self.0.matches(text)
    }

    /// As [`wildcard_match_ignore_ascii_case`].
    pub fn matches_ignore_ascii_case(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match &self.0 {
            Glob::Any => true,
            Glob::Exact(e) => t.eq_ignore_ascii_case(e.as_bytes()),
            Glob::Prefix(p) => starts_with_lit::<true>(text, p),
            Glob::Suffix(p) => t
                .len()
                .checked_sub(p.len())
                .and_then(|at| t.get(at..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(p.as_bytes())),
            Glob::General(toks) => glob_match_with::<true, _>(toks, text),
        }
    }
}

/// A pattern's tokens, borrowing its literal runs.
fn borrowed_tokens(pattern: &str) -> TokBuf<'_> {
    let mut toks = TokBuf::new();
    let mut literal_from = 0;
    for (i, c) in pattern.char_indices() {
        if c == '*' || c == '?' {
            if literal_from < i {
                toks.push(Tok::Lit(&pattern[literal_from..i]));
            }
            toks.push(if c == '*' { Tok::Star } else { Tok::One });
            literal_from = i + 1;
        }
    }
    if literal_from < pattern.len() {
        toks.push(Tok::Lit(&pattern[literal_from..]));
    }
    toks
}

/// Anything that can be viewed as a [`Tok`]; lets one matcher serve owned and borrowed tokens.
pub(crate) trait AsTok {
    fn as_tok(&self) -> Tok<'_>;
}

impl AsTok for Tok<'_> {
    fn as_tok(&self) -> Tok<'_> {
        *self
    }
}

/// An owned token, as stored in a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnedTok {
    Lit(Box<str>),
    Star,
    One,
}

impl AsTok for OwnedTok {
    fn as_tok(&self) -> Tok<'_> {
        match self {
            OwnedTok::Lit(s) => Tok::Lit(s),
            OwnedTok::Star => Tok::Star,
            OwnedTok::One => Tok::One,
        }
    }
}

/// Splits pattern text into tokens: `*` and `?` are wildcards, everything else literal.
pub(crate) fn tokenize(text: &str, out: &mut Vec<OwnedTok>) {
    let mut lit_start = 0;
    for (i, c) in text.char_indices() {
        if c == '*' || c == '?' {
            if lit_start < i {
                out.push(OwnedTok::Lit(text[lit_start..i].into()));
            }
            out.push(if c == '*' {
                OwnedTok::Star
            } else {
                OwnedTok::One
            });
            lit_start = i + 1;
        }
    }
    if lit_start < text.len() {
        out.push(OwnedTok::Lit(text[lit_start..].into()));
    }
}

/// Matches `s` against a token sequence. Linear-time in the common cases, with the classic
/// single-backtrack-point algorithm for `*` (correct because a later `*` subsumes earlier ones).
pub(crate) fn glob_match<T: AsTok>(toks: &[T], s: &str) -> bool {
    glob_match_with::<false, T>(toks, s)
}

/// `s` starts with `lit`, ASCII case folded when `FOLD`. A byte-wise fold of valid UTF-8
/// against valid UTF-8 ends on a character boundary, so `s[lit.len()..]` stays valid.
#[inline(always)]
fn starts_with_lit<const FOLD: bool>(s: &str, lit: &str) -> bool {
    if FOLD {
        s.as_bytes()
            .get(..lit.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(lit.as_bytes()))
    } else {
        s.starts_with(lit)
    }
}

/// The matcher; `FOLD` is a constant so that the engine's case-sensitive instance is compiled
/// exactly as before, without a branch on it.
fn glob_match_with<const FOLD: bool, T: AsTok>(toks: &[T], s: &str) -> bool {
    let (mut ti, mut si) = (0usize, 0usize);
    // (token index just after the last `*`, input position that `*` currently absorbs up to)
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if let Some(t) = toks.get(ti) {
            match t.as_tok() {
                Tok::Star => {
                    backtrack = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                Tok::One => {
                    if let Some(c) = s[si..].chars().next() {
                        si += c.len_utf8();
                        ti += 1;
                        continue;
                    }
                }
                Tok::Lit(l) => {
                    if starts_with_lit::<FOLD>(&s[si..], l) {
                        si += l.len();
                        ti += 1;
                        continue;
                    }
                }
            }
        } else if si == s.len() {
            return true;
        }
        match backtrack {
            Some((after_star, absorbed)) => match s[absorbed..].chars().next() {
                Some(c) => {
                    let next = absorbed + c.len_utf8();
                    backtrack = Some((after_star, next));
                    ti = after_star;
                    si = next;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// A compiled wildcard pattern without variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    General(Box<[OwnedTok]>),
}

impl Glob {
    pub(crate) fn new(text: &str) -> Glob {
        let mut toks = Vec::new();
        tokenize(text, &mut toks);
        Glob::from_tokens(toks)
    }

    pub(crate) fn from_tokens(toks: Vec<OwnedTok>) -> Glob {
        match toks.as_slice() {
            [] => Glob::Exact("".into()),
            [OwnedTok::Star] => Glob::Any,
            [OwnedTok::Lit(l)] => Glob::Exact(l.clone()),
            [OwnedTok::Lit(l), OwnedTok::Star] => Glob::Prefix(l.clone()),
            [OwnedTok::Star, OwnedTok::Lit(l)] => Glob::Suffix(l.clone()),
            _ if toks.iter().all(|t| *t == OwnedTok::Star) => Glob::Any,
            _ => Glob::General(toks.into_boxed_slice()),
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(e) => **e == *s,
            Glob::Prefix(p) => s.starts_with(&**p),
            Glob::Suffix(p) => s.ends_with(&**p),
            Glob::General(t) => glob_match(t, s),
        }
    }
}

/// True when `text` contains a wildcard character.
pub(crate) fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The untokenized shortcuts (exact, trailing `*`) answer as the general matcher.
        #[test]
        fn shortcuts_agree_with_the_general_matcher(
            pattern in "[aAé:]{0,4}[*?]?[aA]{0,2}",
            text in "[aAé:]{0,6}",
        ) {
            let toks = borrowed_tokens(&pattern);
            proptest::prop_assert_eq!(wildcard_match(&pattern, &text), glob_match(&toks, &text));
            proptest::prop_assert_eq!(
                wildcard_match_ignore_ascii_case(&pattern, &text),
                glob_match_with::<true, _>(&toks, &text)
            );
        }
    }

    #[test]
    fn wildcard_match_is_the_engine_matcher() {
        assert!(wildcard_match(
            "arn:gatehouse:iam::*:user/bud*",
            "arn:gatehouse:iam::1:user/budgeted"
        ));
        assert!(wildcard_match("a?c", "aéc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(!wildcard_match("user/Bob", "user/bob"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn ignore_ascii_case_folds_letters_only() {
        let m = wildcard_match_ignore_ascii_case;
        assert!(m("ai:invoke*", "AI:InvokeModel"));
        assert!(m("AI:*Guardrail", "ai:updateguardrail"));
        assert!(m("s3:get?bject", "s3:GetObject"));
        assert!(!m("ai:invoke*", "ai:GetModel"));
        assert!(!m("ai:invokemodel", "ai:InvokeModelWithResponseStream"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "AxxByyC"));
        assert!(!m("a*b*c", "ACB"));
        // Non-ASCII characters compare exactly; `?` is one character, not one byte.
        assert!(!m("é", "É"));
        assert!(m("a?c", "aéc"));
        assert!(m("é*", "éA"));
        // The case-sensitive matcher is unchanged.
        assert!(!wildcard_match("ai:invoke*", "AI:InvokeModel"));
        // Compiled once, the same answers.
        for (p, t) in [
            ("ai:invoke*", "AI:InvokeModel"),
            ("ai:invokemodel", "AI:InvokeModel"),
            ("ai:invokemodel", "AI:InvokeModelX"),
            ("*guardrail", "ai:UpdateGuardrail"),
            ("*guardrail", "rail"),
            ("*é", "aÉ"),
            ("ai:*", "AI:x"),
            ("a*b*c", "ACB"),
            ("é", "É"),
            ("s3:get?bject", "s3:GetObject"),
            ("*", ""),
        ] {
            let c = WildcardPattern::new(p);
            assert_eq!(c.matches_ignore_ascii_case(t), m(p, t), "{p} {t}");
            assert_eq!(c.matches(t), wildcard_match(p, t), "{p} {t}");
        }
    }

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).matches(s)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("ai:Invoke*", "ai:InvokeModel"));
        assert!(!m("ai:Invoke*", "ai:GetModel"));
        assert!(m("*Model", "ai:GetModel"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*a*", "banana"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("?", "é"));
        assert!(m("é*", "éa"));
        assert!(m("**", "x"));
        assert!(m("*?", "x"));
        assert!(!m("*?", ""));
        assert!(m("a*?b", "axb"));
        assert!(!m("abc", "ABC"));
    }

    #[test]
    fn literal_tokens_are_not_wildcards() {
        let toks = [Tok::Lit("a*"), Tok::Star];
        assert!(glob_match(&toks, "a*bc"));
        assert!(!glob_match(&toks, "abc"));
        let toks = [Tok::Lit("?")];
        assert!(glob_match(&toks, "?"));
        assert!(!glob_match(&toks, "x"));
    }
}
