//! `storage/*` from the plugin: params in, quota layer, result shapes of the reference out.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::dispatch::{BoxFuture, ReverseHandler, ReverseRequest};
use crate::limits::{QuotaError, ScopedStorage};
use crate::protocol::types::storage::{KeyParams, SetParams};
use crate::protocol::{ErrorCode, ErrorObject};
use crate::storage::StorageError;

/// Serves a plugin's `storage/*` requests from its own scope; any other method is -32601.
pub struct StorageHandler {
    storage: ScopedStorage,
}

impl StorageHandler {
    pub fn new(storage: ScopedStorage) -> Self {
        Self { storage }
    }
}

impl ReverseHandler for StorageHandler {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>> {
        let storage = self.storage.clone();
        Box::pin(async move { serve(&storage, &request.method, request.params.as_deref()).await })
    }
}

async fn serve(storage: &ScopedStorage, method: &str, params: Option<&RawValue>) -> Result<Value, ErrorObject> {
    let answer = match method {
        "storage/get" => to_value(storage.get(required::<KeyParams>(params)?.key).await),
        "storage/set" => {
            let set: SetParams = required(params)?;
            to_value(storage.set(set.key, &set.data, set.expires_at.as_deref()).await)
        }
        "storage/delete" => to_value(storage.delete(required::<KeyParams>(params)?.key).await),
        "storage/list" => to_value(storage.list().await),
        "storage/clear" => to_value(storage.clear().await),
        other => {
            return Err(ErrorObject::new(
                ErrorCode::MethodNotFound,
                format!("unknown method `{other}`: plugins may only call storage/get, set, delete, list and clear"),
            ));
        }
    };
    answer.map_err(|error| {
        if matches!(error, QuotaError::Storage(_)) {
            tracing::error!(scope = %storage.scope(), "{error}");
        }
        error.to_rpc()
    })
}

pub(crate) fn required<T: DeserializeOwned>(params: Option<&RawValue>) -> Result<T, ErrorObject> {
    let invalid = |message: String| ErrorObject::new(ErrorCode::InvalidParams, message);
    let params = params.filter(|raw| raw.get() != "null").ok_or_else(|| invalid("params is required".into()))?;
    serde_json::from_str(params.get()).map_err(|error| invalid(format!("Invalid params: {error}")))
}

fn to_value<T: serde::Serialize>(result: Result<T, QuotaError>) -> Result<Value, QuotaError> {
    let answer = result?;
    serde_json::to_value(answer).map_err(|error| QuotaError::Storage(StorageError::Task(error.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{StorageLimits, StorageQuota};
    use crate::storage::{MemoryStorage, StorageScope};
    use serde_json::json;
    use std::sync::Arc;

    async fn call(handler: &StorageHandler, method: &str, params: Option<Value>) -> Result<Value, ErrorObject> {
        let params = params.map(|params| serde_json::value::to_raw_value(&params).unwrap());
        handler.handle(ReverseRequest { method: method.into(), params, parent_request_id: None }).await
    }

    fn handler() -> StorageHandler {
        let quota = StorageQuota::new(Arc::new(MemoryStorage::new()), StorageLimits::default());
        StorageHandler::new(quota.scoped(StorageScope::plugin("h")))
    }

    #[tokio::test]
    async fn raw_json_in_reference_shapes_out() {
        let handler = handler();
        assert_eq!(call(&handler, "storage/get", Some(json!({"key": "k"}))).await.unwrap(), json!({"data": null}));
        assert_eq!(
            call(&handler, "storage/set", Some(json!({"key": "k", "data": {"n": 1}}))).await.unwrap(),
            json!({"success": true})
        );
        assert_eq!(call(&handler, "storage/get", Some(json!({"key": "k"}))).await.unwrap(), json!({"data": {"n": 1}}));
        let listed = call(&handler, "storage/list", None).await.unwrap();
        assert_eq!(listed["keys"][0]["key"], json!("k"));
        assert!(listed["keys"][0].get("expiresAt").is_none());
        assert!(listed["keys"][0]["updatedAt"].is_string());
        assert_eq!(
            call(&handler, "storage/delete", Some(json!({"key": "k"}))).await.unwrap(),
            json!({"deleted": true})
        );
        assert_eq!(call(&handler, "storage/clear", None).await.unwrap(), json!({"deletedCount": 0}));
    }

    #[tokio::test]
    async fn bad_params_and_unknown_methods_are_clear_errors() {
        let handler = handler();
        let cases = [
            ("storage/get", None, -32602, "params is required"),
            ("storage/set", Some(json!({"key": "k"})), -32602, "missing field `data`"),
            ("storage/set", Some(json!({"key": 5, "data": 1})), -32602, "Invalid params"),
            ("storage/delete", Some(json!([])), -32602, "Invalid params"),
            ("releases/record", None, -32601, "unknown method `releases/record`"),
            ("storage/setAll", None, -32601, "storage/get, set"),
        ];
        for (method, params, code, fragment) in cases {
            let error = call(&handler, method, params.clone()).await.unwrap_err();
            assert_eq!(error.code, code, "{method} {params:?}");
            assert!(error.message.contains(fragment), "{method}: {}", error.message);
        }
    }

    #[tokio::test]
    async fn an_explicit_null_value_is_stored() {
        let handler = handler();
        call(&handler, "storage/set", Some(json!({"key": "n", "data": null}))).await.unwrap();
        let listed = call(&handler, "storage/list", None).await.unwrap();
        assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    }
}
