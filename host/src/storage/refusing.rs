//! [`RefusingWrites`]: a backend whose writes can be switched to "the quota is full",
//! whatever is written, for `check`, which asks whether a plugin answers its request
//! cleanly when the host refuses its storage writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Entry, KeySummary, PutOutcome, StorageBackend, StorageError, StorageScope, Timestamp};

/// Another backend, with writes refused while [`RefusingWrites::refuse`] is on.
pub struct RefusingWrites<B> {
    inner: B,
    refusing: AtomicBool,
    refused: AtomicU64,
}

impl<B: StorageBackend> RefusingWrites<B> {
    pub fn new(inner: B) -> Self {
        Self { inner, refusing: AtomicBool::new(false), refused: AtomicU64::new(0) }
    }

    /// Refuses every write from now on (`true`), or lets them through again.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Whether writes are refused now.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// How many writes were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

impl<B: StorageBackend> StorageBackend for RefusingWrites<B> {
    fn get(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<Option<Entry>, StorageError> {
        self.inner.get(scope, key, now)
    }

    fn put_within_quota(
        &self,
        scope: &StorageScope,
        key: &str,
        entry: &Entry,
        max_live_keys: usize,
        now: Timestamp,
    ) -> Result<PutOutcome, StorageError> {
        if self.refusing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            // Full as the quota layer says it: the plugin gets the answer a full scope gets.
            return Ok(PutOutcome::QuotaFull { live_keys: max_live_keys });
        }
        self.inner.put_within_quota(scope, key, entry, max_live_keys, now)
    }

    fn delete(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<bool, StorageError> {
        self.inner.delete(scope, key, now)
    }

    fn list(&self, scope: &StorageScope, now: Timestamp) -> Result<Vec<KeySummary>, StorageError> {
        self.inner.list(scope, now)
    }

    fn clear(&self, scope: &StorageScope, now: Timestamp) -> Result<u64, StorageError> {
        self.inner.clear(scope, now)
    }

    fn sweep_expired(&self, now: Timestamp) -> Result<u64, StorageError> {
        self.inner.sweep_expired(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{QuotaError, StorageLimits, StorageQuota};
    use crate::storage::MemoryStorage;
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn writes_are_refused_as_a_full_quota_only_while_switched_on() {
        let backend = Arc::new(RefusingWrites::new(MemoryStorage::new()));
        let quota = StorageQuota::new(backend.clone(), StorageLimits::default());
        let storage = quota.scoped(StorageScope::plugin("p"));
        storage.set("kept".into(), &json!(1), None).await.unwrap();
        backend.refuse(true);
        let refused = storage.set("new".into(), &json!(2), None).await.unwrap_err();
        assert!(matches!(refused, QuotaError::TooManyKeys { .. }), "{refused:?}");
        assert_eq!(refused.to_rpc().code, crate::protocol::ErrorCode::InvalidParams.code());
        storage.set("kept".into(), &json!(3), None).await.unwrap_err();
        assert_eq!(backend.refused(), 2);
        assert_eq!(storage.get("kept".into()).await.unwrap().data, json!(1), "nothing lost, nothing written");
        backend.refuse(false);
        storage.set("new".into(), &json!(2), None).await.unwrap();
        assert_eq!(backend.refused(), 2);
    }
}
