-- /plot: a grid job (status 'plotting', never queued) and its cells, ordinary jobs
-- whose origin names the grid. One row per plot; written with the jobs in one commit.

CREATE TABLE plots (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    axes TEXT NOT NULL,                  -- JSON: [{"name": "x", "kind": "steps", ...}]
    cells TEXT NOT NULL,                 -- JSON: the cells' job ids, row by row
    created_at REAL NOT NULL
);
