//! The gateway's settings, from the `[gateway]` table of the config file: named listeners
//! (their name is `aws:SourceVpce`), trusted proxies (whose `X-Forwarded-For` is believed
//! for `aws:SourceIp`, by every face: `crate::origin`), limits, budgets, and deployments to
//! load at start.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Extra listeners besides the main `listen` address (which is named `default`).
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// Peers whose `X-Forwarded-For` header is trusted (CIDRs), on every face: the
    /// gateway and the IAM/STS Query API alike (see `crate::origin`).
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Addresses deployments may point at although they are refused by default
    /// (link-local, metadata services, Gatehouse's own listeners; see `upstream.rs`).
    #[serde(default)]
    pub upstream_allow: Vec<IpNet>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Time allowed for the upstream to answer (headers, and between stream chunks), in seconds.
    #[serde(default = "default_timeout")]
    pub upstream_timeout_secs: u64,
    /// Budgets: every entry that matches the caller (its ARN, its role, one of its
    /// groups) applies (see `budget.rs`).
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// The most tokens a request that sets no `max_tokens` may generate when a token
    /// budget applies to it: reserved at admission and forwarded as its `max_tokens`.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
    /// Deployments to create or update at start (in the default account).
    #[serde(default)]
    pub deployments: Vec<DeploymentConfig>,
    /// Upstream MCP servers to create or update at start (in the default account).
    #[serde(default)]
    pub mcp_servers: Vec<gatehouse_mcp::config::McpServerConfig>,
    /// Seconds a client may take to send a request head, from its first byte.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send a request body, from the end of its head.
    #[serde(default = "default_body_timeout")]
    pub body_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in flight.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Connections each listener serves at once (the main one and each extra one).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listeners: Vec::new(),
            trusted_proxies: Vec::new(),
            upstream_allow: Vec::new(),
            max_body_bytes: default_max_body(),
            upstream_timeout_secs: default_timeout(),
            budgets: Vec::new(),
            default_max_tokens: default_max_tokens(),
            deployments: Vec::new(),
            mcp_servers: Vec::new(),
            header_read_timeout_secs: default_header_timeout(),
            body_read_timeout_secs: default_body_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_header_timeout() -> u64 {
    10
}

fn default_body_timeout() -> u64 {
    30
}

fn default_idle_timeout() -> u64 {
    60
}

fn default_max_connections() -> usize {
    1024
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

fn default_timeout() -> u64 {
    120
}

fn default_max_tokens() -> u64 {
    4096
}

/// `[[gateway.listeners]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// The listener's name (`aws:SourceVpce`), e.g. `private`.
    pub name: String,
    /// Address to bind.
    pub listen: SocketAddr,
    /// PEM certificate chain, for TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Connections this listener serves at once (default: `[gateway] max_connections`).
    pub max_connections: Option<usize>,
}

/// `[[gateway.budgets]]`: limits for whatever exactly one of `principal`, `role` or
/// `group` names (ARN patterns with `*` and `?`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Caller ARN pattern: each matching caller (user, or session by its
    /// `assumed-role/ROLE/SESSION` ARN) has its own counters.
    pub principal: Option<String>,
    /// Role ARN pattern: all the sessions of a matching role count together.
    pub role: Option<String>,
    /// Group ARN pattern: all the members of a matching group count together.
    pub group: Option<String>,
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute (a sliding 60 seconds; reserved at admission, settled to the
    /// upstream's `usage`).
    pub tokens_per_minute: Option<u64>,
    /// Tokens per day (a sliding 24 hours, counted in hours).
    pub tokens_per_day: Option<u64>,
}

/// `[[gateway.deployments]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Model id callers use.
    pub model: String,
    /// Upstream base URL (`.../v1`).
    pub base_url: String,
    /// Provider name (`ai:Provider`).
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Model name to send upstream.
    pub upstream_model: Option<String>,
    /// Name of the environment variable holding the provider key (never the key itself).
    pub api_key_env: Option<String>,
    /// Log prompts and responses (sealed).
    #[serde(default)]
    pub log_invocations: bool,
    /// The date (`YYYY-MM-DD`) the model is deprecated; the access review lists who can
    /// still invoke it.
    pub deprecated_on: Option<String>,
}

fn default_provider() -> String {
    "openai-compatible".to_owned()
}

pub use gatehouse_pipeline::origin::ListenerInfo;

impl GatewaySettings {
    /// The connection limits and timeouts of the listener named `listener` (`None`: the
    /// main one).
    pub fn limits(&self, listener: Option<&str>) -> crate::listen::Limits {
        let own = self
            .listeners
            .iter()
            .find(|l| Some(l.name.as_str()) == listener)
            .and_then(|l| l.max_connections);
        crate::listen::Limits {
            header_read: std::time::Duration::from_secs(self.header_read_timeout_secs),
            body_read: std::time::Duration::from_secs(self.body_read_timeout_secs),
            idle: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_connections: own.unwrap_or(self.max_connections),
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        names.insert("default");
        for l in &self.listeners {
            if !names.insert(l.name.as_str()) {
                return Err(format!(
                    "listener name {:?} used twice (or is `default`)",
                    l.name
                ));
            }
            if l.tls_cert.is_some() != l.tls_key.is_some() {
                return Err(format!(
                    "listener {:?}: tls_cert and tls_key go together",
                    l.name
                ));
            }
        }
        for (i, b) in self.budgets.iter().enumerate() {
            let named = [&b.principal, &b.role, &b.group]
                .iter()
                .filter(|p| p.is_some())
                .count();
            if named != 1 {
                return Err(format!(
                    "budgets[{i}]: name exactly one of principal, role or group"
                ));
            }
            if b.requests_per_minute.is_none()
                && b.tokens_per_minute.is_none()
                && b.tokens_per_day.is_none()
            {
                return Err(format!(
                    "budgets[{i}]: set at least one of requests_per_minute, tokens_per_minute, tokens_per_day"
                ));
            }
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            (
                "max_connections",
                u64::try_from(self.max_connections).unwrap_or(1),
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if let Some(l) = self.listeners.iter().find(|l| l.max_connections == Some(0)) {
            return Err(format!(
                "listener {:?}: max_connections must be positive",
                l.name
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn budgets_name_exactly_one_subject_and_keep_the_principal_form() {
        let parse = |budgets: serde_json::Value| -> Result<GatewaySettings, String> {
            let s: GatewaySettings =
                serde_json::from_value(serde_json::json!({ "budgets": budgets }))
                    .map_err(|e| e.to_string())?;
            s.validate().map(|()| s)
        };
        let old = parse(serde_json::json!([
            {"principal": "arn:gatehouse:iam::*:user/*", "requests_per_minute": 3}
        ]))
        .unwrap();
        assert_eq!(
            old.budgets[0].principal.as_deref(),
            Some("arn:gatehouse:iam::*:user/*")
        );
        let new = parse(serde_json::json!([
            {"group": "arn:gatehouse:iam::*:group/search", "tokens_per_day": 9},
            {"role": "arn:gatehouse:iam::*:role/app", "requests_per_minute": 1}
        ]))
        .unwrap();
        assert_eq!(new.budgets.len(), 2);
        let two = parse(serde_json::json!([{"role": "r", "group": "g", "requests_per_minute": 1}]));
        assert!(two.unwrap_err().contains("exactly one"));
        let none = parse(serde_json::json!([{"requests_per_minute": 1}]));
        assert!(none.unwrap_err().contains("exactly one"));
        let no_limit = parse(serde_json::json!([{"group": "g"}]));
        assert!(no_limit.unwrap_err().contains("at least one"));
        let unknown = parse(serde_json::json!([{"team": "g", "requests_per_minute": 1}]));
        assert!(unknown.is_err());
    }
}
