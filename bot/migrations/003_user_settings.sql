-- Per-user defaults from /settings. One row per user who changed anything; no row is
-- every default. Not tied to `users`: someone may open /settings before any job.

CREATE TABLE user_settings (
    user_key TEXT PRIMARY KEY,           -- "platform:user_id"
    aspect TEXT,                         -- "3:2"; NULL: the model's native shape
    steps INTEGER,                       -- NULL: the model's default
    sampler TEXT,                        -- NULL: the model's default
    negative TEXT NOT NULL DEFAULT '',   -- added to every job's negative prompt
    remix INTEGER NOT NULL DEFAULT 0,
    dm_results INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
