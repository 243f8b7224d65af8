//! What the MCP gateway keeps: the upstream MCP servers an operator registered (a
//! streamable-HTTP URL with headers to inject, or a stdio command Gatehouse starts, with
//! its environment), and each server's pinned tool definitions.
//!
//! Header and environment *values* are credentials (bearer keys, API tokens): they are
//! sealed together as one JSON object, like provider keys, and only their names are kept in
//! the clear. Pinning keeps, per tool, the definition an operator approved and its digest,
//! and beside it a definition seen upstream that differs (pending): the gateway neither
//! lists nor calls a tool whose current definition is not the approved one.
//!
//! Server writes and approvals bump the generation (the gateway's table of servers and pins
//! is refreshed by it, like compiled policies); recording a pending change does not — it
//! changes nothing the gateway allows.

use crate::db::{Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{Timestamp, now_ms, ts};
use crate::seal::Secret;
use crate::store::Store;

/// How Gatehouse reaches an upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// Streamable HTTP at this URL.
    Http {
        /// The MCP endpoint, e.g. `http://127.0.0.1:9000/mcp`.
        url: String,
    },
    /// A program Gatehouse starts and speaks to over its standard input and output.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// An upstream MCP server as stored (header and environment values stay sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// The owning account.
    pub account_id: String,
    /// The name callers use (`/mcp/NAME`, `server/NAME`).
    pub name: String,
    /// How it is reached.
    pub transport: McpTransport,
    /// The names of the headers injected upstream (HTTP).
    pub header_names: Vec<String>,
    /// The names of the environment variables set for the program (stdio).
    pub env_names: Vec<String>,
    /// Whether call arguments are logged (sealed).
    pub log_invocations: bool,
    /// When its tools were first recorded (`None`: not contacted yet).
    pub pinned: Option<Timestamp>,
    /// Created.
    pub created: Timestamp,
    /// Last changed.
    pub updated: Timestamp,
}

/// What to write for a server.
#[derive(Debug, Clone)]
pub struct NewMcpServer {
    /// Name.
    pub name: String,
    /// How it is reached.
    pub transport: McpTransport,
    /// Headers injected upstream (HTTP), by name; values sealed.
    pub headers: Vec<(String, Secret)>,
    /// Environment of the program (stdio), by name; values sealed.
    pub env: Vec<(String, Secret)>,
    /// Log call arguments (sealed).
    pub log_invocations: bool,
}

/// One tool's pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpToolPin {
    /// The server.
    pub server: String,
    /// The tool's name.
    pub tool: String,
    /// The approved definition (JSON text), `None` for a tool that appeared after the
    /// server's tools were first recorded and was never approved.
    pub approved: Option<String>,
    /// Digest of the approved definition.
    pub approved_digest: Option<String>,
    /// A definition seen upstream that differs from the approved one, waiting for approval.
    pub pending: Option<String>,
    /// Its digest.
    pub pending_digest: Option<String>,
    /// When the approved definition was approved (or first recorded).
    pub approved_at: Option<Timestamp>,
}

pub(crate) fn secrets_aad(account: &str, name: &str) -> String {
    format!("mcp-server-secrets:{account}:{name}")
}

/// Checks a server name: 1-64 letters, digits, `-` and `_` (one URL path segment and one
/// ARN segment, nothing to decode).
pub fn validate_mcp_server_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation(format!(
            "MCP server name {name:?} must be 1-64 letters, digits, - and _"
        )))
    }
}

/// Checks a tool name as MCP defines it (2025-11-25): 1-128 characters of ASCII letters,
/// digits, `_`, `-` and `.`.
pub fn validate_mcp_tool_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation(format!(
            "MCP tool name {name:?} must be 1-128 letters, digits, _ - and ."
        )))
    }
}

/// A header or environment variable name: printable ASCII without spaces or `=`.
fn validate_variable_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'=' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation(format!(
            "{what} name {name:?} must be 1-128 printable characters without = or :"
        )))
    }
}

fn validate_url(url: &str) -> Result<()> {
    let bad = |why: &str| StoreError::Validation(format!("MCP server URL {url:?} {why}"));
    if url.len() > 2048 {
        return Err(bad("is longer than 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "must not carry a user name or password (use --header-env)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not carry a fragment"));
    }
    Ok(())
}

const SERVER_COLUMNS: &str = "account_id, name, url, command, args, header_names, env_names, \
     log_invocations, pinned_ms, created_ms, updated_ms";

fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Database(format!("MCP server list column: {e}")))
}

fn server_from(r: &Row) -> Result<McpServer> {
    let transport = match (r.opt_text(2)?, r.opt_text(3)?) {
        (Some(url), None) => McpTransport::Http { url },
        (None, Some(command)) => McpTransport::Stdio {
            command,
            args: json_list(&r.text(4)?)?,
        },
        _ => {
            return Err(StoreError::Database(
                "MCP server with neither or both of url and command".into(),
            ));
        }
    };
    Ok(McpServer {
        account_id: r.text(0)?,
        name: r.text(1)?,
        transport,
        header_names: json_list(&r.text(5)?)?,
        env_names: json_list(&r.text(6)?)?,
        log_invocations: r.i64(7)? != 0,
        pinned: r.opt_i64(8)?.map(ts),
        created: ts(r.i64(9)?),
        updated: ts(r.i64(10)?),
    })
}

const TOOL_COLUMNS: &str =
    "server, tool, approved, approved_digest, pending, pending_digest, approved_ms";

fn pin_from(r: &Row) -> Result<McpToolPin> {
    Ok(McpToolPin {
        server: r.text(0)?,
        tool: r.text(1)?,
        approved: r.opt_text(2)?,
        approved_digest: r.opt_text(3)?,
        pending: r.opt_text(4)?,
        pending_digest: r.opt_text(5)?,
        approved_at: r.opt_i64(6)?.map(ts),
    })
}

fn secret_map(pairs: &[(String, Secret)]) -> Result<serde_json::Map<String, serde_json::Value>> {
    pairs
        .iter()
        .map(|(k, v)| match v.expose_str() {
            Some(text) => Ok((k.clone(), serde_json::Value::String(text.to_owned()))),
            None => Err(StoreError::Validation(format!(
                "the value for {k} is not UTF-8"
            ))),
        })
        .collect()
}

fn names_json(pairs: &[(String, Secret)]) -> Result<String> {
    serde_json::to_string(&pairs.iter().map(|(k, _)| k).collect::<Vec<_>>())
        .map_err(|e| StoreError::Validation(e.to_string()))
}

impl Store {
    /// Registers an upstream MCP server (`create`) or replaces one (`!create`, which keeps
    /// its pins only when it is reached the same way as before).
    pub async fn put_mcp_server(
        &self,
        account: &str,
        s: &NewMcpServer,
        create: bool,
    ) -> Result<McpServer> {
        validate_mcp_server_name(&s.name)?;
        let (url, command, args_json) = match &s.transport {
            McpTransport::Http { url } => {
                validate_url(url)?;
                if !s.env.is_empty() {
                    return Err(StoreError::Validation(
                        "environment variables are for stdio servers (--command)".into(),
                    ));
                }
                (Some(url.clone()), None, "[]".to_owned())
            }
            McpTransport::Stdio { command, args } => {
                if command.is_empty() || command.len() > 4096 || args.len() > 256 {
                    return Err(StoreError::Validation(
                        "the command must be 1-4096 characters with at most 256 arguments".into(),
                    ));
                }
                if !s.headers.is_empty() {
                    return Err(StoreError::Validation(
                        "headers are for streamable-HTTP servers (--url)".into(),
                    ));
                }
                let args = serde_json::to_string(args)
                    .map_err(|e| StoreError::Validation(e.to_string()))?;
                (None, Some(command.clone()), args)
            }
        };
        for (k, _) in &s.headers {
            validate_variable_name("header", k)?;
        }
        for (k, _) in &s.env {
            validate_variable_name("environment variable", k)?;
        }
        let secrets = if s.headers.is_empty() && s.env.is_empty() {
            None
        } else {
            let obj = serde_json::json!({
                "headers": secret_map(&s.headers)?,
                "env": secret_map(&s.env)?,
            });
            Some(Secret::new(obj.to_string()))
        };
        let mut tx = self.begin_write().await?;
        crate::store::require_account(&mut tx.conn, account).await?;
        let existing = tx
            .conn
            .opt(
                "SELECT name, url, command, args FROM mcp_servers \
                 WHERE account_id = $1 AND LOWER(name) = LOWER($2)",
                args![account, s.name.as_str()],
            )
            .await?;
        match (&existing, create) {
            (Some(_), true) => return Err(StoreError::exists(EntityKind::McpServer, &s.name)),
            (None, false) => return Err(StoreError::no_such(EntityKind::McpServer, &s.name)),
            (Some(r), false) if r.text(0)? != s.name => {
                return Err(StoreError::no_such(EntityKind::McpServer, &s.name));
            }
            _ => {}
        }
        let sealed = match &secrets {
            Some(v) => Some(
                self.seal_in(&mut tx.conn, &secrets_aad(account, &s.name), v)
                    .await?,
            ),
            None => None,
        };
        let now = now_ms();
        let values = args![
            account,
            s.name.as_str(),
            url.clone(),
            command.clone(),
            args_json.as_str(),
            names_json(&s.headers)?,
            names_json(&s.env)?,
            sealed,
            i64::from(s.log_invocations),
            now
        ];
        if create {
            tx.conn
                .exec(
                    "INSERT INTO mcp_servers (account_id, name, url, command, args, header_names, \
                     env_names, secrets_sealed, log_invocations, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                    values,
                )
                .await
                .map_err(|e| crate::db::map_unique(e, EntityKind::McpServer, &s.name))?;
        } else {
            // Pins belong to what was pinned: another program or URL starts over.
            if let Some(r) = &existing
                && (r.opt_text(1)? != url || r.opt_text(2)? != command || r.text(3)? != args_json)
            {
                tx.conn
                    .exec(
                        "DELETE FROM mcp_tools WHERE account_id = $1 AND server = $2",
                        args![account, s.name.as_str()],
                    )
                    .await?;
                tx.conn
                    .exec(
                        "UPDATE mcp_servers SET pinned_ms = NULL WHERE account_id = $1 AND name = $2",
                        args![account, s.name.as_str()],
                    )
                    .await?;
            }
            tx.conn
                .exec(
                    "UPDATE mcp_servers SET url = $3, command = $4, args = $5, header_names = $6, \
                     env_names = $7, secrets_sealed = $8, log_invocations = $9, updated_ms = $10 \
                     WHERE account_id = $1 AND name = $2",
                    values,
                )
                .await?;
        }
        self.commit(tx).await?;
        self.get_mcp_server(account, &s.name).await
    }

    /// One server.
    pub async fn get_mcp_server(&self, account: &str, name: &str) -> Result<McpServer> {
        let mut c = self.inner.pool.conn().await?;
        let sql =
            format!("SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE account_id = $1 AND name = $2");
        match c.opt(&sql, args![account, name]).await? {
            Some(r) => server_from(&r),
            None => Err(StoreError::no_such(EntityKind::McpServer, name)),
        }
    }

    /// Every server of every account, by account and name.
    pub async fn list_mcp_servers(&self) -> Result<Vec<McpServer>> {
        let mut c = self.inner.pool.conn().await?;
        let sql = format!("SELECT {SERVER_COLUMNS} FROM mcp_servers ORDER BY account_id, name");
        c.all(&sql, vec![]).await?.iter().map(server_from).collect()
    }

    /// The header and environment values of a server, opened (JSON text
    /// `{"headers": {...}, "env": {...}}`), for the upstream connection only.
    pub async fn mcp_server_secrets(&self, account: &str, name: &str) -> Result<Option<Secret>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT secrets_sealed FROM mcp_servers WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::McpServer, name))?;
        drop(c);
        match row.opt_text(0)? {
            Some(sealed) => Ok(Some(
                self.open_sealed(&secrets_aad(account, name), &sealed)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Removes a server and its pins.
    pub async fn delete_mcp_server(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM mcp_servers WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::McpServer, name));
        }
        tx.conn
            .exec(
                "DELETE FROM mcp_tools WHERE account_id = $1 AND server = $2",
                args![account, name],
            )
            .await?;
        self.commit(tx).await
    }

    /// The pins of a server's tools, by tool name.
    pub async fn list_mcp_tools(&self, account: &str, server: &str) -> Result<Vec<McpToolPin>> {
        let mut c = self.inner.pool.conn().await?;
        let sql = format!(
            "SELECT {TOOL_COLUMNS} FROM mcp_tools WHERE account_id = $1 AND server = $2 ORDER BY tool"
        );
        c.all(&sql, args![account, server])
            .await?
            .iter()
            .map(pin_from)
            .collect()
    }

    /// Records a server's tools as approved the first time they are seen (trust on first
    /// contact); `false` (and nothing written) when they were recorded before. `tools` are
    /// `(name, definition JSON, digest)`.
    pub async fn pin_mcp_tools_first(
        &self,
        account: &str,
        server: &str,
        tools: &[(String, String, String)],
    ) -> Result<bool> {
        for (name, _, _) in tools {
            validate_mcp_tool_name(name)?;
        }
        let mut tx = self.begin_write().await?;
        let row = tx
            .conn
            .opt(
                "SELECT pinned_ms FROM mcp_servers WHERE account_id = $1 AND name = $2",
                args![account, server],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::McpServer, server))?;
        if row.opt_i64(0)?.is_some() {
            return Ok(false);
        }
        let now = now_ms();
        for (name, definition, digest) in tools {
            tx.conn
                .exec(
                    "INSERT INTO mcp_tools (account_id, server, tool, approved, approved_digest, \
                     approved_ms, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    args![
                        account,
                        server,
                        name.as_str(),
                        definition.as_str(),
                        digest.as_str(),
                        now
                    ],
                )
                .await
                .map_err(|e| crate::db::map_unique(e, EntityKind::McpTool, name))?;
        }
        tx.conn
            .exec(
                "UPDATE mcp_servers SET pinned_ms = $3 WHERE account_id = $1 AND name = $2",
                args![account, server, now],
            )
            .await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Records a definition seen upstream that is not the approved one (a changed tool, or
    /// a tool that appeared later), for `mcp list` and `mcp approve`. Bookkeeping: it
    /// allows nothing, so it does not bump the generation.
    pub async fn record_mcp_tool_change(
        &self,
        account: &str,
        server: &str,
        tool: &str,
        definition: &str,
        digest: &str,
    ) -> Result<()> {
        validate_mcp_tool_name(tool)?;
        let mut c = self.inner.pool.write_tx().await?;
        let now = now_ms();
        let n = c
            .exec(
                "UPDATE mcp_tools SET pending = $4, pending_digest = $5, seen_ms = $6 \
                 WHERE account_id = $1 AND server = $2 AND tool = $3",
                args![account, server, tool, definition, digest, now],
            )
            .await?;
        if n == 0 {
            c.exec(
                "INSERT INTO mcp_tools (account_id, server, tool, pending, pending_digest, seen_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![account, server, tool, definition, digest, now],
            )
            .await?;
        }
        c.commit().await
    }

    /// Approves the pending definitions of a server's tools (of `tool` alone when given):
    /// they become the pinned ones. Returns the names approved.
    pub async fn approve_mcp_tools(
        &self,
        account: &str,
        server: &str,
        tool: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM mcp_servers WHERE account_id = $1 AND name = $2",
                args![account, server],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::no_such(EntityKind::McpServer, server));
        }
        let rows = tx
            .conn
            .all(
                "SELECT tool FROM mcp_tools WHERE account_id = $1 AND server = $2 \
                 AND pending IS NOT NULL ORDER BY tool",
                args![account, server],
            )
            .await?;
        let mut names = Vec::new();
        for r in &rows {
            let name = r.text(0)?;
            if tool.is_none_or(|t| t == name) {
                names.push(name);
            }
        }
        if let Some(t) = tool
            && names.is_empty()
        {
            return Err(StoreError::no_such(
                EntityKind::McpTool,
                format!("{server}/{t} (with a change to approve)"),
            ));
        }
        let now = now_ms();
        for name in &names {
            tx.conn
                .exec(
                    "UPDATE mcp_tools SET approved = pending, approved_digest = pending_digest, \
                     pending = NULL, pending_digest = NULL, approved_ms = $4 \
                     WHERE account_id = $1 AND server = $2 AND tool = $3",
                    args![account, server, name.as_str(), now],
                )
                .await?;
        }
        tx.conn
            .exec(
                "UPDATE mcp_servers SET pinned_ms = COALESCE(pinned_ms, $3) \
                 WHERE account_id = $1 AND name = $2",
                args![account, server, now],
            )
            .await?;
        self.commit(tx).await?;
        Ok(names)
    }
}
