//! The MCP face's [`gatehouse_mcp::McpHost`], from the gateway's own steps: the same
//! authentication as `/v1` (Bearer session token or access key, SigV4), the same decision
//! context (source address, listener, time, the credential's keys), the same encoded
//! denial messages and the same audit queue. Here until the shared pipeline offers these
//! steps to every face.

use crate::AppState;
use crate::gateway::audit::GatewayAuditRecord;
use crate::gateway::auth::GatewayCaller;
use crate::gateway::{Facts, ListenerInfo};
use axum::http::{HeaderMap, Method, Uri};
use gatehouse_mcp::{McpAuditRecord, McpGateway, McpHost, Principal, Verdict};
use gatehouse_policy::{ContextValue, DecisionKind, Request};
use gatehouse_store::Store;
use std::net::SocketAddr;

/// One MCP request as the server sees it.
#[derive(Debug)]
pub struct McpCall {
    facts: Facts,
    request_id: String,
    caller: Option<GatewayCaller>,
}

impl McpHost for AppState {
    type Call = McpCall;

    fn mcp(&self) -> &McpGateway {
        &self.mcp
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
    ) -> McpCall {
        let origin = crate::origin::Origin::of(
            &self.gateway.settings().trusted_proxies,
            peer,
            headers,
            listener,
        );
        McpCall {
            facts: Facts {
                origin,
                now: self.clock.now(),
            },
            request_id: crate::request_id(),
            caller: None,
        }
    }

    async fn authenticate(
        &self,
        call: &mut McpCall,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, String> {
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
        let principal = Principal {
            arn: caller.arn.clone(),
            account: caller.account_id.clone(),
        };
        call.caller = Some(caller);
        Ok(principal)
    }

    fn decide(
        &self,
        call: &McpCall,
        action: &str,
        resource: &str,
        keys: &[(String, ContextValue)],
        open_prefix: Option<&str>,
    ) -> Verdict {
        // Fail closed: no authenticated caller, no decision.
        let Some(caller) = &call.caller else {
            return Verdict {
                allowed: false,
                decision: DecisionKind::ImplicitDeny.as_str().to_owned(),
                statement: None,
                encoded_message: None,
            };
        };
        let (decision, req): (gatehouse_policy::Decision, Request) =
            crate::gateway::decide_with(caller, action, resource, &call.facts, keys, open_prefix);
        let allowed = decision.decision == DecisionKind::Allow;
        Verdict {
            allowed,
            decision: decision.decision.as_str().to_owned(),
            statement: decision.statements.first().map(ToString::to_string),
            encoded_message: if allowed {
                None
            } else {
                crate::seal_denial(self, &req, &decision)
            },
        }
    }

    fn record(&self, call: &McpCall, r: &McpAuditRecord) -> bool {
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
            elevation_id: call
                .caller
                .as_ref()
                .and_then(GatewayCaller::elevation_id)
                .map(str::to_owned),
            mcp: Some(serde_json::json!({
                "server": r.server,
                "method": r.method,
                "tool": r.tool,
                "arguments_sha256": r.arguments_sha256,
                "session": r.session,
                "upstream": r.upstream,
            })),
            ..GatewayAuditRecord::default()
        };
        crate::gateway::record(self, &rec)
    }
}

/// Creates or updates the MCP servers the config file lists (`[[gateway.mcp_servers]]`,
/// in the default account) with the URL rules of deployments, and pins their tools; a
/// server whose upstream is not up yet is pinned on first contact (logged).
pub async fn load_configured_mcp_servers(state: &AppState) -> Result<usize, String> {
    let settings = state.gateway.settings();
    for cfg in &settings.mcp_servers {
        if let Some(url) = &cfg.url {
            state
                .gateway
                .upstream
                .check_url(url)
                .await
                .map_err(|e| format!("mcp_servers {}: url: {e}", cfg.name))?;
        }
        let registered = gatehouse_mcp::config::register(
            &state.store,
            &state.mcp,
            &state.config.account_id,
            cfg,
            |var| std::env::var(var).ok(),
        )
        .await
        .map_err(|e| e.to_string())?;
        if let gatehouse_mcp::config::Registered::PinLater(why) = registered {
            tracing::warn!(server = %cfg.name, error = %why, "configured MCP server's tools cannot be listed now; pinned on first contact");
        }
    }
    Ok(settings.mcp_servers.len())
}
