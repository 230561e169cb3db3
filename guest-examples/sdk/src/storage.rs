//! Plugin storage: a key/value store the host keeps for this plugin (per user, for user
//! plugins), reached through `storage/*` requests. Limits are the host's: 100 keys, 1 MiB
//! per value, keys of 1-256 bytes; a write over a limit is refused with the limit named.

use codex_plugin_protocol::ErrorObject;
use codex_plugin_protocol::types::storage::{
    ClearResult, DeleteResult, GetResult, KeyInfo, KeyParams, ListResult, SetParams, SetResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::link::HostLink;

/// Why a request to the host (`storage/*`, `releases/*`) got no result.
#[derive(Debug, Clone, PartialEq)]
pub enum HostError {
    /// The host refused it: a quota, a bad key, a bad expiry. The message names the limit.
    Refused(ErrorObject),
    /// No answer came within the deadline.
    TimedOut { method: &'static str, after: Duration },
    /// The plugin is shutting down, or its input ended.
    Closed,
    /// The host's answer, or the value, was not what was expected.
    Malformed { method: &'static str, why: String },
}

/// The name storage requests' errors had first.
pub type StorageError = HostError;

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(error) => write!(f, "the host refused: {} ({})", error.message, error.code),
            Self::TimedOut { method, after } => write!(f, "`{method}` got no answer from the host within {after:?}"),
            Self::Closed => f.write_str("the host link is closed: the plugin is shutting down"),
            Self::Malformed { method, why } => write!(f, "`{method}`: unexpected answer: {why}"),
        }
    }
}

impl std::error::Error for HostError {}

/// This plugin's storage. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    link: Rc<HostLink>,
}

impl Storage {
    pub(crate) fn new(link: Rc<HostLink>) -> Self {
        Self { link }
    }

    /// The value under `key`, `None` if there is none (or it expired).
    pub async fn get(&self, key: &str) -> Result<Option<Value>, StorageError> {
        let entry = self.get_entry(key).await?;
        Ok((!entry.data.is_null()).then_some(entry.data))
    }

    /// The value under `key` read as `T`, `None` if there is none.
    pub async fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|error| StorageError::Malformed { method: "storage/get", why: error.to_string() }),
        }
    }

    /// The value under `key` with its expiry.
    pub async fn get_entry(&self, key: &str) -> Result<GetResult, StorageError> {
        self.call("storage/get", Some(&KeyParams { key: key.to_owned() })).await
    }

    /// Stores `data` under `key`, until `expires_at` (RFC 3339) if given.
    pub async fn set(&self, key: &str, data: impl Serialize, expires_at: Option<&str>) -> Result<(), StorageError> {
        let data = serde_json::to_value(data)
            .map_err(|error| StorageError::Malformed { method: "storage/set", why: error.to_string() })?;
        let params = SetParams { key: key.to_owned(), data, expires_at: expires_at.map(str::to_owned) };
        let _: SetResult = self.call("storage/set", Some(&params)).await?;
        Ok(())
    }

    /// Deletes `key`; `true` if it was there.
    pub async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let result: DeleteResult = self.call("storage/delete", Some(&KeyParams { key: key.to_owned() })).await?;
        Ok(result.deleted)
    }

    /// Every live key, sorted.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, StorageError> {
        let result: ListResult = self.call::<(), _>("storage/list", None).await?;
        Ok(result.keys)
    }

    /// Deletes every key; returns how many there were.
    pub async fn clear(&self) -> Result<u64, StorageError> {
        let result: ClearResult = self.call::<(), _>("storage/clear", None).await?;
        Ok(result.deleted_count)
    }

    async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Option<&P>,
    ) -> Result<R, StorageError> {
        let malformed = |error: serde_json::Error| StorageError::Malformed { method, why: error.to_string() };
        let params = params.map(serde_json::to_value).transpose().map_err(malformed)?;
        let answer = self.link.request(method, params.as_ref()).await?;
        serde_json::from_value(answer).map_err(malformed)
    }
}
