use super::*;
use crate::plugin::PluginId;
use crate::vault::{EncryptionKey, Secret, Vault};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("host.sqlite3")).unwrap();
    (dir, registry)
}

fn echo() -> PluginDefinition {
    PluginDefinition::new(Launch::Process { command: "node".into(), args: vec!["echo.mjs".into()] })
}

fn id(text: &str) -> PluginId {
    PluginId::new(text).unwrap()
}

fn key(byte: u8) -> EncryptionKey {
    use base64::Engine as _;
    EncryptionKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]), "test").unwrap()
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs.iter().map(|(name, value)| (name.to_string(), Secret::new(*value))).collect()
}

#[test]
fn plugins_are_added_read_listed_changed_and_removed() {
    let (_dir, registry) = registry();
    registry.add(&id("echo"), &echo()).unwrap();
    registry.add(&id("alpha"), &echo()).unwrap();
    let error = registry.add(&id("echo"), &echo()).unwrap_err();
    assert_eq!(error.to_string(), "a plugin is already registered as `echo`");

    registry.set_admin_config("echo", json!({"maxResults": 3}).as_object().unwrap().clone()).unwrap();
    registry.record_disabled("echo", "5 faults within 1 h", &["timeout".into()]).unwrap();
    let record = registry.get("echo").unwrap();
    assert_eq!(record.definition.admin_config["maxResults"], json!(3));
    assert!(!record.enabled);
    assert_eq!(record.disabled_reason.as_deref(), Some("5 faults within 1 h"));
    assert_eq!(record.recent_faults, ["timeout"]);
    registry.set_enabled("echo", true).unwrap();
    let record = registry.get("echo").unwrap();
    assert!(record.enabled && record.disabled_reason.is_none() && record.recent_faults.is_empty());

    let ids: Vec<String> = registry.list().unwrap().into_iter().map(|record| record.id.to_string()).collect();
    assert_eq!(ids, ["alpha", "echo"]);
    registry.remove("echo").unwrap();
    assert_eq!(registry.get("echo").unwrap_err().to_string(), "no plugin is registered as `echo`");
    assert!(matches!(registry.remove("echo"), Err(RegistryError::NotRegistered(_))));
    assert!(matches!(registry.set_enabled("echo", false), Err(RegistryError::NotRegistered(_))));
}

#[test]
fn invalid_definitions_are_refused_and_nothing_is_stored() {
    let (_dir, registry) = registry();
    let mut timeout = echo();
    timeout.request_timeout_ms = 0;
    let mut relative = PluginDefinition::new(Launch::Wasm { file: "plugin.wasm".into() });
    let mut hosts = PluginDefinition::new(Launch::Wasm { file: "/plugins/p.wasm".into() });
    hosts.allowed_http_hosts = vec!["https://api.example.org".into()];
    let mut process_hosts = echo();
    process_hosts.allowed_http_hosts = vec!["api.example.org".into()];
    relative.memory_limit_bytes = Some(64 << 20);
    for (definition, fragment) in [
        (timeout, "between 1 ms and 1 hour"),
        (relative, "not absolute"),
        (hosts, "allowed HTTP host \"https://api.example.org\" is not valid"),
        (process_hosts, "apply to wasm plugins"),
    ] {
        let error = registry.add(&id("bad"), &definition).unwrap_err();
        assert!(error.to_string().contains(fragment), "{error}");
        assert!(matches!(registry.get("bad"), Err(RegistryError::NotRegistered(_))));
    }
}

#[test]
fn removing_a_plugin_removes_its_users_credentials_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sqlite3");
    let storage = crate::storage::SqliteStorage::open(&path).unwrap();
    let registry = Registry::open(&path).unwrap();
    let vault = Vault::new(key(1));
    registry.add(&id("echo"), &echo()).unwrap();
    registry.add(&id("echo-two"), &echo()).unwrap();
    registry.connect_user("echo", "alice", Map::new()).unwrap();
    registry.set_credentials(&vault, "echo", Some("alice"), &secrets(&[("token", "t")])).unwrap();
    use crate::storage::{StorageBackend, StorageScope};
    let now = chrono::Utc::now();
    for scope in
        [StorageScope::plugin("echo"), StorageScope::user_plugin("echo:alice"), StorageScope::plugin("echo-two")]
    {
        let entry = crate::storage::Entry { data: "1".into(), expires_at: None, updated_at: now };
        storage.put_within_quota(&scope, "k", &entry, 100, now).unwrap();
    }
    registry.remove("echo").unwrap();
    assert!(storage.get(&StorageScope::plugin("echo"), "k", now).unwrap().is_none());
    assert!(storage.get(&StorageScope::user_plugin("echo:alice"), "k", now).unwrap().is_none());
    assert!(storage.get(&StorageScope::plugin("echo-two"), "k", now).unwrap().is_some(), "another plugin's data stays");
    registry.add(&id("echo"), &echo()).unwrap();
    assert!(matches!(registry.user_connection("echo", "alice"), Err(RegistryError::NotConnected { .. })));
    assert!(registry.credential_names("echo", Some("alice")).unwrap().is_empty());
}

#[test]
fn credentials_round_trip_and_a_users_override_the_plugins() {
    let (_dir, registry) = registry();
    let vault = Vault::new(key(1));
    registry.add(&id("echo"), &echo()).unwrap();
    registry.set_credentials(&vault, "echo", None, &secrets(&[("api_key", "shared"), ("region", "eu")])).unwrap();
    let error = registry.set_credentials(&vault, "echo", Some("bob"), &secrets(&[("api_key", "x")])).unwrap_err();
    assert!(error.to_string().contains("user `bob` is not connected"), "{error}");
    registry.connect_user("echo", "bob", Map::new()).unwrap();
    registry.set_credentials(&vault, "echo", Some("bob"), &secrets(&[("api_key", "bobs")])).unwrap();
    let plugin_wide = registry.credentials(&vault, "echo", None).unwrap();
    assert_eq!(plugin_wide["api_key"].expose(), "shared");
    let bobs = registry.credentials(&vault, "echo", Some("bob")).unwrap();
    assert_eq!((bobs["api_key"].expose(), bobs["region"].expose()), ("bobs", "eu"));
    assert_eq!(registry.credential_names("echo", None).unwrap(), ["api_key", "region"]);
}

#[test]
fn a_ciphertext_copied_to_another_row_in_the_database_does_not_open() {
    let (_dir, registry) = registry();
    let vault = Vault::new(key(1));
    registry.add(&id("echo"), &echo()).unwrap();
    registry.connect_user("echo", "alice", Map::new()).unwrap();
    registry.connect_user("echo", "mallory", Map::new()).unwrap();
    registry.set_credentials(&vault, "echo", Some("alice"), &secrets(&[("token", "alices")])).unwrap();
    registry.set_credentials(&vault, "echo", Some("mallory"), &secrets(&[("token", "mallorys")])).unwrap();
    registry
        .lock()
        .execute(
            "UPDATE plugin_credentials SET (key_id, nonce, ciphertext) =
             (SELECT key_id, nonce, ciphertext FROM plugin_credentials WHERE user_id = 'alice')
             WHERE user_id = 'mallory'",
            [],
        )
        .unwrap();
    let error = registry.credentials(&vault, "echo", Some("mallory")).unwrap_err();
    assert!(error.to_string().contains("moved from another row"), "{error}");
    assert_eq!(registry.credentials(&vault, "echo", Some("alice")).unwrap()["token"].expose(), "alices");
}

#[test]
fn an_interrupted_rotation_leaves_each_value_under_exactly_one_key_and_resumes() {
    let (_dir, registry) = registry();
    let old = Vault::new(key(1));
    registry.add(&id("echo"), &echo()).unwrap();
    let values: Vec<(String, String)> =
        (0..5).map(|index| (format!("field{index}"), format!("value{index}"))).collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    registry.set_credentials(&old, "echo", None, &secrets(&pairs)).unwrap();

    let rotating = Vault::new(key(2)).with_older_key(key(1));
    let mut seen = 0;
    let report = registry
        .rotate_credentials(&rotating, |_| {
            seen += 1;
            if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(report, RotationReport { rotated: 2, remaining: 3, unreadable: 0, finished: false });
    // While it is under way, a writer holding the old key is refused and writes nothing.
    let refused = registry.set_credentials(&old, "echo", None, &secrets(&[("late", "x")])).unwrap_err();
    assert!(matches!(refused, RegistryError::KeyRotating { .. }), "{refused}");
    assert!(!registry.credential_names("echo", None).unwrap().contains(&"late".to_owned()));
    // Each value opens under exactly one of the two keys, and none is lost.
    let new_only = Vault::new(key(2));
    for (field, value) in &values {
        let sealed = registry.sealed_credentials("echo", "").unwrap().remove(field).unwrap();
        let row = crate::vault::RowBinding { plugin: "echo", user: "", field };
        let opened: Vec<String> = [&old, &new_only]
            .iter()
            .filter_map(|vault| vault.open(row, &sealed).ok())
            .map(|s| s.expose().into())
            .collect();
        assert_eq!(opened, std::slice::from_ref(value), "{field}");
    }
    let report = registry.rotate_credentials(&rotating, |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(report, RotationReport { rotated: 3, remaining: 0, unreadable: 0, finished: true });
    let all = registry.credentials(&new_only, "echo", None).unwrap();
    let opened: Vec<(String, String)> = all.iter().map(|(name, value)| (name.clone(), value.expose().into())).collect();
    assert_eq!(opened, values);
    let again = registry.rotate_credentials(&rotating, |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(again, RotationReport { finished: true, ..RotationReport::default() }, "nothing left to rotate");
    // After it, the old key writes nothing; the new key does.
    let refused = registry.set_credentials(&old, "echo", None, &secrets(&[("late", "x")])).unwrap_err();
    assert!(matches!(refused, RegistryError::StaleKey { .. }), "{refused}");
    registry.set_credentials(&new_only, "echo", None, &secrets(&[("late", "x")])).unwrap();
}

#[test]
fn what_an_instance_starts_from_bumps_the_revision_and_what_a_host_records_does_not() {
    let (_dir, registry) = registry();
    registry.add(&id("echo"), &echo()).unwrap();
    let vault = Vault::new(key(1));
    let plugin = || registry.get("echo").unwrap().revision.changes;
    let user = || registry.user_connection("echo", "alice").unwrap().revision;
    assert_eq!(plugin(), 0);
    let plugin_changes: [(&str, &dyn Fn()); 4] = [
        ("admin config", &|| registry.set_admin_config("echo", Map::new()).unwrap()),
        ("disable", &|| registry.set_enabled("echo", false).unwrap()),
        ("enable", &|| registry.set_enabled("echo", true).unwrap()),
        ("credentials", &|| registry.set_credentials(&vault, "echo", None, &secrets(&[("k", "v")])).unwrap()),
    ];
    for (expected, (what, change)) in (1..).zip(plugin_changes) {
        change();
        assert_eq!(plugin(), expected, "{what}");
    }
    // Enabling an enabled plugin changes nothing an instance starts from.
    registry.set_enabled("echo", true).unwrap();
    assert_eq!(plugin(), 4);

    // A user's connection has its own revision; the plugin's stays.
    registry.connect_user("echo", "alice", Map::new()).unwrap();
    assert_eq!(user(), 0);
    registry.connect_user("echo", "alice", json!({"shelf": 1}).as_object().unwrap().clone()).unwrap();
    assert_eq!(user(), 1);
    registry.set_credentials(&vault, "echo", Some("alice"), &secrets(&[("token", "t")])).unwrap();
    assert_eq!((plugin(), user()), (4, 2));

    // What a host records itself, and a rotation, are not admin changes.
    registry.record_manifest("echo", &json!({"name": "echo"})).unwrap();
    registry.record_metrics("echo", &json!({})).unwrap();
    registry.record_disabled("echo", "5 faults", &[]).unwrap();
    let rotated =
        registry.rotate_credentials(&Vault::new(key(2)).with_older_key(key(1)), |_| ControlFlow::Continue(()));
    assert_eq!(rotated.unwrap().rotated, 2);
    assert_eq!((plugin(), user()), (4, 2));
    let revisions = registry.revisions().unwrap();
    assert_eq!(revisions.plugins["echo"], registry.get("echo").unwrap().revision);
    assert_eq!(revisions.users[&("echo".to_owned(), "alice".to_owned())], 2);

    // Removed and added again under the same id: another registration.
    let first = registry.get("echo").unwrap().revision;
    registry.remove("echo").unwrap();
    registry.add(&id("echo"), &echo()).unwrap();
    let again = registry.get("echo").unwrap().revision;
    assert_eq!(again.changes, 0);
    assert_ne!(again.added_at, first.added_at);
}

#[test]
fn a_database_made_before_revisions_gains_the_column_and_keeps_its_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sqlite3");
    let old_schema = include_str!("../database/migrations/01_plugins_storage_vault.sql")
        .replace("    revision        INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("    revision  INTEGER NOT NULL DEFAULT 0,\n", "");
    assert!(!old_schema.contains("revision "), "{old_schema}");
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch(&old_schema).unwrap();
    connection
        .execute(
            "INSERT INTO plugins (id, definition, created_at, updated_at) VALUES ('echo', ?, 0, 0)",
            [serde_json::to_string(&echo()).unwrap()],
        )
        .unwrap();
    connection.execute("INSERT INTO plugin_users (plugin_id, user_id) VALUES ('echo', 'alice')", []).unwrap();
    drop(connection);
    let registry = Registry::open(&path).unwrap();
    assert_eq!(registry.get("echo").unwrap().definition, echo());
    assert_eq!(registry.user_connection("echo", "alice").unwrap().revision, 0);
    let changes = |registry: &Registry| registry.get("echo").unwrap().revision.changes;
    assert_eq!(changes(&registry), 0);
    registry.set_enabled("echo", false).unwrap();
    assert_eq!(changes(&registry), 1);
    // Opening it again finds the column there.
    drop(registry);
    assert_eq!(changes(&Registry::open(&path).unwrap()), 1);
}

#[test]
fn an_instance_is_behind_only_an_older_revision_than_the_registrys() {
    let at = |added_at, changes, user| InstanceRevision { plugin: Revision { added_at, changes }, user };
    let now = at(10, 3, Some(2));
    assert!(!at(10, 3, Some(2)).is_behind(Some(&now)));
    assert!(at(10, 2, Some(9)).is_behind(Some(&now)), "an older plugin revision");
    assert!(at(10, 3, Some(1)).is_behind(Some(&now)), "an older user revision");
    assert!(at(9, 7, Some(2)).is_behind(Some(&now)), "an earlier registration");
    assert!(!at(10, 4, Some(0)).is_behind(Some(&now)), "started after the snapshot was read");
    assert!(at(10, 3, Some(2)).is_behind(None), "no longer registered");
}

#[test]
fn metadata_settings_are_checked_whole_kept_and_removed_with_the_plugin() {
    use crate::metadata::settings::MetadataSettings;
    let (_dir, registry) = registry();
    registry.add(&id("echo"), &echo()).unwrap();
    assert_eq!(registry.metadata_settings("echo").unwrap(), MetadataSettings::default());
    let good: MetadataSettings = serde_json::from_value(json!({
        "permissions": ["metadata:write:title", "metadata:write:external_ids"], "searchTemplate": "{{metadata.title}}",
        "confidenceThreshold": 0.6
    }))
    .unwrap();
    registry.set_metadata_settings("echo", &good).unwrap();
    assert_eq!(registry.metadata_settings("echo").unwrap(), good);
    let bad = MetadataSettings { search_template: Some("{{#if}}".into()), ..good.clone() };
    let error = registry.set_metadata_settings("echo", &bad).unwrap_err();
    assert!(error.to_string().contains("does not parse"), "{error}");
    assert_eq!(registry.metadata_settings("echo").unwrap(), good, "a refused change changed the settings");
    assert!(matches!(registry.set_metadata_settings("ghost", &good), Err(RegistryError::NotRegistered(_))));
    registry.remove("echo").unwrap();
    registry.add(&id("echo"), &echo()).unwrap();
    assert_eq!(registry.metadata_settings("echo").unwrap(), MetadataSettings::default(), "kept after a removal");
}

#[test]
fn a_plugin_added_for_review_is_disabled_and_a_new_definition_is_checked_before_it_replaces_the_old() {
    let (_dir, registry) = registry();
    registry.add_disabled(&id("echo"), &echo()).unwrap();
    let record = registry.get("echo").unwrap();
    assert!(!record.enabled && record.disabled_reason.is_none(), "disabled for a review: {record:?}");
    let mut changed = echo();
    changed.request_timeout_ms = 5_000;
    registry.set_definition("echo", &changed).unwrap();
    let after = registry.get("echo").unwrap();
    assert_eq!(after.definition, changed);
    assert!(after.revision != record.revision, "its instances restart on the new definition");
    let mut invalid = echo();
    invalid.request_timeout_ms = 0;
    assert!(matches!(registry.set_definition("echo", &invalid), Err(RegistryError::Invalid { .. })));
    assert_eq!(registry.get("echo").unwrap().definition, changed, "a refused definition changed the stored one");
    assert!(matches!(registry.set_definition("ghost", &changed), Err(RegistryError::NotRegistered(_))));
}
