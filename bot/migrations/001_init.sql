-- Atelier's first schema. Times are Unix seconds (REAL); JSON columns hold the
-- dataclasses of bot/jobs/models.py as their to_json / asdict forms.

CREATE TABLE users (
    key TEXT PRIMARY KEY,              -- "platform:user_id"
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    user_key TEXT NOT NULL REFERENCES users (key),
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT '{}',
    request TEXT NOT NULL,
    -- Pictures asked for; the daily quota sums it without parsing `request`.
    image_count INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_user_created ON jobs (user_key, created_at);

CREATE TABLE job_images (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    seed INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    flagged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE bans (
    user_key TEXT PRIMARY KEY,
    banned_by TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    banned_at REAL NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
