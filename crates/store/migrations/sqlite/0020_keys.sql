-- Envelope encryption: every data key that seals secrets, stored only wrapped by a
-- key-encryption key a key manager holds (`wrapped_by` names it). Exactly one is active.
CREATE TABLE data_keys (
    key_id TEXT PRIMARY KEY,
    wrapped TEXT NOT NULL,
    wrapped_by TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'retiring')),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (state) WHERE state = 'active';
-- Signed digests of the audit chain's head, a chain of their own: each names the
-- previous digest's hash, and is signed by a key the key manager holds.
CREATE TABLE audit_digests (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    prev_digest TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    signature TEXT NOT NULL,
    digest TEXT NOT NULL
);
