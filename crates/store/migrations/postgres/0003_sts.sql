-- The token service's state: virtual MFA devices (the TOTP seed sealed under the master
-- key; last_counter is the replay guard, advanced atomically by every accepted code) and
-- OpenID Connect identity providers (client ids and thumbprints as JSON arrays; jwks is an
-- optional inline key set for offline use).
CREATE TABLE mfa_devices (
    serial_number TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    seed_sealed TEXT NOT NULL,
    user_id TEXT,
    enabled_ms BIGINT,
    last_counter BIGINT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX mfa_devices_user ON mfa_devices (user_id);

CREATE TABLE oidc_providers (
    arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    url TEXT NOT NULL,
    client_ids TEXT NOT NULL,
    thumbprints TEXT NOT NULL,
    jwks TEXT,
    created_ms BIGINT NOT NULL
);
