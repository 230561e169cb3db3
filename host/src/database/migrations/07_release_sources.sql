-- Release sources (issue 14, upstream-host.md §10): the sources each release-source plugin
-- registered, owned by its registered id (never by the name in its manifest), with their
-- poll state; the ledger of releases they found; the host's release settings. Times are
-- microseconds since the epoch. The tracking columns an admin sets per series (aliases, a
-- confidence threshold) are added to series_tracking by this step's hook.
CREATE TABLE IF NOT EXISTS release_sources (
    id             TEXT    PRIMARY KEY,
    plugin_id      TEXT    NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    source_key     TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    config         TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1,
    cron_schedule  TEXT,
    etag           TEXT,
    last_polled_at INTEGER,
    last_error     TEXT,
    last_error_at  INTEGER,
    last_summary   TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (plugin_id, source_key)
);
CREATE TABLE IF NOT EXISTS release_ledger (
    id                  TEXT    PRIMARY KEY,
    plugin_id           TEXT    NOT NULL,
    source_id           TEXT    NOT NULL REFERENCES release_sources (id) ON DELETE CASCADE,
    series_id           TEXT    NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    external_release_id TEXT    NOT NULL,
    info_hash           TEXT,
    chapter             REAL,
    volume              INTEGER,
    chapters            TEXT,
    volumes             TEXT,
    language            TEXT    NOT NULL,
    format_hints        TEXT,
    group_or_uploader   TEXT,
    payload_url         TEXT    NOT NULL,
    media_url           TEXT,
    media_url_kind      TEXT,
    confidence          REAL    NOT NULL,
    state               TEXT    NOT NULL DEFAULT 'announced',
    metadata            TEXT,
    observed_at         INTEGER NOT NULL,
    released_at         INTEGER,
    created_at          INTEGER NOT NULL,
    UNIQUE (source_id, external_release_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS release_ledger_by_hash ON release_ledger (plugin_id, info_hash)
    WHERE info_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS release_ledger_by_series ON release_ledger (series_id, observed_at DESC);
CREATE INDEX IF NOT EXISTS release_ledger_by_state ON release_ledger (state, observed_at DESC);
CREATE TABLE IF NOT EXISTS release_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
