-- What an admin grants a plugin (orchestration.md §1) and how it searches and matches
-- (§2 to §4), as one JSON document per plugin that has any (see
-- host/src/metadata/settings.rs); no row means the defaults: no permission, every
-- library, the cleaned title as the query, threshold 0.8, external ids reused.
CREATE TABLE IF NOT EXISTS plugin_metadata_settings (
    plugin_id TEXT PRIMARY KEY REFERENCES plugins (id) ON DELETE CASCADE,
    settings  TEXT NOT NULL
);
