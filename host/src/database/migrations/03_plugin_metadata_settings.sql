-- What an admin grants a plugin (orchestration.md §1) and how it searches and matches
-- (§2 to §4). One row per plugin that has any; no row means the defaults: no permission,
-- every library, the title as the query, threshold 0.8, external ids reused.
CREATE TABLE IF NOT EXISTS plugin_metadata_settings (
    plugin_id             TEXT PRIMARY KEY REFERENCES plugins (id) ON DELETE CASCADE,
    permissions           TEXT NOT NULL DEFAULT '[]',
    library_ids           TEXT NOT NULL DEFAULT '[]',
    search_template       TEXT,
    title_rules           TEXT NOT NULL DEFAULT '[]',
    auto_match_conditions TEXT,
    confidence_threshold  REAL,
    reuse_external_id     INTEGER,
    accept_unscored       INTEGER,
    targets               TEXT
);
