-- Gatehouse store, initial schema (PostgreSQL). Timestamps are Unix milliseconds (UTC).
-- Names are unique per account case-insensitively through the *_lower columns.

CREATE TABLE generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 0);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL UNIQUE,
    is_default BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_one_default ON accounts (is_default) WHERE is_default = 1;

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    path TEXT NOT NULL,
    permissions_boundary TEXT,
    created_ms BIGINT NOT NULL,
    UNIQUE (account_id, name_lower)
);

CREATE TABLE iam_groups (
    group_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    path TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (account_id, name_lower)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES iam_groups (group_id),
    user_id TEXT NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE roles (
    role_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    path TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration BIGINT NOT NULL,
    permissions_boundary TEXT,
    created_ms BIGINT NOT NULL,
    UNIQUE (account_id, name_lower)
);

CREATE TABLE policies (
    policy_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    path TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    description TEXT,
    default_version BIGINT NOT NULL,
    next_version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    UNIQUE (account_id, name_lower)
);

CREATE TABLE policy_versions (
    policy_id TEXT NOT NULL REFERENCES policies (policy_id),
    version_num BIGINT NOT NULL,
    document TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version_num)
);

-- principal_kind is 'user', 'group' or 'role'; integrity with the principal tables is
-- kept by the store (a principal with inline policies cannot be deleted).
CREATE TABLE inline_policies (
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (principal_kind, principal_id, name_lower)
);

CREATE TABLE attachments (
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    policy_id TEXT NOT NULL REFERENCES policies (policy_id),
    PRIMARY KEY (principal_kind, principal_id, policy_id)
);
CREATE INDEX attachments_policy ON attachments (policy_id);

CREATE TABLE access_keys (
    access_key_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    secret_sealed TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT,
    last_used_service TEXT,
    last_used_region TEXT
);
CREATE INDEX access_keys_user ON access_keys (user_id);

-- resource_kind is 'user', 'role' or 'policy'.
CREATE TABLE tags (
    resource_kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    key_lower TEXT COLLATE "C" NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (resource_kind, resource_id, key_lower)
);

CREATE TABLE guardrails (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT COLLATE "C" NOT NULL,
    document TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name_lower)
);

-- Generic key/value; sealed = 1 means value is a sealed secret (re-sealed on rotation).
CREATE TABLE meta (
    meta_key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL,
    sealed BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
