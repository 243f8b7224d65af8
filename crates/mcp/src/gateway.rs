//! The MCP gateway's state: the registered servers with their upstream connections and
//! pins, held for one store generation like compiled policies (an upstream connection —
//! and a stdio program — is kept across generations while its server is unchanged), and
//! the reconciliation of what an upstream lists with what was pinned.

use crate::tools::ToolDefinition;
use crate::upstream::{Upstream, UpstreamError, UpstreamSpec};
use gatehouse_store::{McpServer, McpToolPin, McpTransport, Secret, Store, StoreError};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a fetched tool list is used to decide calls before it is fetched again (a
/// listing always fetches it).
pub const TOOL_VIEW_TTL: Duration = Duration::from_secs(2);

/// Why the gateway could not get to a decision.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Stored secrets that do not read as the JSON they were written as.
    #[error("the stored headers or environment of MCP server {0} cannot be read")]
    Secrets(String),
}

/// One registered server, ready for the request path.
#[derive(Debug)]
pub struct ServerEntry {
    /// What the store holds.
    pub server: McpServer,
    /// Pins by tool name (this generation's).
    pub pins: HashMap<String, McpToolPin>,
    /// The approved definitions by tool name, read from the pins: what calls and listings
    /// are decided on before anything is asked of the upstream.
    pub approved: HashMap<String, ToolDefinition>,
    /// The connection, shared with later generations while the server is unchanged.
    pub upstream: Arc<UpstreamState>,
}

/// An upstream connection and the last tool list fetched from it.
#[derive(Debug)]
pub struct UpstreamState {
    /// The connection.
    pub upstream: Upstream,
    view: tokio::sync::Mutex<Option<(Instant, Arc<Vec<ToolDefinition>>)>>,
    /// Digests already recorded as pending, so a change is written once.
    recorded: Mutex<HashSet<(String, String)>>,
}

/// Where a tool stands against its pin.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolState {
    /// Listed upstream as pinned: offered, callable.
    Current(ToolDefinition),
    /// Listed upstream with a definition that is not the approved one (or never approved).
    Changed,
    /// Not listed upstream.
    Unknown,
}

#[derive(Debug, Default)]
struct ServerTable {
    generation: Option<i64>,
    servers: HashMap<(String, String), Arc<ServerEntry>>,
}

/// The MCP gateway's part of the server state.
#[derive(Debug)]
pub struct McpGateway {
    table: RwLock<Arc<ServerTable>>,
    reload: tokio::sync::Mutex<()>,
    client: Option<reqwest::Client>,
}

impl Default for McpGateway {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            // A redirect would take the injected headers somewhere unchecked.
            .redirect(reqwest::redirect::Policy::none())
            // Never through a proxy from the environment: it would see the headers.
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| tracing::error!(error = %e, "the MCP upstream HTTP client could not be built; MCP calls will be refused"))
            .ok();
        McpGateway {
            table: RwLock::new(Arc::new(ServerTable::default())),
            reload: tokio::sync::Mutex::new(()),
            client,
        }
    }
}

impl McpGateway {
    /// The server `name` of `account` for store generation `generation`.
    pub async fn server(
        &self,
        store: &Store,
        generation: i64,
        account: &str,
        name: &str,
    ) -> Result<Option<Arc<ServerEntry>>, GatewayError> {
        let table = self.table_for(store, generation).await?;
        Ok(table
            .servers
            .get(&(account.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn table_for(
        &self,
        store: &Store,
        generation: i64,
    ) -> Result<Arc<ServerTable>, GatewayError> {
        if let Ok(t) = self.table.read()
            && t.generation == Some(generation)
        {
            return Ok(Arc::clone(&t));
        }
        let _guard = self.reload.lock().await;
        let old = match self.table.read() {
            Ok(t) if t.generation == Some(generation) => return Ok(Arc::clone(&t)),
            Ok(t) => Arc::clone(&t),
            Err(_) => Arc::new(ServerTable::default()),
        };
        let mut servers = HashMap::new();
        for server in store.list_mcp_servers().await? {
            let key = (server.account_id.clone(), server.name.clone());
            let upstream = match old.servers.get(&key) {
                Some(prev)
                    if prev.server.updated == server.updated
                        && prev.server.transport == server.transport =>
                {
                    Arc::clone(&prev.upstream)
                }
                _ => match self.connect(store, &server).await {
                    Ok(u) => u,
                    Err(e) => {
                        // Fail closed: a server whose secrets cannot be opened is not served.
                        tracing::error!(server = %server.name, error = %e, "MCP server disabled");
                        continue;
                    }
                },
            };
            let pins: HashMap<String, McpToolPin> = store
                .list_mcp_tools(&server.account_id, &server.name)
                .await?
                .into_iter()
                .map(|p| (p.tool.clone(), p))
                .collect();
            let approved = approved_definitions(&server.name, &pins);
            servers.insert(
                key,
                Arc::new(ServerEntry {
                    server,
                    pins,
                    approved,
                    upstream,
                }),
            );
        }
        let table = Arc::new(ServerTable {
            generation: Some(generation),
            servers,
        });
        if let Ok(mut t) = self.table.write() {
            *t = Arc::clone(&table);
        }
        Ok(table)
    }

    /// Pins the tools of a server just registered: connects to its upstream (starting a
    /// stdio program for the time of the listing), lists its tools and records each
    /// definition as approved. Registration pins at once, so a definition changed between
    /// registration and first use is caught (not trusted on first contact). Returns the
    /// names listed (nothing is written when the server was pinned before).
    pub async fn pin_registered(
        &self,
        store: &Store,
        account: &str,
        name: &str,
    ) -> Result<Vec<String>, GatewayError> {
        let server = store.get_mcp_server(account, name).await?;
        let upstream = self.connect(store, &server).await?;
        let listed = definitions(&upstream.upstream.list_tools().await?);
        let rows: Vec<(String, String, String)> = listed
            .iter()
            .map(|t| (t.name.clone(), t.canonical.clone(), t.digest.clone()))
            .collect();
        store.pin_mcp_tools_first(account, name, &rows).await?;
        Ok(rows.into_iter().map(|(n, _, _)| n).collect())
    }

    async fn connect(
        &self,
        store: &Store,
        server: &McpServer,
    ) -> Result<Arc<UpstreamState>, GatewayError> {
        let secrets = store
            .mcp_server_secrets(&server.account_id, &server.name)
            .await?;
        let (headers, env) = match secrets {
            None => (Vec::new(), Vec::new()),
            Some(s) => {
                parse_secrets(&s).ok_or_else(|| GatewayError::Secrets(server.name.clone()))?
            }
        };
        let spec = match &server.transport {
            McpTransport::Http { url } => UpstreamSpec::Http {
                url: url.clone(),
                headers,
            },
            McpTransport::Stdio { command, args } => UpstreamSpec::Stdio {
                command: command.clone(),
                args: args.clone(),
                env,
            },
        };
        let client = self.client.clone().ok_or_else(|| {
            GatewayError::Upstream(UpstreamError::Unreachable("no HTTP client".into()))
        })?;
        Ok(Arc::new(UpstreamState {
            upstream: Upstream::new(spec, client),
            view: tokio::sync::Mutex::new(None),
            recorded: Mutex::new(HashSet::new()),
        }))
    }
}

/// The approved definitions of `pins`, each read back from its stored JSON and checked
/// against its stored digest (one that does not match is not approved: fail closed).
fn approved_definitions(
    server: &str,
    pins: &HashMap<String, McpToolPin>,
) -> HashMap<String, ToolDefinition> {
    let mut out = HashMap::new();
    for (name, pin) in pins {
        let (Some(text), Some(digest)) = (&pin.approved, &pin.approved_digest) else {
            continue;
        };
        match serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| ToolDefinition::from_listed(&v))
        {
            Some(def) if def.digest == *digest && def.name == *name => {
                out.insert(name.clone(), def);
            }
            _ => {
                tracing::error!(server = %server, tool = %name, "stored MCP tool pin does not match its digest; tool not offered");
            }
        }
    }
    out
}

/// An upstream's `tools/list` entries as definitions. A name listed twice is ambiguous:
/// neither is offered.
fn definitions(listed: &[Value]) -> Vec<ToolDefinition> {
    let mut tools: Vec<ToolDefinition> = Vec::with_capacity(listed.len());
    let mut seen = HashSet::new();
    for v in listed {
        match ToolDefinition::from_listed(v) {
            Some(t) if seen.insert(t.name.clone()) => tools.push(t),
            Some(t) => {
                tracing::warn!(tool = %t.name, "MCP server lists a tool name twice; neither is offered");
                tools.retain(|x| x.name != t.name);
            }
            None => tracing::warn!("MCP server lists a tool without a valid name; not offered"),
        }
    }
    tools
}

type Pairs = Vec<(String, Secret)>;

fn parse_secrets(s: &Secret) -> Option<(Pairs, Pairs)> {
    let v: Value = serde_json::from_str(s.expose_str()?).ok()?;
    let pairs = |key: &str| -> Option<Pairs> {
        v.get(key)?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), Secret::new(v.as_str()?.to_owned()))))
            .collect()
    };
    Some((pairs("headers")?, pairs("env")?))
}

impl ServerEntry {
    /// The upstream's tools, fetched now (`fresh`) or within [`TOOL_VIEW_TTL`], each with
    /// its state against the pins. A server not pinned at registration is pinned by
    /// its first listing; later changes are recorded as pending for `gatehouse mcp list`/`approve`.
    pub async fn tools(
        &self,
        store: &Store,
        fresh: bool,
    ) -> Result<Vec<(String, ToolState)>, GatewayError> {
        let listed = self.upstream.view(fresh).await?;
        let mut first_pins: Option<HashSet<String>> = None;
        // The pins compared with: this generation's, or — for a server this generation saw
        // unpinned and that was pinned since (by this node's first contact or another's) —
        // the store's, so a tool just pinned is not taken for a change.
        let stored_pins: HashMap<String, McpToolPin>;
        let mut pins = &self.pins;
        if self.server.pinned.is_none() && self.pins.is_empty() {
            let rows: Vec<(String, String, String)> = listed
                .iter()
                .map(|t| (t.name.clone(), t.canonical.clone(), t.digest.clone()))
                .collect();
            if store
                .pin_mcp_tools_first(&self.server.account_id, &self.server.name, &rows)
                .await?
            {
                tracing::info!(server = %self.server.name, tools = rows.len(), "MCP server's tools pinned on first contact");
                first_pins = Some(rows.into_iter().map(|(n, _, _)| n).collect());
            } else {
                stored_pins = store
                    .list_mcp_tools(&self.server.account_id, &self.server.name)
                    .await?
                    .into_iter()
                    .map(|p| (p.tool.clone(), p))
                    .collect();
                pins = &stored_pins;
            }
        }
        let mut out = Vec::with_capacity(listed.len());
        for t in listed.iter() {
            let current = match &first_pins {
                Some(names) => names.contains(&t.name),
                None => pins
                    .get(&t.name)
                    .is_some_and(|p| p.approved_digest.as_deref() == Some(t.digest.as_str())),
            };
            if current {
                out.push((t.name.clone(), ToolState::Current(t.clone())));
                continue;
            }
            if first_pins.is_none() {
                self.note_change(store, pins, t).await;
            }
            out.push((t.name.clone(), ToolState::Changed));
        }
        Ok(out)
    }

    /// The approved definitions that calls and listings are decided on, before anything
    /// is asked of the upstream. A server whose tools could not be pinned when it was
    /// registered (from the configuration file while its upstream was down) is pinned now,
    /// on first contact, and offers what it lists then.
    pub async fn decidable(
        &self,
        store: &Store,
    ) -> Result<Cow<'_, HashMap<String, ToolDefinition>>, GatewayError> {
        if self.server.pinned.is_some() || !self.pins.is_empty() {
            return Ok(Cow::Borrowed(&self.approved));
        }
        let first: HashMap<String, ToolDefinition> = self
            .tools(store, true)
            .await?
            .into_iter()
            .filter_map(|(name, state)| match state {
                ToolState::Current(def) => Some((name, def)),
                ToolState::Changed | ToolState::Unknown => None,
            })
            .collect();
        Ok(Cow::Owned(first))
    }

    /// One tool's state.
    pub async fn tool(&self, store: &Store, name: &str) -> Result<ToolState, GatewayError> {
        Ok(self
            .tools(store, false)
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(ToolState::Unknown, |(_, s)| s))
    }

    async fn note_change(
        &self,
        store: &Store,
        pins: &HashMap<String, McpToolPin>,
        t: &ToolDefinition,
    ) {
        let key = (t.name.clone(), t.digest.clone());
        let pending_known = pins
            .get(&t.name)
            .is_some_and(|p| p.pending_digest.as_deref() == Some(t.digest.as_str()));
        let first = self
            .upstream
            .recorded
            .lock()
            .map(|mut r| r.insert(key))
            .unwrap_or(false);
        if pending_known || !first {
            return;
        }
        tracing::warn!(server = %self.server.name, tool = %t.name, digest = %t.digest, "MCP tool definition changed upstream; blocked until approved");
        if let Err(e) = store
            .record_mcp_tool_change(
                &self.server.account_id,
                &self.server.name,
                &t.name,
                &t.canonical,
                &t.digest,
            )
            .await
        {
            tracing::error!(server = %self.server.name, tool = %t.name, error = %e, "cannot record the changed tool definition");
            if let Ok(mut r) = self.upstream.recorded.lock() {
                r.remove(&(t.name.clone(), t.digest.clone()));
            }
        }
    }
}

impl UpstreamState {
    async fn view(&self, fresh: bool) -> Result<Arc<Vec<ToolDefinition>>, GatewayError> {
        let mut guard = self.view.lock().await;
        if !fresh
            && let Some((at, tools)) = guard.as_ref()
            && at.elapsed() < TOOL_VIEW_TTL
        {
            return Ok(Arc::clone(tools));
        }
        let tools = Arc::new(definitions(&self.upstream.list_tools().await?));
        *guard = Some((Instant::now(), Arc::clone(&tools)));
        Ok(tools)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pin(def: &ToolDefinition, digest: &str) -> McpToolPin {
        McpToolPin {
            server: "s".into(),
            tool: def.name.clone(),
            approved: Some(def.canonical.clone()),
            approved_digest: Some(digest.into()),
            pending: None,
            pending_digest: None,
            approved_at: None,
        }
    }

    #[test]
    fn approved_definitions_are_the_pins_whose_digest_matches() {
        let good =
            ToolDefinition::from_listed(&json!({"name": "good", "description": "d"})).unwrap();
        let bad = ToolDefinition::from_listed(&json!({"name": "bad", "description": "d"})).unwrap();
        let pending_only = McpToolPin {
            approved: None,
            approved_digest: None,
            pending: Some(good.canonical.clone()),
            pending_digest: Some(good.digest.clone()),
            ..pin(&good, "")
        };
        let pins = HashMap::from([
            ("good".to_owned(), pin(&good, &good.digest)),
            ("bad".to_owned(), pin(&bad, &good.digest)),
            (
                "new".to_owned(),
                McpToolPin {
                    tool: "new".into(),
                    ..pending_only
                },
            ),
        ]);
        let got = approved_definitions("s", &pins);
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["good"]);
        assert_eq!(got["good"], good);
    }

    #[test]
    fn a_name_listed_twice_is_not_offered() {
        let got = definitions(&[
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "a", "description": "other"}),
            json!({"name": "../x"}),
        ]);
        assert_eq!(
            got.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );
    }
}
