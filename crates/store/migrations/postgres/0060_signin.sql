-- Sign-in for people (issue 13): the company's OpenID Connect identity providers Gatehouse
-- federates to (identity sources), and assignments that say which IdP group or user may
-- have a session of which role. A source's client secret is sealed (client_secret_sealed,
-- like provider keys); scopes and claim names are JSON. An assignment keeps the role's
-- stored unique id beside its ARN, so a role deleted and made again under the same name
-- does not inherit its assignments. A source with assignments cannot be removed.
CREATE TABLE signin_sources (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed TEXT,
    scopes TEXT NOT NULL,
    claims TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE signin_assignments (
    assignment_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    role_id TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    max_session_secs BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    FOREIGN KEY (account_id, source) REFERENCES signin_sources (account_id, name),
    UNIQUE (account_id, source, subject_kind, subject, role_id)
);
