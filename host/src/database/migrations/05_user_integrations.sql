-- Users' integrations (orchestration.md §7-8): when a reader started a book; each
-- connection's sync (who holds it now, when it last succeeded, its last result); each
-- user's cached recommendations per plugin, and what they dismissed.
-- (`reading_progress.started_at` is added by this migration's hook, when missing: an
-- ALTER TABLE run twice by two processes opening the file at once would fail.)
CREATE TABLE IF NOT EXISTS sync_state (
    plugin_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    holder          TEXT,
    held_until      INTEGER,
    last_sync_at    INTEGER,
    last_success_at INTEGER,
    last_result     TEXT,
    PRIMARY KEY (plugin_id, user_id),
    FOREIGN KEY (plugin_id, user_id) REFERENCES plugin_users (plugin_id, user_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recommendation_cache (
    plugin_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    generated_at    INTEGER NOT NULL,
    recommendations TEXT    NOT NULL,
    PRIMARY KEY (plugin_id, user_id),
    FOREIGN KEY (plugin_id, user_id) REFERENCES plugin_users (plugin_id, user_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recommendation_dismissals (
    user_id      TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    reason       TEXT,
    dismissed_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, external_id)
) WITHOUT ROWID;
