-- The MCP gateway: upstream MCP servers registered by operators (a streamable-HTTP URL
-- with headers, or a stdio command with arguments and environment; header and
-- environment values sealed together as one JSON object) and each server's pinned tool
-- definitions: the approved definition and its digest, and a definition seen upstream
-- that differs (pending until an operator approves it). pinned_ms is set when the
-- server's tools were first recorded.
CREATE TABLE mcp_servers (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT,
    command TEXT,
    args TEXT NOT NULL,
    header_names TEXT NOT NULL,
    env_names TEXT NOT NULL,
    secrets_sealed TEXT,
    log_invocations BIGINT NOT NULL DEFAULT 0,
    pinned_ms BIGINT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE mcp_tools (
    account_id TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    approved TEXT,
    approved_digest TEXT,
    pending TEXT,
    pending_digest TEXT,
    approved_ms BIGINT,
    seen_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, server, tool)
);
