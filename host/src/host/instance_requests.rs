//! What one plugin instance may ask of the host: `storage/*` in its own scope, for every
//! plugin; `releases/*` for a plugin's own instance when its manifest declares
//! `capabilities.releaseSource` and a release tracker serves this host. Any other method,
//! or a release method for a plugin without the capability, is -32601: to that plugin the
//! method does not exist (Codex answers a missing capability with -32003).

use codex_plugin_protocol::manifest::{Manifest, ReleaseSourceCapability};
use codex_plugin_protocol::types::releases::RELEASE_HOST_METHODS;
use serde_json::Value;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

use crate::dispatch::{BoxFuture, ReverseHandler, ReverseRequest};
use crate::protocol::{ErrorCode, ErrorObject};
use crate::storage::handler::StorageHandler;

/// How long a request that came before the plugin's manifest waits for it (Codex:
/// `REVERSE_RPC_READINESS_TIMEOUT`): a plugin may register its sources while it answers
/// `initialize`.
pub const MANIFEST_WAIT: Duration = Duration::from_secs(5);

/// Serves a release source's `releases/*` requests, for the plugin registered as `plugin`.
pub trait ReleaseService: Send + Sync {
    /// An instance of `plugin` that declares a release source started (it registers its
    /// sources as it does).
    fn instance_started(&self, plugin: &str);

    fn serve(
        &self,
        plugin: &str,
        capability: &ReleaseSourceCapability,
        request: ReverseRequest,
    ) -> BoxFuture<Result<Value, ErrorObject>>;
}

/// The host's release service, once a tracker set it (weak: the tracker owns the host).
pub(crate) type ReleaseServiceSlot = Arc<RwLock<Option<Weak<dyn ReleaseService>>>>;

/// The release service in `slot`, if one is set and alive.
pub(crate) fn release_service(slot: &ReleaseServiceSlot) -> Option<Arc<dyn ReleaseService>> {
    slot.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().and_then(Weak::upgrade)
}

pub(super) struct InstanceRequests {
    pub storage: StorageHandler,
    pub plugin: String,
    pub for_user: bool,
    pub manifest: watch::Receiver<Option<Arc<Manifest>>>,
    pub releases: ReleaseServiceSlot,
}

fn not_found(message: String) -> ErrorObject {
    ErrorObject::new(ErrorCode::MethodNotFound, message)
}

impl ReverseHandler for InstanceRequests {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>> {
        if request.method.starts_with("storage/") {
            return self.storage.handle(request);
        }
        if !RELEASE_HOST_METHODS.contains(&request.method.as_str()) {
            let message = format!(
                "unknown method `{}`: plugins may call storage/get, set, delete, list and clear, and a release source releases/*",
                request.method
            );
            return Box::pin(async move { Err(not_found(message)) });
        }
        let (plugin, for_user) = (self.plugin.clone(), self.for_user);
        let (mut manifest, releases) = (self.manifest.clone(), self.releases.clone());
        Box::pin(async move {
            let method = request.method.clone();
            let manifest: Option<Arc<Manifest>> =
                match tokio::time::timeout(MANIFEST_WAIT, manifest.wait_for(Option::is_some)).await {
                    Ok(Ok(manifest)) => manifest.clone(),
                    _ => None,
                };
            let Some(manifest) = manifest else {
                return Err(not_found("plugin not initialized; capabilities unknown".into()));
            };
            let Some(capability) = manifest.capabilities.release_source.clone() else {
                return Err(not_found(format!(
                    "unknown method `{method}`: it is served only to plugins whose manifest declares capabilities.releaseSource"
                )));
            };
            if for_user {
                return Err(not_found(format!(
                    "unknown method `{method}`: release sources are served to the plugin's own instance, not a user's"
                )));
            }
            let Some(service) = release_service(&releases) else {
                return Err(not_found(format!(
                    "unknown method `{method}`: this host runs no release tracker, so it keeps no release sources"
                )));
            };
            service.serve(&plugin, &capability, request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{StorageLimits, StorageQuota};
    use crate::storage::{MemoryStorage, StorageScope};
    use serde_json::json;

    fn requests(manifest: Option<Value>, for_user: bool) -> (InstanceRequests, watch::Sender<Option<Arc<Manifest>>>) {
        let quota = StorageQuota::new(Arc::new(MemoryStorage::new()), StorageLimits::default());
        let manifest = manifest.map(|value| Arc::new(serde_json::from_value::<Manifest>(value).unwrap()));
        let (sender, receiver) = watch::channel(manifest);
        let requests = InstanceRequests {
            storage: StorageHandler::new(quota.scoped(StorageScope::plugin("p"))),
            plugin: "p".into(),
            for_user,
            manifest: receiver,
            releases: ReleaseServiceSlot::default(),
        };
        (requests, sender)
    }

    fn manifest(capabilities: Value) -> Value {
        json!({"name": "p", "displayName": "P", "version": "1.0.0", "description": "d", "protocolVersion": "1.0",
               "capabilities": capabilities})
    }

    async fn ask(requests: &InstanceRequests, method: &str) -> Result<Value, ErrorObject> {
        let params = Some(serde_json::value::to_raw_value(&json!({"sourceId": "s"})).unwrap());
        requests.handle(ReverseRequest { method: method.into(), params, parent_request_id: None }).await
    }

    #[tokio::test]
    async fn a_plugin_without_the_capability_has_no_release_methods() {
        let (requests, _sender) = requests(Some(manifest(json!({"metadataProvider": ["series"]}))), false);
        for method in RELEASE_HOST_METHODS {
            let error = ask(&requests, method).await.unwrap_err();
            assert_eq!(error.code, -32601, "{method}");
            assert!(error.message.contains("capabilities.releaseSource"), "{method}: {}", error.message);
        }
        assert_eq!(ask(&requests, "storage/list").await.unwrap(), json!({"keys": []}), "storage is everyone's");
        assert!(ask(&requests, "releases/everything").await.unwrap_err().message.contains("unknown method"));
    }

    #[tokio::test]
    async fn a_user_instance_and_a_host_without_a_tracker_serve_none() {
        let source = manifest(json!({"releaseSource": {"kinds": ["api-feed"]}}));
        let (user, _sender) = requests(Some(source.clone()), true);
        assert!(ask(&user, "releases/list_tracked").await.unwrap_err().message.contains("not a user's"));
        let (own, _sender) = requests(Some(source), false);
        let error = ask(&own, "releases/record").await.unwrap_err();
        assert_eq!((error.code, error.message.contains("no release tracker")), (-32601, true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_before_the_manifest_waits_for_it() {
        let (waiting, sender) = requests(None, false);
        let early = tokio::spawn(async move { ask(&waiting, "releases/count_tracked").await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        sender.send_replace(Some(Arc::new(serde_json::from_value(manifest(json!({}))).unwrap())));
        let error = early.await.unwrap().unwrap_err();
        assert!(
            error.message.contains("capabilities.releaseSource"),
            "answered once the manifest came: {}",
            error.message
        );
        let (never, _sender) = requests(None, false);
        let error = ask(&never, "releases/count_tracked").await.unwrap_err();
        assert_eq!(error.message, "plugin not initialized; capabilities unknown");
    }
}
