//! The storage-quota layer: every rule of plugin storage, in one place.
//!
//! - keys: 1 to 256 bytes of UTF-8, no control characters;
//! - values: at most 1 MiB, measured as the compact JSON encoding of `data` (exactly
//!   1 MiB is allowed);
//! - at most 100 live keys per scope; an existing key can always be overwritten;
//! - `expiresAt` is RFC 3339; a past one is accepted and expires at once; expired keys
//!   are invisible and do not count, and [`StorageQuota::sweep_expired`] deletes them.
//!
//! Limits apply to writes only. The count check and the write are one transaction in the
//! backend, so concurrent writers never end above the quota.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::types::storage::{ClearResult, DeleteResult, GetResult, KeyInfo, ListResult, SetResult};
use crate::protocol::{ErrorCode, ErrorObject};
use crate::storage::{Entry, PutOutcome, StorageBackend, StorageError, StorageScope, format_timestamp};

/// The numbers of the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    pub max_keys: usize,
    pub max_value_bytes: usize,
    pub max_key_bytes: usize,
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self { max_keys: 100, max_value_bytes: 1 << 20, max_key_bytes: 256 }
    }
}

/// A write the quota refused, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("Invalid storage key: {why}")]
    InvalidKey { why: String, limit: usize, actual: usize },
    #[error("Storage value exceeds maximum size of 1MB")]
    ValueTooLarge { limit: usize, actual: usize },
    #[error("Storage key limit exceeded (max {limit} keys)")]
    TooManyKeys { limit: usize, actual: usize },
    #[error("Invalid expiresAt timestamp: {why}")]
    InvalidExpiry { why: String },
    #[error("Storage error: {0}")]
    Storage(#[from] StorageError),
}

impl QuotaError {
    /// The JSON-RPC error the plugin gets: -32602 with the limit and the actual figure,
    /// or -32603 for a storage failure.
    pub fn to_rpc(&self) -> ErrorObject {
        let message = self.to_string();
        match self {
            Self::InvalidKey { limit, actual, .. }
            | Self::ValueTooLarge { limit, actual }
            | Self::TooManyKeys { limit, actual } => {
                ErrorObject::new(ErrorCode::InvalidParams, message).with_data(json!({"limit": limit, "actual": actual}))
            }
            Self::InvalidExpiry { .. } => ErrorObject::new(ErrorCode::InvalidParams, message),
            Self::Storage(_) => ErrorObject::new(ErrorCode::InternalError, message),
        }
    }
}

/// The quota over a backend, shared by every plugin of a host.
pub struct StorageQuota {
    backend: Arc<dyn StorageBackend>,
    limits: StorageLimits,
}

impl StorageQuota {
    pub fn new(backend: Arc<dyn StorageBackend>, limits: StorageLimits) -> Arc<Self> {
        Arc::new(Self { backend, limits })
    }

    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// What one plugin (or one user's connection to it) sees.
    pub fn scoped(self: &Arc<Self>, scope: StorageScope) -> ScopedStorage {
        ScopedStorage { quota: self.clone(), scope }
    }

    /// Deletes every expired key now.
    pub async fn sweep_expired(&self) -> Result<u64, QuotaError> {
        let backend = self.backend.clone();
        blocking(move || backend.sweep_expired(Utc::now())).await
    }

    /// Sweeps expired keys every `interval` (the first sweep at once) until the returned
    /// [`Sweeper`] is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, interval: Duration) -> Sweeper {
        let quota = self.clone();
        Sweeper(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                match quota.sweep_expired().await {
                    Ok(0) => {}
                    Ok(swept) => tracing::debug!(swept, "swept expired storage keys"),
                    // A command that ends at once ends its sweep: not a failure.
                    Err(QuotaError::Storage(StorageError::Cancelled)) => return,
                    Err(error) => tracing::warn!("sweeping expired storage keys failed: {error}"),
                }
            }
        }))
    }
}

/// The background sweep of expired keys; stops when dropped.
pub struct Sweeper(tokio::task::JoinHandle<()>);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One scope of storage, with the quota applied. This is all a plugin can reach: it
/// names keys, never scopes.
#[derive(Clone)]
pub struct ScopedStorage {
    quota: Arc<StorageQuota>,
    scope: StorageScope,
}

impl ScopedStorage {
    pub fn scope(&self) -> &StorageScope {
        &self.scope
    }

    pub async fn get(&self, key: String) -> Result<GetResult, QuotaError> {
        self.check_key(&key)?;
        let (backend, scope) = self.parts();
        let entry = blocking(move || backend.get(&scope, &key, Utc::now())).await?;
        Ok(match entry {
            Some(entry) => GetResult {
                data: serde_json::from_str(&entry.data).unwrap_or(Value::Null),
                expires_at: entry.expires_at.as_ref().map(format_timestamp),
            },
            None => GetResult { data: Value::Null, expires_at: None },
        })
    }

    pub async fn set(&self, key: String, data: &Value, expires_at: Option<&str>) -> Result<SetResult, QuotaError> {
        self.check_key(&key)?;
        let limits = self.quota.limits;
        let data =
            serde_json::to_string(data).map_err(|error| QuotaError::Storage(StorageError::Task(error.to_string())))?;
        if data.len() > limits.max_value_bytes {
            return Err(QuotaError::ValueTooLarge { limit: limits.max_value_bytes, actual: data.len() });
        }
        let expires_at = expires_at.map(parse_expiry).transpose()?;
        let entry = Entry { data, expires_at, updated_at: Utc::now() };
        let (backend, scope) = self.parts();
        let outcome =
            blocking(move || backend.put_within_quota(&scope, &key, &entry, limits.max_keys, Utc::now())).await?;
        match outcome {
            PutOutcome::Written => Ok(SetResult { success: true }),
            PutOutcome::QuotaFull { live_keys } => {
                Err(QuotaError::TooManyKeys { limit: limits.max_keys, actual: live_keys + 1 })
            }
        }
    }

    pub async fn delete(&self, key: String) -> Result<DeleteResult, QuotaError> {
        self.check_key(&key)?;
        let (backend, scope) = self.parts();
        let deleted = blocking(move || backend.delete(&scope, &key, Utc::now())).await?;
        Ok(DeleteResult { deleted })
    }

    pub async fn list(&self) -> Result<ListResult, QuotaError> {
        let (backend, scope) = self.parts();
        let keys = blocking(move || backend.list(&scope, Utc::now())).await?;
        let keys = keys
            .into_iter()
            .map(|key| KeyInfo {
                key: key.key,
                expires_at: key.expires_at.as_ref().map(format_timestamp),
                updated_at: format_timestamp(&key.updated_at),
            })
            .collect();
        Ok(ListResult { keys })
    }

    pub async fn clear(&self) -> Result<ClearResult, QuotaError> {
        let (backend, scope) = self.parts();
        let deleted_count = blocking(move || backend.clear(&scope, Utc::now())).await?;
        Ok(ClearResult { deleted_count })
    }

    fn parts(&self) -> (Arc<dyn StorageBackend>, StorageScope) {
        (self.quota.backend.clone(), self.scope.clone())
    }

    fn check_key(&self, key: &str) -> Result<(), QuotaError> {
        let limit = self.quota.limits.max_key_bytes;
        let invalid = |why: String| QuotaError::InvalidKey { why, limit, actual: key.len() };
        if key.is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        if key.len() > limit {
            return Err(invalid(format!("must be at most {limit} bytes, got {}", key.len())));
        }
        if key.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters".into()));
        }
        Ok(())
    }
}

fn parse_expiry(text: &str) -> Result<DateTime<Utc>, QuotaError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| QuotaError::InvalidExpiry { why: format!("{text:?} is not RFC 3339 ({error})") })
}

/// Runs a backend operation off the async worker threads.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, QuotaError> {
    match tokio::task::spawn_blocking(operation).await {
        Ok(result) => result.map_err(QuotaError::from),
        Err(error) if error.is_cancelled() => Err(QuotaError::Storage(StorageError::Cancelled)),
        Err(error) => Err(QuotaError::Storage(StorageError::Task(error.to_string()))),
    }
}

#[cfg(test)]
mod tests;
