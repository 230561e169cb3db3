//! In-memory storage, for unit tests and throwaway hosts.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Entry, KeySummary, PutOutcome, StorageBackend, StorageError, StorageScope, Timestamp};

/// Keys by scope, behind one lock: every operation is atomic.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    scopes: Mutex<BTreeMap<StorageScope, BTreeMap<String, Entry>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<StorageScope, BTreeMap<String, Entry>>> {
        // Each operation leaves the maps consistent, so a poisoned lock is still usable.
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StorageBackend for MemoryStorage {
    fn get(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<Option<Entry>, StorageError> {
        let scopes = self.lock();
        Ok(scopes.get(scope).and_then(|keys| keys.get(key)).filter(|entry| entry.is_live(now)).cloned())
    }

    fn put_within_quota(
        &self,
        scope: &StorageScope,
        key: &str,
        entry: &Entry,
        max_live_keys: usize,
        now: Timestamp,
    ) -> Result<PutOutcome, StorageError> {
        let mut scopes = self.lock();
        let keys = scopes.entry(scope.clone()).or_default();
        let replaces_live = keys.get(key).is_some_and(|existing| existing.is_live(now));
        if !replaces_live {
            let live_keys = keys.values().filter(|existing| existing.is_live(now)).count();
            if live_keys >= max_live_keys {
                return Ok(PutOutcome::QuotaFull { live_keys });
            }
        }
        keys.insert(key.to_owned(), entry.clone());
        Ok(PutOutcome::Written)
    }

    fn delete(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<bool, StorageError> {
        let mut scopes = self.lock();
        let removed = scopes.get_mut(scope).and_then(|keys| keys.remove(key));
        Ok(removed.is_some_and(|entry| entry.is_live(now)))
    }

    fn list(&self, scope: &StorageScope, now: Timestamp) -> Result<Vec<KeySummary>, StorageError> {
        let scopes = self.lock();
        let Some(keys) = scopes.get(scope) else { return Ok(Vec::new()) };
        Ok(keys
            .iter()
            .filter(|(_, entry)| entry.is_live(now))
            .map(|(key, entry)| KeySummary {
                key: key.clone(),
                expires_at: entry.expires_at,
                updated_at: entry.updated_at,
            })
            .collect())
    }

    fn clear(&self, scope: &StorageScope, now: Timestamp) -> Result<u64, StorageError> {
        let removed = self.lock().remove(scope).unwrap_or_default();
        Ok(removed.values().filter(|entry| entry.is_live(now)).count() as u64)
    }

    fn sweep_expired(&self, now: Timestamp) -> Result<u64, StorageError> {
        let mut swept = 0;
        for keys in self.lock().values_mut() {
            let before = keys.len();
            keys.retain(|_, entry| entry.is_live(now));
            swept += (before - keys.len()) as u64;
        }
        Ok(swept)
    }
}
