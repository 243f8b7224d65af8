//! The gateway's settings, from the `[gateway]` table of the config file: named listeners
//! (their name is `aws:SourceVpce`), trusted proxies (whose `X-Forwarded-For` is believed
//! for `aws:SourceIp`), limits, budgets, and deployments to load at start.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Extra listeners besides the main `listen` address (which is named `default`).
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// Peers whose `X-Forwarded-For` header is trusted (CIDRs).
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
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
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listeners: Vec::new(),
            trusted_proxies: Vec::new(),
            max_body_bytes: default_max_body(),
            upstream_timeout_secs: default_timeout(),
            budgets: Vec::new(),
            default_max_tokens: default_max_tokens(),
            deployments: Vec::new(),
        }
    }
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

/// A listener's identity as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Name (`aws:SourceVpce`).
    pub name: String,
    /// Whether it speaks TLS (`aws:SecureTransport`).
    pub tls: bool,
}

impl ListenerInfo {
    /// The main `listen` address.
    pub fn main() -> ListenerInfo {
        ListenerInfo {
            name: "default".to_owned(),
            tls: false,
        }
    }
}

impl GatewaySettings {
    /// The client address for `aws:SourceIp`: the peer, unless the peer is a trusted proxy,
    /// in which case the rightmost `X-Forwarded-For` hop that is not itself trusted.
    pub fn source_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let Some(xff) = forwarded_for else {
            return peer;
        };
        let mut last = peer;
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => last = ip,
                Ok(ip) => return ip,
                // A hop we cannot read ends what we can believe.
                Err(_) => return last,
            }
        }
        last
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
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(proxies: &[&str]) -> GatewaySettings {
        GatewaySettings {
            trusted_proxies: proxies.iter().filter_map(|p| p.parse().ok()).collect(),
            ..GatewaySettings::default()
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let s = settings(&["10.0.0.0/8"]);
        // An untrusted peer cannot claim another address.
        assert_eq!(
            s.source_ip(ip("192.0.2.1"), Some("10.9.9.9")),
            ip("192.0.2.1")
        );
        // A trusted proxy's header is used; spoofed hops left of the first untrusted are ignored.
        assert_eq!(
            s.source_ip(ip("10.0.0.1"), Some("1.1.1.1, 203.0.113.7, 10.0.0.2")),
            ip("203.0.113.7")
        );
        assert_eq!(s.source_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(s.source_ip(ip("10.0.0.1"), Some("garbage")), ip("10.0.0.1"));
    }

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
