-- Authorization codes of Gatehouse's OAuth authorization server (issue 13). Only the
-- SHA-256 of a code is kept (a database read does not yield usable codes). A code is
-- bound to its client, redirect URI, resource and PKCE S256 challenge; `grant` is what
-- redeeming it mints (JSON). Redeeming is one DELETE ... RETURNING, so a code works once
-- on any node; expired rows are purged as new codes are issued.
CREATE TABLE signin_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    resource TEXT,
    code_challenge TEXT NOT NULL,
    grant_json TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX signin_codes_expiry ON signin_codes (expires_ms);
