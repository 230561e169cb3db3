//! The same contract, checked on every backend.

use chrono::{Duration, Utc};
use std::sync::Arc;

use super::*;

fn backends() -> Vec<(&'static str, Arc<dyn StorageBackend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStorage::open(&dir.path().join("storage.sqlite3")).unwrap();
    vec![("memory", Arc::new(MemoryStorage::new()), None), ("sqlite", Arc::new(sqlite), Some(dir))]
}

fn entry(data: &str, expires_at: Option<Timestamp>) -> Entry {
    Entry { data: data.into(), expires_at, updated_at: Utc::now() }
}

#[test]
fn put_get_list_delete_clear() {
    let scope = StorageScope::plugin("a");
    let other = StorageScope::plugin("b");
    for (name, storage, _dir) in backends() {
        let now = Utc::now();
        assert_eq!(storage.put_within_quota(&scope, "k2", &entry("2", None), 10, now).unwrap(), PutOutcome::Written);
        storage.put_within_quota(&scope, "k1", &entry("{\"a\":1}", None), 10, now).unwrap();
        storage.put_within_quota(&other, "k1", &entry("\"other\"", None), 10, now).unwrap();
        assert_eq!(storage.get(&scope, "k1", now).unwrap().unwrap().data, "{\"a\":1}", "{name}");
        let keys: Vec<_> = storage.list(&scope, now).unwrap().into_iter().map(|key| key.key).collect();
        assert_eq!(keys, ["k1", "k2"], "{name}: sorted by key");
        assert!(storage.delete(&scope, "k1", now).unwrap());
        assert!(!storage.delete(&scope, "k1", now).unwrap(), "{name}");
        assert_eq!(storage.clear(&scope, now).unwrap(), 1, "{name}");
        assert_eq!(storage.get(&other, "k1", now).unwrap().unwrap().data, "\"other\"", "{name}: scopes are isolated");
    }
}

#[test]
fn expired_keys_are_invisible_do_not_count_and_are_swept() {
    let scope = StorageScope::user_plugin("u1");
    for (name, storage, _dir) in backends() {
        let now = Utc::now();
        let past = Some(now - Duration::seconds(1));
        storage.put_within_quota(&scope, "old", &entry("1", past), 2, now).unwrap();
        storage.put_within_quota(&scope, "live", &entry("2", Some(now + Duration::hours(1))), 2, now).unwrap();
        assert!(storage.get(&scope, "old", now).unwrap().is_none(), "{name}");
        assert_eq!(storage.list(&scope, now).unwrap().len(), 1, "{name}");
        let outcome = storage.put_within_quota(&scope, "new", &entry("3", None), 2, now).unwrap();
        assert_eq!(outcome, PutOutcome::Written, "{name}: the expired key does not count");
        let outcome = storage.put_within_quota(&scope, "more", &entry("4", None), 2, now).unwrap();
        assert_eq!(outcome, PutOutcome::QuotaFull { live_keys: 2 }, "{name}");
        assert_eq!(
            storage.put_within_quota(&scope, "new", &entry("5", None), 2, now).unwrap(),
            PutOutcome::Written,
            "{name}: overwrite at the limit"
        );
        assert_eq!(storage.sweep_expired(now).unwrap(), 1, "{name}");
        assert_eq!(storage.sweep_expired(now).unwrap(), 0, "{name}");
        let later = now + Duration::hours(2);
        assert_eq!(storage.list(&scope, later).unwrap().len(), 1, "{name}: `live` has expired by then");
    }
}

#[test]
fn a_full_quota_refuses_without_writing() {
    let scope = StorageScope::plugin("full");
    for (name, storage, _dir) in backends() {
        let now = Utc::now();
        storage.put_within_quota(&scope, "a", &entry("1", None), 1, now).unwrap();
        assert_eq!(
            storage.put_within_quota(&scope, "b", &entry("2", None), 1, now).unwrap(),
            PutOutcome::QuotaFull { live_keys: 1 }
        );
        assert!(storage.get(&scope, "b", now).unwrap().is_none(), "{name}");
        assert_eq!(storage.get(&scope, "a", now).unwrap().unwrap().data, "1", "{name}: nothing stored is lost");
    }
}

#[test]
fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.sqlite3");
    let scope = StorageScope::plugin("persist");
    let now = Utc::now();
    SqliteStorage::open(&path)
        .unwrap()
        .put_within_quota(&scope, "k", &entry("[1,2]", Some(now + Duration::days(1))), 100, now)
        .unwrap();
    let reopened = SqliteStorage::open(&path).unwrap();
    let stored = reopened.get(&scope, "k", now).unwrap().unwrap();
    assert_eq!(stored.data, "[1,2]");
    assert_eq!(stored.expires_at.unwrap().timestamp_micros(), (now + Duration::days(1)).timestamp_micros());
}

#[test]
fn sqlite_open_failure_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let error = SqliteStorage::open(&dir.path().join("missing").join("x.sqlite3")).err().unwrap();
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn two_connections_to_one_file_never_exceed_the_quota_together() {
    // Two hosts (two connections) on the same database: only SQLite's write lock keeps
    // their check-and-write atomic, so this fails without `BEGIN IMMEDIATE`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite3");
    let scope = StorageScope::plugin("shared");
    let writers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|side| {
            let storage = SqliteStorage::open(&path).unwrap();
            let scope = scope.clone();
            std::thread::spawn(move || {
                let mut written = 0;
                for index in 0..50 {
                    let key = format!("{side}-{index}");
                    let outcome = storage.put_within_quota(&scope, &key, &entry("1", None), 60, Utc::now()).unwrap();
                    written += usize::from(outcome == PutOutcome::Written);
                }
                written
            })
        })
        .collect();
    let written: usize = writers.into_iter().map(|writer| writer.join().unwrap()).sum();
    assert_eq!(written, 60);
    assert_eq!(SqliteStorage::open(&path).unwrap().list(&scope, Utc::now()).unwrap().len(), 60);
}
