-- Library auto-match runs, so that a run interrupted and started again redoes nothing:
-- each item's outcome is recorded as it ends, and an unfinished run is resumed.
CREATE TABLE IF NOT EXISTS auto_match_runs (
    id          INTEGER PRIMARY KEY,
    plugin_id   TEXT    NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    library_id  TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS auto_match_runs_open ON auto_match_runs (plugin_id, library_id) WHERE finished_at IS NULL;
CREATE TABLE IF NOT EXISTS auto_match_items (
    run_id    INTEGER NOT NULL REFERENCES auto_match_runs (id) ON DELETE CASCADE,
    target    TEXT    NOT NULL,
    target_id TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    PRIMARY KEY (run_id, target, target_id)
) WITHOUT ROWID;
