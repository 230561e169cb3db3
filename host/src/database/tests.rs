use rusqlite::{Connection, params};

use super::{DatabaseError, MIGRATIONS, SCHEMA_VERSION, open};

/// The schema of the last release before migrations (commit b877a79): the registry's,
/// the vault's and storage's tables, each created by its own module, no `user_version`.
const SCHEMA_BEFORE_MIGRATIONS: &str = "
CREATE TABLE plugins (
    id TEXT PRIMARY KEY, definition TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT, recent_faults TEXT NOT NULL DEFAULT '[]', manifest TEXT,
    metrics TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0, install TEXT
);
CREATE TABLE plugin_users (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE, user_id TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}', revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, user_id)
) WITHOUT ROWID;
CREATE TABLE plugin_credentials (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE, user_id TEXT NOT NULL,
    name TEXT NOT NULL, key_id TEXT NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
    PRIMARY KEY (plugin_id, user_id, name)
) WITHOUT ROWID;
CREATE TABLE vault_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1), current_key_id TEXT, rotating_to TEXT
);
CREATE TABLE plugin_storage (
    scope TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER,
    updated_at INTEGER NOT NULL, PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX plugin_storage_expiry ON plugin_storage (expires_at) WHERE expires_at IS NOT NULL;
";

/// Older still: before revisions and npm installs.
const SCHEMA_BEFORE_REVISIONS: &str = "
CREATE TABLE plugins (
    id TEXT PRIMARY KEY, definition TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT, recent_faults TEXT NOT NULL DEFAULT '[]', manifest TEXT,
    metrics TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE plugin_users (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE, user_id TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (plugin_id, user_id)
) WITHOUT ROWID;
";

fn old_file(schema: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sqlite3");
    let connection = Connection::open(&path).unwrap();
    connection.execute_batch(schema).unwrap();
    connection
        .execute(
            "INSERT INTO plugins (id, definition, created_at, updated_at) VALUES ('echo', '{\"wasm\":\"e.wasm\"}', 1, 2)",
            [],
        )
        .unwrap();
    connection
        .execute("INSERT INTO plugin_users (plugin_id, user_id, config) VALUES ('echo', 'ann', '{\"a\":1}')", [])
        .unwrap();
    (dir, path)
}

fn tables(connection: &Connection) -> Vec<String> {
    let mut statement =
        connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn the_migrations_are_valid() {
    MIGRATIONS.validate().unwrap();
}

#[test]
fn the_schema_before_migrations_is_upgraded_and_keeps_its_rows() {
    let (_dir, path) = old_file(SCHEMA_BEFORE_MIGRATIONS);
    Connection::open(&path)
        .unwrap()
        .execute("INSERT INTO plugin_storage (scope, key, data, updated_at) VALUES ('p:echo', 'k', '\"v\"', 5)", [])
        .unwrap();
    let connection = open(&path).unwrap();
    let version: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let definition: String =
        connection.query_row("SELECT definition FROM plugins WHERE id = 'echo'", [], |row| row.get(0)).unwrap();
    assert_eq!(definition, "{\"wasm\":\"e.wasm\"}");
    let config: String = connection.query_row("SELECT config FROM plugin_users", [], |row| row.get(0)).unwrap();
    assert_eq!(config, "{\"a\":1}");
    let data: String = connection.query_row("SELECT data FROM plugin_storage", [], |row| row.get(0)).unwrap();
    assert_eq!(data, "\"v\"");
    let names = tables(&connection);
    for table in ["libraries", "series", "books", "series_external_ids", "series_tracking", "plugin_metadata_settings"]
    {
        assert!(names.iter().any(|name| name == table), "{table} missing from {names:?}");
    }
    // The new tables take rows and keep their foreign keys.
    connection.execute("INSERT INTO libraries (id, name) VALUES ('l', 'Manga')", []).unwrap();
    let orphan = connection.execute("INSERT INTO series (id, library_id, name) VALUES ('s', 'nowhere', 'S')", []);
    assert!(orphan.is_err(), "a series in no library was accepted");
    drop(connection);
    // Opened again: nothing to do, nothing lost.
    let again = open(&path).unwrap();
    let libraries: i64 = again.query_row("SELECT COUNT(*) FROM libraries", [], |row| row.get(0)).unwrap();
    assert_eq!(libraries, 1);
}

#[test]
fn a_file_from_before_revisions_gets_the_later_columns() {
    let (_dir, path) = old_file(SCHEMA_BEFORE_REVISIONS);
    let connection = open(&path).unwrap();
    let (revision, install): (i64, Option<String>) = connection
        .query_row("SELECT revision, install FROM plugins WHERE id = 'echo'", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    assert_eq!((revision, install), (0, None));
    let user_revision: i64 = connection.query_row("SELECT revision FROM plugin_users", [], |row| row.get(0)).unwrap();
    assert_eq!(user_revision, 0);
}

#[test]
fn a_file_from_a_newer_host_is_refused_untouched() {
    let (_dir, path) = old_file(SCHEMA_BEFORE_MIGRATIONS);
    let newer = SCHEMA_VERSION + 1;
    Connection::open(&path).unwrap().pragma_update(None, "user_version", newer).unwrap();
    let before = std::fs::read(&path).unwrap();
    let Err(error) = open(&path) else { panic!("a newer schema was opened") };
    assert!(matches!(error, DatabaseError::TooNew { found, .. } if found == newer), "{error}");
    assert!(error.to_string().contains("newer version of the host"), "{error}");
    let connection = Connection::open(&path).unwrap();
    let names = tables(&connection);
    assert!(!names.iter().any(|name| name == "libraries"), "migrated anyway: {names:?}");
    drop(connection);
    assert_eq!(std::fs::read(&path).unwrap().len(), before.len());
}

#[test]
fn processes_opening_an_old_file_at_once_all_succeed() {
    let (_dir, path) = old_file(SCHEMA_BEFORE_REVISIONS);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || open(&path).map(drop))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    let connection = open(&path).unwrap();
    let plugins: i64 = connection.query_row("SELECT COUNT(*) FROM plugins", params![], |row| row.get(0)).unwrap();
    assert_eq!(plugins, 1);
}
