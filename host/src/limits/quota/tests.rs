use serde_json::json;

use super::*;
use crate::storage::{MemoryStorage, SqliteStorage};

fn memory() -> ScopedStorage {
    StorageQuota::new(Arc::new(MemoryStorage::new()), StorageLimits::default()).scoped(StorageScope::plugin("q"))
}

#[tokio::test]
async fn the_101st_key_is_refused_with_the_limit_and_nothing_is_lost() {
    let storage = memory();
    for index in 0..100 {
        storage.set(format!("k{index:03}"), &json!(index), None).await.unwrap();
    }
    let error = storage.set("k100".into(), &json!(100), None).await.unwrap_err();
    let rpc = error.to_rpc();
    assert_eq!(rpc.code, -32602);
    assert_eq!(rpc.message, "Storage key limit exceeded (max 100 keys)");
    assert_eq!(rpc.data, Some(json!({"limit": 100, "actual": 101})));
    assert_eq!(storage.list().await.unwrap().keys.len(), 100);
    storage.set("k050".into(), &json!("overwritten at the limit"), None).await.unwrap();
    assert_eq!(storage.get("k050".into()).await.unwrap().data, json!("overwritten at the limit"));
    assert_eq!(storage.get("k000".into()).await.unwrap().data, json!(0));
}

#[tokio::test]
async fn values_are_measured_as_compact_json_and_one_mebibyte_fits_exactly() {
    let storage = memory();
    let exactly = "x".repeat((1 << 20) - 2);
    storage.set("exact".into(), &json!(exactly), None).await.unwrap();
    let error = storage.set("big".into(), &json!("x".repeat(2 << 20)), None).await.unwrap_err();
    let rpc = error.to_rpc();
    assert_eq!(rpc.message, "Storage value exceeds maximum size of 1MB");
    assert_eq!(rpc.data, Some(json!({"limit": 1 << 20, "actual": (2 << 20) + 2})));
    let one_over = "x".repeat((1 << 20) - 1);
    assert!(storage.set("exact".into(), &json!(one_over), None).await.is_err());
    assert_eq!(storage.get("exact".into()).await.unwrap().data, json!(exactly), "a refused write keeps the old value");
    assert_eq!(storage.get("big".into()).await.unwrap().data, json!(null));
}

#[tokio::test]
async fn keys_are_checked() {
    let storage = memory();
    for (key, fragment) in [
        (String::new(), "must not be empty"),
        ("k".repeat(300), "at most 256 bytes, got 300"),
        ("a\nb".to_owned(), "control characters"),
        ("tab\there".to_owned(), "control characters"),
    ] {
        let error = storage.set(key.clone(), &json!(1), None).await.unwrap_err();
        assert!(error.to_string().contains(fragment), "{key:?}: {error}");
        assert_eq!(error.to_rpc().code, -32602);
        assert!(storage.get(key).await.is_err());
    }
    storage.set("k".repeat(256), &json!(1), None).await.unwrap();
    storage.set("ключ/🔑 with spaces".into(), &json!(1), None).await.unwrap();
}

#[tokio::test]
async fn expiry_is_rfc_3339_and_a_past_expiry_expires_at_once() {
    let storage = memory();
    let error = storage.set("k".into(), &json!(1), Some("tomorrow")).await.unwrap_err();
    assert!(error.to_string().starts_with("Invalid expiresAt timestamp"), "{error}");
    assert_eq!(error.to_rpc().code, -32602);
    assert_eq!(storage.list().await.unwrap().keys.len(), 0, "nothing written");

    storage.set("past".into(), &json!(1), Some("2001-01-01T00:00:00Z")).await.unwrap();
    assert_eq!(storage.get("past".into()).await.unwrap().data, json!(null));
    storage.set("future".into(), &json!({"a": [1]}), Some("2999-01-01T00:00:00.5Z")).await.unwrap();
    let got = storage.get("future".into()).await.unwrap();
    assert_eq!(got.data, json!({"a": [1]}));
    assert_eq!(got.expires_at.as_deref(), Some("2999-01-01T00:00:00.500+00:00"));
    let listed = storage.list().await.unwrap();
    assert_eq!(listed.keys.len(), 1);
    assert_eq!(listed.keys[0].key, "future");
    assert!(listed.keys[0].updated_at.ends_with("+00:00"));
}

#[tokio::test]
async fn delete_and_clear_report_what_they_did() {
    let storage = memory();
    storage.set("a".into(), &json!(1), None).await.unwrap();
    storage.set("b".into(), &json!(null), None).await.unwrap();
    assert!(storage.delete("a".into()).await.unwrap().deleted);
    assert!(!storage.delete("a".into()).await.unwrap().deleted);
    assert_eq!(storage.clear().await.unwrap().deleted_count, 1);
    assert_eq!(storage.clear().await.unwrap().deleted_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_end_above_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteStorage::open(&dir.path().join("race.sqlite3")).unwrap());
    let storage = StorageQuota::new(backend, StorageLimits::default()).scoped(StorageScope::plugin("race"));
    for index in 0..98 {
        storage.set(format!("base{index}"), &json!(index), None).await.unwrap();
    }
    let writers: Vec<_> = (0..40)
        .map(|index| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.set(format!("racer{index}"), &json!(index), None).await.is_ok() })
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        won += usize::from(writer.await.unwrap());
    }
    assert_eq!(won, 2, "exactly the two free keys were taken");
    assert_eq!(storage.list().await.unwrap().keys.len(), 100);
}

#[tokio::test]
async fn scopes_cannot_see_each_other() {
    let quota = StorageQuota::new(Arc::new(MemoryStorage::new()), StorageLimits::default());
    let alice = quota.scoped(StorageScope::user_plugin("alice-sync"));
    let bob = quota.scoped(StorageScope::user_plugin("bob-sync"));
    alice.set("token".into(), &json!("a"), None).await.unwrap();
    assert_eq!(bob.get("token".into()).await.unwrap().data, json!(null));
    assert_eq!(bob.clear().await.unwrap().deleted_count, 0);
    assert_eq!(alice.get("token".into()).await.unwrap().data, json!("a"));
}

#[tokio::test]
async fn the_sweeper_deletes_expired_keys() {
    let backend = Arc::new(MemoryStorage::new());
    let quota = StorageQuota::new(backend.clone(), StorageLimits::default());
    let storage = quota.scoped(StorageScope::plugin("sweep"));
    storage.set("old".into(), &json!(1), Some("2001-01-01T00:00:00Z")).await.unwrap();
    storage.set("new".into(), &json!(1), None).await.unwrap();
    assert_eq!(quota.sweep_expired().await.unwrap(), 1);
    assert_eq!(backend.sweep_expired(Utc::now()).unwrap(), 0);
}

#[tokio::test]
async fn the_background_sweeper_runs_until_dropped() {
    let backend = Arc::new(MemoryStorage::new());
    let quota = StorageQuota::new(backend.clone(), StorageLimits::default());
    let storage = quota.scoped(StorageScope::plugin("swept"));
    // Listing "as of" 2000 shows rows that expired in 2001 until something deletes them.
    let as_of_2000 = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    let rows = || backend.list(storage.scope(), as_of_2000).unwrap().len();
    storage.set("old".into(), &json!(1), Some("2001-01-01T00:00:00Z")).await.unwrap();
    assert_eq!(rows(), 1);
    let sweeper = quota.spawn_sweeper(Duration::from_millis(5));
    for _ in 0..400 {
        if rows() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rows(), 0, "the sweeper deleted the expired key");
    drop(sweeper);
    storage.set("later".into(), &json!(1), Some("2001-01-01T00:00:00Z")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rows(), 1, "a dropped sweeper sweeps no more");
}
