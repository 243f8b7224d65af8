//! The retrieval face's [`gatehouse_retrieval::RetrievalHost`], from the gateway's own
//! steps: the same authentication as `/v1` (Bearer session token or access key, SigV4), the
//! same request context (source address, listener, time, the credential's keys), the same
//! encoded denial messages and the same audit queue. Here until the shared pipeline offers
//! these steps to every face.

use crate::AppState;
use crate::gateway::audit::GatewayAuditRecord;
use crate::gateway::auth::GatewayCaller;
use crate::gateway::{Facts, ListenerInfo};
use axum::http::{HeaderMap, Method, Uri};
use gatehouse_policy::{Decision, Request};
use gatehouse_retrieval::{Retrieval, RetrievalAuditRecord, RetrievalHost, Subject};
use gatehouse_store::Store;
use std::net::SocketAddr;

/// One retrieval request as the server sees it.
#[derive(Debug)]
pub struct RetrievalCall {
    facts: Facts,
    request_id: String,
}

/// The subject of a caller: the request every decision starts from carries the keys the
/// gateway sets (built by the gateway's own decision step, whose answer is not used).
fn subject(caller: &GatewayCaller, facts: &Facts) -> Subject {
    let (_, base) = crate::gateway::decide_with(caller, "", "", facts, &[], None);
    Subject {
        arn: caller.arn.clone(),
        account: caller.account_id.clone(),
        base,
        policies: caller.principal.clone(),
        session: caller.session_policy.clone(),
        now: facts.now,
    }
}

impl RetrievalHost for AppState {
    type Call = RetrievalCall;

    fn retrieval(&self) -> &Retrieval {
        &self.retrieval
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn region(&self) -> &str {
        &self.config.region
    }

    fn generation(&self) -> i64 {
        self.cache.generation()
    }

    fn begin(
        &self,
        peer: SocketAddr,
        listener: Option<ListenerInfo>,
        headers: &HeaderMap,
    ) -> RetrievalCall {
        let origin = crate::origin::Origin::of(
            &self.gateway.settings().trusted_proxies,
            peer,
            headers,
            listener,
        );
        RetrievalCall {
            facts: Facts {
                origin,
                now: self.clock.now(),
            },
            request_id: crate::request_id(),
        }
    }

    async fn authenticate(
        &self,
        call: &mut RetrievalCall,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Subject, String> {
        let caller = crate::gateway::auth::authenticate(
            self,
            method.as_str(),
            uri.path(),
            uri.query().unwrap_or(""),
            headers,
            Some(body),
        )
        .await
        .map_err(|e| e.message)?;
        Ok(subject(&caller, &call.facts))
    }

    async fn session_subject(&self, call: &RetrievalCall, token: &str) -> Result<Subject, String> {
        let person = crate::gateway::auth::resolve_session_token(self, token)
            .await
            .map_err(|e| e.message)?;
        // The person is not the one connected: the application's address and listener are
        // not theirs. Only the time and what the token itself carries are in the context.
        let mut s = subject(&person, &call.facts);
        for k in ["aws:SourceIp", "aws:SourceVpce", "aws:SecureTransport"] {
            s.base.context.remove(k);
        }
        Ok(s)
    }

    fn denial_message(&self, request: &Request, decision: &Decision) -> Option<String> {
        crate::seal_denial(self, request, decision)
    }

    fn record(&self, call: &RetrievalCall, r: &RetrievalAuditRecord) -> bool {
        let origin = &call.facts.origin;
        let rec = GatewayAuditRecord {
            time: call
                .facts
                .now
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id: call.request_id.clone(),
            principal: r.principal.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            decision: r.decision.clone(),
            statement: r.statement.clone(),
            source_ip: origin.source.audit_ip(),
            source_unknown_via: origin.source.audit_via(),
            error_code: r.error_code.clone(),
            listener: origin.listener.name.clone(),
            status: r.status,
            latency_ms: r.latency_ms,
            retrieval: Some(r.detail.clone()),
            ..GatewayAuditRecord::default()
        };
        crate::gateway::record(self, &rec)
    }

    fn request_id(&self) -> String {
        crate::request_id()
    }
}
