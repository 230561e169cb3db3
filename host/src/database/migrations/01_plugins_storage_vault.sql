-- The schema as it stood before migrations: plugins, users' connections, sealed
-- credentials, the vault's key state and plugin storage. `IF NOT EXISTS` throughout, since
-- databases made before this file already hold these tables (their columns added later,
-- `revision` and `install`, are brought in by this migration's hook).
CREATE TABLE IF NOT EXISTS plugins (
    id              TEXT    PRIMARY KEY,
    definition      TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    recent_faults   TEXT    NOT NULL DEFAULT '[]',
    manifest        TEXT,
    metrics         TEXT    NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 0,
    install         TEXT
);
CREATE TABLE IF NOT EXISTS plugin_users (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    config    TEXT NOT NULL DEFAULT '{}',
    revision  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plugin_credentials (
    plugin_id  TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (plugin_id, user_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vault_state (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    current_key_id TEXT,
    rotating_to    TEXT
);
CREATE TABLE IF NOT EXISTS plugin_storage (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    expires_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plugin_storage_expiry ON plugin_storage (expires_at) WHERE expires_at IS NOT NULL;
