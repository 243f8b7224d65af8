-- Just-in-time access (issue 15). An eligibility says who may ask for what: a subject
-- (a principal or group by its stored unique id, or a federated group by name) may request
-- a role or a managed policy of the account, for at most max_duration_secs, approved (or
-- not) by the approvers (JSON array of {kind, id, arn}: stored unique ids, so a principal
-- deleted and made again under the same name is not an approver).
-- A request moves requested -> approved/denied -> active -> expired/revoked; every move is
-- one UPDATE conditional on the state it leaves, so a replayed or racing approval changes
-- nothing the second time. 'expired' is never written for an active grant: the window's
-- end (active_until_ms) is compared with the clock at every decision.
CREATE TABLE access_eligibility (
    eligibility_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_arn TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_arn TEXT NOT NULL,
    max_duration_secs BIGINT NOT NULL,
    approval_required BIGINT NOT NULL,
    approvers TEXT NOT NULL,
    mfa_required BIGINT NOT NULL,
    ticket_required BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX access_eligibility_account ON access_eligibility (account_id);

CREATE TABLE access_requests (
    request_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    eligibility_id TEXT NOT NULL REFERENCES access_eligibility (eligibility_id),
    requester_id TEXT NOT NULL,
    requester_arn TEXT NOT NULL,
    requester_source_identity TEXT,
    target_kind TEXT NOT NULL,
    target_arn TEXT NOT NULL,
    duration_secs BIGINT NOT NULL,
    justification TEXT NOT NULL,
    ticket TEXT,
    start_ms BIGINT,
    state TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    pending_until_ms BIGINT NOT NULL,
    decided_by_id TEXT,
    decided_by_arn TEXT,
    decided_ms BIGINT,
    decision_comment TEXT,
    active_from_ms BIGINT,
    active_until_ms BIGINT,
    ended_by_arn TEXT,
    ended_ms BIGINT
);
CREATE INDEX access_requests_requester ON access_requests (requester_id, state);
CREATE INDEX access_requests_account ON access_requests (account_id, requested_ms);
