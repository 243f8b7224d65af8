//! The decision down to the document, and the best `k` among what the caller may read.
//!
//! Each candidate is decided as `ai:Retrieve` on `knowledge-base/KB/document/ID` with its
//! metadata as `ai:DocumentTag/KEY` ([`document_keys`]: strings, numbers and booleans as
//! one value, lists as a multivalued key) plus every key of the caller's base request.
//! [`top_k_allowed`] walks the backend's ranking from the best: while fewer than `k`
//! candidates were allowed and the backend had more, it asks for a larger window (×4, up to
//! a bound) and decides only what it has not decided yet. The result is exactly the best
//! `k` allowed documents in the backend's order whenever the allowed ones lie within the
//! bound — the brute-force reference (decide every document, rank the allowed) that the
//! property test below holds it to.

use crate::{DOCUMENT_TAG_PREFIX, Subject};
use gatehouse_policy::{ContextValue, Request};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;

/// One candidate document, as a backend ranks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The document's id in the backend.
    pub id: String,
    /// Relevance, higher is better.
    pub score: f64,
    /// The document's metadata (its attributes).
    pub metadata: Map<String, Value>,
    /// The document's text, when the backend returned it.
    pub text: Option<String>,
}

/// The most metadata keys a document may carry into a decision, and the most values of a
/// list: beyond them the document is refused (fail closed), not decided on part of its tags.
pub const MAX_DOCUMENT_KEYS: usize = 64;
/// See [`MAX_DOCUMENT_KEYS`].
pub const MAX_LIST_VALUES: usize = 256;

/// The condition keys of a document's metadata: `ai:DocumentTag/KEY` → its value(s).
/// `None` when the metadata cannot be expressed as keys (a nested object, a list holding a
/// non-scalar, too many keys or values): such a document is refused.
pub fn document_keys(metadata: &Map<String, Value>) -> Option<Vec<(String, ContextValue)>> {
    if metadata.len() > MAX_DOCUMENT_KEYS {
        return None;
    }
    let mut keys = Vec::with_capacity(metadata.len());
    for (k, v) in metadata {
        if k.is_empty() || k.len() > 128 || k.chars().any(char::is_control) {
            return None;
        }
        let value = match v {
            Value::Array(items) => {
                if items.len() > MAX_LIST_VALUES {
                    return None;
                }
                ContextValue::Many(items.iter().map(scalar).collect::<Option<Vec<_>>>()?)
            }
            Value::Null => continue,
            other => ContextValue::One(scalar(other)?),
        };
        keys.push((format!("{DOCUMENT_TAG_PREFIX}{k}"), value));
    }
    Some(keys)
}

/// A scalar as the policy language compares it: text as is, numbers and booleans as JSON
/// writes them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Decides documents of one knowledge base for one subject, reusing one request: the base
/// request's context is kept, each document's resource and keys set and taken out again.
#[derive(Debug)]
pub struct DocumentDecider<'a> {
    subject: &'a Subject,
    request: Request,
    document_prefix: String,
}

impl<'a> DocumentDecider<'a> {
    /// For the documents of the knowledge base `knowledge_base_arn`.
    pub fn new(subject: &'a Subject, knowledge_base_arn: &str) -> DocumentDecider<'a> {
        let mut request = subject.request(crate::RETRIEVE, knowledge_base_arn);
        // Keys named like document tags never come from elsewhere: a caller-side key of
        // that name (a session tag cannot be, but be sure) would stand in for the document.
        let stray: Vec<String> = request
            .context
            .iter()
            .filter(|(k, _)| is_document_key(k))
            .map(|(k, _)| k.to_owned())
            .collect();
        for k in stray {
            request.context.remove(&k);
        }
        DocumentDecider {
            subject,
            request,
            document_prefix: crate::document_arn(knowledge_base_arn, ""),
        }
    }

    /// Whether the subject may read the document `id` with these keys.
    pub fn allowed(&mut self, id: &str, keys: Vec<(String, ContextValue)>) -> bool {
        self.request.resource.clear();
        self.request.resource.push_str(&self.document_prefix);
        self.request.resource.push_str(id);
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        for (k, v) in keys {
            self.request.context.insert(k, v);
        }
        let allowed = self.subject.decide(&self.request).is_allow();
        for k in &names {
            self.request.context.remove(k);
        }
        allowed
    }

    /// Whether the subject may read a candidate (refused when its metadata cannot be keys).
    pub fn allows(&mut self, c: &Candidate) -> bool {
        match document_keys(&c.metadata) {
            Some(keys) => self.allowed(&c.id, keys),
            None => false,
        }
    }
}

fn is_document_key(k: &str) -> bool {
    k.len() >= DOCUMENT_TAG_PREFIX.len()
        && k.as_bytes()[..DOCUMENT_TAG_PREFIX.len()]
            .eq_ignore_ascii_case(DOCUMENT_TAG_PREFIX.as_bytes())
}

/// What [`top_k_allowed`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The best allowed documents, best first (at most `k`).
    pub documents: Vec<Candidate>,
    /// How many distinct candidates were decided and refused.
    pub refused: usize,
    /// How many candidates were fetched from the backend, over every round.
    pub fetched: usize,
    /// How many times the backend was asked.
    pub rounds: usize,
}

/// The first window asked of the backend for `k` results: twice `k`, at least `k + 10`.
pub fn first_window(k: usize, bound: usize) -> usize {
    (2 * k).max(k + 10).min(bound).max(k.min(bound))
}

/// The best `k` allowed candidates. `fetch(n)` returns the backend's best `n` candidates in
/// its order (fewer when it has no more); `allows` decides one. At most `bound` candidates
/// are ever asked for.
pub async fn top_k_allowed<F, Fut, E, A>(
    k: usize,
    bound: usize,
    mut fetch: F,
    mut allows: A,
) -> Result<Selection, E>
where
    A: FnMut(&Candidate) -> bool,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<Vec<Candidate>, E>>,
{
    let mut decided: HashMap<String, bool> = HashMap::new();
    let mut sel = Selection {
        documents: Vec::new(),
        refused: 0,
        fetched: 0,
        rounds: 0,
    };
    if k == 0 || bound == 0 {
        return Ok(sel);
    }
    let mut window = first_window(k, bound);
    loop {
        let candidates = fetch(window).await?;
        sel.rounds += 1;
        sel.fetched += candidates.len();
        let exhausted = candidates.len() < window;
        sel.documents.clear();
        for c in candidates {
            if sel.documents.len() == k {
                break;
            }
            let ok = match decided.get(&c.id) {
                Some(ok) => *ok,
                None => {
                    let ok = allows(&c);
                    decided.insert(c.id.clone(), ok);
                    if !ok {
                        sel.refused += 1;
                    }
                    ok
                }
            };
            // A backend that repeats an id in one answer does not get it returned twice.
            if ok && !sel.documents.iter().any(|d| d.id == c.id) {
                sel.documents.push(c);
            }
        }
        if sel.documents.len() == k || exhausted || window >= bound {
            return Ok(sel);
        }
        window = window.saturating_mul(4).min(bound);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn candidate(id: usize, score: f64, tag: &str) -> Candidate {
        let mut metadata = Map::new();
        metadata.insert("dept".into(), json!(tag));
        Candidate {
            id: format!("doc-{id}"),
            score,
            metadata,
            text: None,
        }
    }

    /// A backend over a fixed corpus: its best `n` by score (ties by id), as a vector
    /// database answers.
    fn ranked(corpus: &[Candidate]) -> Vec<Candidate> {
        let mut v = corpus.to_vec();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        v
    }

    fn run(
        corpus: &[Candidate],
        k: usize,
        bound: usize,
        allowed: &dyn Fn(&Candidate) -> bool,
    ) -> Selection {
        let order = ranked(corpus);
        let fetch = |n: usize| {
            let page: Vec<Candidate> = order.iter().take(n).cloned().collect();
            async move { Ok::<_, ()>(page) }
        };
        let fut = top_k_allowed(k, bound, fetch, |c: &Candidate| allowed(c));
        match tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(fut)
        {
            Ok(s) => s,
            Err(()) => unreachable!(),
        }
    }

    /// The reference: decide every document, rank the allowed ones, take `k`.
    fn brute_force(
        corpus: &[Candidate],
        k: usize,
        allowed: &dyn Fn(&Candidate) -> bool,
    ) -> Vec<String> {
        ranked(corpus)
            .into_iter()
            .filter(|c| allowed(c))
            .take(k)
            .map(|c| c.id)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        /// Top-k among the allowed equals the brute-force reference whenever the corpus
        /// fits in the bound, whatever the share of refused documents and the scores.
        #[test]
        fn equals_brute_force(
            docs in proptest::collection::vec((0u8..20, 0u8..4), 0..120),
            k in 1usize..30,
            allowed_tags in proptest::collection::btree_set(0u8..4, 0..4),
        ) {
            let corpus: Vec<Candidate> = docs
                .iter()
                .enumerate()
                .map(|(i, (s, t))| candidate(i, f64::from(*s) / 20.0, &format!("t{t}")))
                .collect();
            let allowed = |c: &Candidate| {
                allowed_tags.iter().any(|t| c.metadata["dept"] == json!(format!("t{t}")))
            };
            let sel = run(&corpus, k, 1000, &allowed);
            let got: Vec<String> = sel.documents.iter().map(|c| c.id.clone()).collect();
            prop_assert_eq!(&got, &brute_force(&corpus, k, &allowed));
            // Every refused count is a count of distinct refused candidates actually decided.
            let refused_total = corpus.iter().filter(|c| !allowed(c)).count();
            prop_assert!(sel.refused <= refused_total);
            prop_assert!(sel.documents.iter().all(allowed));
        }
    }

    #[test]
    fn fetches_more_when_too_few_are_allowed_and_stops_at_the_bound() {
        // 100 documents, only every tenth allowed: k = 5 needs 41+ candidates.
        let corpus: Vec<Candidate> = (0..100)
            .map(|i| {
                candidate(
                    i,
                    1.0 - i as f64 / 100.0,
                    if i % 10 == 0 { "ok" } else { "no" },
                )
            })
            .collect();
        let allowed = |c: &Candidate| c.metadata["dept"] == json!("ok");
        let sel = run(&corpus, 5, 1000, &allowed);
        let ids: Vec<&str> = sel.documents.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["doc-0", "doc-10", "doc-20", "doc-30", "doc-40"]);
        assert_eq!(sel.rounds, 2, "15 candidates, then 60");
        assert_eq!(sel.refused, 36, "decided up to doc-40, 36 of them refused");
        // With a bound of 20, only the allowed among the best 20 can be found.
        let sel = run(&corpus, 5, 20, &allowed);
        assert_eq!(sel.documents.len(), 2);
        assert!(sel.fetched <= 15 + 20);
    }

    #[test]
    fn metadata_becomes_document_tags() {
        let m = json!({"dept": "hr", "acl": ["a", "b"], "level": 3, "draft": false, "gone": null});
        let keys = document_keys(m.as_object().unwrap()).unwrap();
        assert_eq!(
            keys,
            vec![
                (
                    "ai:DocumentTag/dept".to_owned(),
                    ContextValue::One("hr".into())
                ),
                (
                    "ai:DocumentTag/acl".to_owned(),
                    ContextValue::Many(vec!["a".into(), "b".into()])
                ),
                (
                    "ai:DocumentTag/level".to_owned(),
                    ContextValue::One("3".into())
                ),
                (
                    "ai:DocumentTag/draft".to_owned(),
                    ContextValue::One("false".into())
                ),
            ]
        );
        // What cannot be keys refuses the document rather than deciding on part of it.
        for bad in [
            json!({"x": {"y": 1}}),
            json!({"x": [[1]]}),
            json!({"": "v"}),
        ] {
            assert!(document_keys(bad.as_object().unwrap()).is_none(), "{bad}");
        }
    }
}
