-- The AI gateway: deployments (a model id routed to an upstream OpenAI-compatible
-- endpoint, with its provider key sealed under the master key and the deployment's
-- guardrail settings as JSON), sealed prompt/response logs, and the fine-tuning jobs
-- created through the gateway (so that a job id routes back to its deployment).
CREATE TABLE ai_deployments (
    account_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    base_url TEXT NOT NULL,
    upstream_model TEXT,
    key_sealed TEXT,
    log_invocations INTEGER NOT NULL DEFAULT 0,
    guardrail TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, model_id)
);
CREATE TABLE ai_invocation_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    sealed TEXT NOT NULL
);
CREATE INDEX ai_invocation_logs_model ON ai_invocation_logs (account_id, model_id, id);
CREATE TABLE ai_fine_tuning_jobs (
    account_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, job_id)
);
