//! Authorization of every call by the policy engine, with compiled policy sets cached per
//! principal.
//!
//! A principal's policies (identity, group, boundary, account guardrails) are read from the
//! store once, compiled once, and reused until the store's generation moves: every write
//! bumps it, this node clears its cache at once, and other nodes learn of it through
//! PostgreSQL `LISTEN/NOTIFY` (or a one-second poll on SQLite). A policy that fails to
//! compile fails the whole principal closed: every request is denied and the cause logged.

use gatehouse_policy::{
    Decision, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use gatehouse_store::{PolicySource, PrincipalPolicies};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why a principal's stored policies could not be compiled (the principal is then denied
/// everything: fail closed).
#[derive(Debug, thiserror::Error)]
pub enum PrincipalCompileError {
    /// A stored document does not parse.
    #[error("stored policy {policy} does not parse: {message}")]
    Parse {
        /// The policy's name (`user/alice/inline-name`, a managed policy's ARN...).
        policy: String,
        /// The parser's message.
        message: String,
    },
    /// The documents parse but do not compile into a policy set.
    #[error(transparent)]
    Compile(#[from] gatehouse_policy::CompileError),
}

/// A principal's policies, compiled.
#[derive(Debug)]
pub struct CompiledPrincipal {
    /// What the store said about the principal.
    pub info: PrincipalPolicies,
    identity: PolicySet,
    boundary: Option<PolicySet>,
    guardrails: Vec<PolicySet>,
}

impl CompiledPrincipal {
    /// Compiles the policies; any document that does not compile is an error (fail closed).
    pub fn compile(info: PrincipalPolicies) -> Result<CompiledPrincipal, PrincipalCompileError> {
        let named =
            |p: &gatehouse_store::SourcedPolicy| -> Result<NamedPolicy, PrincipalCompileError> {
                let name = source_name(&p.source);
                match PolicyDocument::parse(&p.document) {
                    Ok(doc) => Ok(NamedPolicy::new(name, doc)),
                    Err(e) => Err(PrincipalCompileError::Parse {
                        policy: name,
                        message: e.to_string(),
                    }),
                }
            };
        let identity = info
            .identity_policies
            .iter()
            .map(named)
            .collect::<Result<Vec<_>, _>>()?;
        let identity = PolicySet::new(PolicyType::Identity, identity)?;
        let boundary = match &info.boundary {
            Some(b) => Some(PolicySet::new(PolicyType::Boundary, [named(b)?])?),
            None => None,
        };
        let guardrails = if info.guardrails.is_empty() {
            Vec::new()
        } else {
            let docs = info
                .guardrails
                .iter()
                .map(named)
                .collect::<Result<Vec<_>, _>>()?;
            vec![PolicySet::new(PolicyType::Guardrail, docs)?]
        };
        Ok(CompiledPrincipal {
            info,
            identity,
            boundary,
            guardrails,
        })
    }

    /// The evaluation for this principal, with optional resource and session policies.
    pub fn evaluation<'a>(
        &'a self,
        resource: Option<&'a PolicySet>,
        session: Option<&'a PolicySet>,
    ) -> Evaluation<'a> {
        Evaluation {
            identity: &self.identity,
            resource,
            boundary: self.boundary.as_ref(),
            guardrails: &self.guardrails,
            session,
        }
    }

    /// Decides a request with the principal's own policies.
    pub fn decide(&self, request: &Request) -> Decision {
        self.evaluation(None, None).decide(request)
    }

    /// Adds the context keys AWS derives from the principal (`aws:PrincipalTag/...`,
    /// `aws:userid`, ...) unless the request already has them.
    pub fn fill_context(&self, request: &mut Request) {
        let ctx = &mut request.context;
        for t in &self.info.tags {
            let key = format!("aws:PrincipalTag/{}", t.key);
            if ctx.get(&key).is_none() {
                ctx.insert(key, t.value.as_str());
            }
        }
        if ctx.get("aws:userid").is_none() {
            ctx.insert("aws:userid", self.info.principal_id.as_str());
        }
        if ctx.get("aws:PrincipalArn").is_none() {
            ctx.insert("aws:PrincipalArn", self.info.principal_arn.as_str());
        }
        if ctx.get("aws:PrincipalAccount").is_none() {
            ctx.insert("aws:PrincipalAccount", self.info.account_id.as_str());
        }
    }
}

/// The name a decision cites for a stored policy.
pub fn source_name(source: &PolicySource) -> String {
    match source {
        PolicySource::Inline {
            policy_name,
            via_group: None,
        } => format!("inline:{policy_name}"),
        PolicySource::Inline {
            policy_name,
            via_group: Some(g),
        } => format!("group:{g}/inline:{policy_name}"),
        PolicySource::Managed {
            arn,
            via_group: None,
            ..
        } => arn.clone(),
        PolicySource::Managed {
            arn,
            via_group: Some(g),
            ..
        } => format!("group:{g}/{arn}"),
        PolicySource::Boundary { arn, .. } => arn.clone(),
        PolicySource::Guardrail { name } => format!("guardrail:{name}"),
    }
}

/// Compiled principals by ARN, valid for one store generation.
#[derive(Debug, Default)]
pub struct PolicyCache {
    inner: RwLock<CacheInner>,
    lookups: crate::counts::LookupCounts,
}

#[derive(Debug, Default)]
struct CacheInner {
    generation: i64,
    principals: HashMap<String, Arc<CompiledPrincipal>>,
}

impl PolicyCache {
    /// The cached principal, if compiled at the current generation.
    pub fn get(&self, arn: &str) -> Option<Arc<CompiledPrincipal>> {
        let found = self
            .inner
            .read()
            .ok()
            .and_then(|inner| inner.principals.get(arn).cloned());
        self.lookups.record(found.is_some());
        found
    }

    /// Hits and misses so far (for `/metrics`).
    pub fn lookups(&self) -> &crate::counts::LookupCounts {
        &self.lookups
    }

    /// Stores a compiled principal, unless the cache has moved to a newer generation.
    pub fn put(&self, arn: String, principal: Arc<CompiledPrincipal>) {
        if let Ok(mut inner) = self.inner.write()
            && principal.info.generation >= inner.generation
        {
            inner.principals.insert(arn, principal);
        }
    }

    /// Drops everything compiled before `generation`.
    pub fn invalidate(&self, generation: i64) {
        if let Ok(mut inner) = self.inner.write()
            && generation != inner.generation
        {
            inner.generation = generation;
            inner.principals.clear();
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.principals.clear();
        }
    }

    /// The generation the cache is at.
    pub fn generation(&self) -> i64 {
        self.inner.read().map_or(-1, |i| i.generation)
    }
}
