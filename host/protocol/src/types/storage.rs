//! `storage/*`: the only methods a plugin may call on the host.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `storage/get` and `storage/delete` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyParams {
    pub key: String,
}

/// `storage/set` params; `expiresAt` is RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetParams {
    pub key: String,
    /// Required; an explicit `null` is a value like any other.
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `storage/get` result: `data` is `null` for a missing or expired key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetResult {
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `storage/set` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetResult {
    pub success: bool,
}

/// `storage/delete` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteResult {
    pub deleted: bool,
}

/// One key in a `storage/list` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub updated_at: String,
}

/// `storage/list` result, sorted by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResult {
    pub keys: Vec<KeyInfo>,
}

/// `storage/clear` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearResult {
    pub deleted_count: u64,
}
