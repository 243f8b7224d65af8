//! `[[gateway.mcp_servers]]`: upstream MCP servers registered from the configuration file
//! at start, as `gatehouse mcp add` registers them (and with the same pinning), so a
//! deployment declares its tools' servers next to its models.
//!
//! Header and environment values are never in the file: it names the environment
//! variables that hold them, read at start and sealed in the store.

use crate::McpGateway;
use gatehouse_store::{McpTransport, NewMcpServer, Secret, Store, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One `[[gateway.mcp_servers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The name callers use (`/mcp/NAME`).
    pub name: String,
    /// A streamable-HTTP server's endpoint.
    pub url: Option<String>,
    /// Headers sent upstream: header name → the environment variable holding its value.
    #[serde(default)]
    pub header_env: BTreeMap<String, String>,
    /// A stdio server's program.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment: variable name → the environment variable holding its value.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Why a configured server could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The entry is not a server (neither or both of `url` and `command`, ...).
    #[error("mcp_servers {server}: {why}")]
    Invalid {
        /// The entry's name.
        server: String,
        /// What is wrong.
        why: String,
    },
    /// A named environment variable is not set.
    #[error("mcp_servers {server}: environment variable {var} is not set")]
    MissingVariable {
        /// The entry's name.
        server: String,
        /// The variable.
        var: String,
    },
    /// The store refused it.
    #[error("mcp_servers {server}: {source}")]
    Store {
        /// The entry's name.
        server: String,
        /// The store's error.
        source: StoreError,
    },
}

/// What registering one configured server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Pinned now (or kept its pins: it is reached as before).
    Pinned,
    /// Its upstream could not be listed: it is pinned on first contact.
    PinLater(String),
}

impl McpServerConfig {
    /// The transport, checked: exactly one of `url` and `command`.
    pub fn transport(&self) -> Result<McpTransport, ConfigError> {
        let invalid = |why: &str| ConfigError::Invalid {
            server: self.name.clone(),
            why: why.to_owned(),
        };
        match (&self.url, &self.command) {
            (Some(url), None) if self.args.is_empty() && self.env.is_empty() => {
                Ok(McpTransport::Http { url: url.clone() })
            }
            (Some(_), None) => Err(invalid("args and env are for a command, not a url")),
            (None, Some(command)) if self.header_env.is_empty() => Ok(McpTransport::Stdio {
                command: command.clone(),
                args: self.args.clone(),
            }),
            (None, Some(_)) => Err(invalid("header_env is for a url, not a command")),
            _ => Err(invalid("give exactly one of url and command")),
        }
    }

    fn secrets(
        &self,
        pairs: &BTreeMap<String, String>,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, Secret)>, ConfigError> {
        pairs
            .iter()
            .map(|(name, var)| {
                let value = lookup(var).ok_or_else(|| ConfigError::MissingVariable {
                    server: self.name.clone(),
                    var: var.clone(),
                })?;
                Ok((name.clone(), Secret::new(value)))
            })
            .collect()
    }
}

/// Creates or updates the server `cfg` describes in `account` (values of the named
/// variables from `lookup`), then pins its tools unless it is pinned already; an upstream
/// that cannot be listed now leaves the server to be pinned on first contact.
pub async fn register(
    store: &Store,
    gateway: &McpGateway,
    account: &str,
    cfg: &McpServerConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Registered, ConfigError> {
    let new = NewMcpServer {
        name: cfg.name.clone(),
        transport: cfg.transport()?,
        headers: cfg.secrets(&cfg.header_env, &lookup)?,
        env: cfg.secrets(&cfg.env, &lookup)?,
        log_invocations: false,
    };
    let store_err = |source| ConfigError::Store {
        server: cfg.name.clone(),
        source,
    };
    let exists = store.get_mcp_server(account, &cfg.name).await.is_ok();
    let saved = match store.put_mcp_server(account, &new, !exists).await {
        // Another node sharing the store created it since we looked: ours is an update.
        Err(StoreError::EntityAlreadyExists { .. }) if !exists => {
            store.put_mcp_server(account, &new, false).await
        }
        other => other,
    }
    .map_err(store_err)?;
    if saved.pinned.is_some() {
        return Ok(Registered::Pinned);
    }
    match gateway.pin_registered(store, account, &cfg.name).await {
        Ok(_) => Ok(Registered::Pinned),
        Err(e) => Ok(Registered::PinLater(e.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(text: &str) -> McpServerConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn exactly_one_transport() {
        let http = parse(
            "name = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\nheader_env = { Authorization = \"T\" }",
        );
        assert!(matches!(http.transport(), Ok(McpTransport::Http { .. })));
        let stdio = parse("name = \"a\"\ncommand = \"node\"\nargs = [\"x\"]\nenv = { K = \"V\" }");
        assert!(matches!(stdio.transport(), Ok(McpTransport::Stdio { .. })));
        for bad in [
            "name = \"a\"",
            "name = \"a\"\nurl = \"http://x/\"\ncommand = \"node\"",
            "name = \"a\"\nurl = \"http://x/\"\nargs = [\"x\"]",
            "name = \"a\"\ncommand = \"node\"\nheader_env = { A = \"B\" }",
        ] {
            assert!(
                matches!(parse(bad).transport(), Err(ConfigError::Invalid { .. })),
                "{bad}"
            );
        }
        assert!(toml::from_str::<McpServerConfig>("name = \"a\"\nheaders = {}").is_err());
    }

    #[test]
    fn values_come_from_the_named_variables() {
        let c = parse("name = \"a\"\nurl = \"http://x/\"\nheader_env = { Authorization = \"T\" }");
        let got = c
            .secrets(&c.header_env, &|v| {
                (v == "T").then(|| "Bearer s".to_owned())
            })
            .unwrap();
        assert_eq!(got[0].0, "Authorization");
        assert_eq!(got[0].1.expose_str(), Some("Bearer s"));
        let missing = c.secrets(&c.header_env, &|_| None);
        assert!(matches!(missing, Err(ConfigError::MissingVariable { var, .. }) if var == "T"));
    }
}
