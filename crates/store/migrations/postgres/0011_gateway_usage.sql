-- Gateway budget counters shared between nodes. Each node keeps its counters in memory
-- and, every sync interval, writes its own totals for the current windows here (one row
-- per node, budget scope and window) and reads the other nodes' sums, so a budget is
-- global without a database round trip per request. `period` is the window length in
-- seconds (60 or 86400) and `window_start` the epoch second it began; old windows are
-- pruned by the sync itself. Bookkeeping: writes here do not bump the generation.
CREATE TABLE gateway_usage (
    node_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    period BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (node_id, scope, period, window_start)
);
CREATE INDEX gateway_usage_window ON gateway_usage (period, window_start);
