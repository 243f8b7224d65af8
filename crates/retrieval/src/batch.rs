//! The batch decision API, for applications that keep their own vector database: which of
//! up to [`MAX_DOCUMENTS`] documents may a person read, in one round trip.
//!
//! `POST /v1/knowledge_bases/KB/authorize` with the application's own credentials (it must
//! be allowed `gatehouse:IsAuthorized` on `knowledge-base/KB`) and a body
//! `{"session_token": "...", "documents": [{"id": "d1", "tags": {"dept": "hr", "acl": ["a"]}}]}`.
//! The person's session token decides: `ai:Retrieve` on the knowledge base, then on each
//! document with its tags as `ai:DocumentTag/KEY` — the same decision a search through
//! Gatehouse makes. The answer lists the allowed ids, and one boolean per document in
//! order.

use crate::Subject;
use crate::rank::{DocumentDecider, document_keys};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The most documents one call may ask about.
pub const MAX_DOCUMENTS: usize = 10_000;

/// One document asked about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDocument {
    /// The document's id (1-512 bytes).
    pub id: String,
    /// Its metadata: strings, numbers, booleans, or lists of them.
    #[serde(default)]
    pub tags: Map<String, Value>,
}

/// The request body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The person's session token (from STS or sign-in).
    pub session_token: String,
    /// The documents, at most [`MAX_DOCUMENTS`].
    pub documents: Vec<BatchDocument>,
}

/// Decides every document for `subject` on the knowledge base `knowledge_base_arn`: `false`
/// for all when the knowledge base itself is refused, and for a document whose tags cannot
/// be keys.
pub fn decide_documents(
    subject: &Subject,
    knowledge_base_arn: &str,
    documents: &[BatchDocument],
) -> Vec<bool> {
    let kb = subject.request(crate::RETRIEVE, knowledge_base_arn);
    if !subject.decide(&kb).is_allow() {
        return vec![false; documents.len()];
    }
    let mut decider = DocumentDecider::new(subject, knowledge_base_arn);
    documents
        .iter()
        .map(|d| match document_keys(&d.tags) {
            Some(keys) => decider.allowed(&d.id, keys),
            None => false,
        })
        .collect()
}

/// Checks what serde does not: the count and the ids.
pub fn check(req: &BatchRequest) -> Result<(), String> {
    if req.documents.len() > MAX_DOCUMENTS {
        return Err(format!(
            "documents: at most {MAX_DOCUMENTS} per call, got {}",
            req.documents.len()
        ));
    }
    for (i, d) in req.documents.iter().enumerate() {
        if d.id.is_empty() || d.id.len() > 512 || d.id.chars().any(char::is_control) {
            return Err(format!(
                "documents[{i}].id: 1-512 bytes without control characters"
            ));
        }
    }
    Ok(())
}
