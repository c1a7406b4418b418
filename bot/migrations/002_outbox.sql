-- Delivery becomes a state of its own: the final message a job owes its owner waits
-- here until the chat has it, so a restart sends what a kill interrupted.

CREATE TABLE outbox (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- "result" | "notice"
    text TEXT NOT NULL DEFAULT '',       -- the notice; empty for a result
    state TEXT NOT NULL,                 -- "pending" | "sending" | "uncertain"
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,  -- unix time before which no send is tried
    created_at REAL NOT NULL
);

-- Where a job was asked for, for guild admins' rights ("discord:guild:123" or NULL).
ALTER TABLE jobs ADD COLUMN place TEXT;

-- Finished jobs are pruned by age (retention) and read by age (delivery on start).
CREATE INDEX jobs_finished ON jobs (finished_at);
