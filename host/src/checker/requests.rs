//! What a plugin under check may ask of the host: `storage/*` in a throwaway scope (whose
//! writes can be refused on demand), and a release source's `releases/*` from a throwaway
//! tracker: the sources it registers are kept, one series is tracked, candidates it records
//! are kept to be judged, its etags are kept. Nothing reaches the host's database.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::dispatch::{BoxFuture, ReverseHandler, ReverseRequest};
use crate::limits::{StorageLimits, StorageQuota};
use crate::protocol::types::releases::{
    ListTrackedParams, RecordParams, RegisterSourcesParams, SetSourceStateParams, SourceParams,
};
use crate::protocol::{ErrorCode, ErrorObject};
use crate::storage::handler::StorageHandler;
use crate::storage::{MemoryStorage, RefusingWrites, StorageScope};

/// Refusals of the plugin's writes by the real limits kept word for word; the rest are
/// counted.
const KEPT_REFUSALS: usize = 10;

/// Candidates kept to be judged; the rest are recorded (and answered) but not kept.
const KEPT_CANDIDATES: usize = 100;

/// The series the throwaway tracker tracks.
pub const TRACKED_SERIES_ID: &str = "codex-check-series-1";

/// A registered release source: the id the host gave it, and the plugin's key for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSource {
    pub id: String,
    pub key: String,
}

#[derive(Default)]
struct Releases {
    sources: Vec<RegisteredSource>,
    /// The first candidates recorded, in order.
    candidates: Vec<Value>,
    recorded: u64,
    etags: std::collections::HashMap<String, String>,
}

/// Serves a plugin under check.
pub struct CheckRequests {
    storage: StorageHandler,
    backend: Arc<RefusingWrites<MemoryStorage>>,
    /// `storage/set` requests the plugin sent.
    writes: AtomicU64,
    /// Its writes the real limits refused (not those refused on purpose): how many, and
    /// the first messages.
    refusals: Arc<Mutex<Refusals>>,
    releases: Mutex<Releases>,
}

/// Writes the real limits refused: how many, and the first messages.
type Refusals = (u64, Vec<String>);

/// How the plugin's storage writes went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageWrites {
    /// Write requests it sent.
    pub sent: u64,
    /// Writes refused on purpose.
    pub refused_on_purpose: u64,
    /// Writes the real limits refused, and the first of their messages.
    pub refused_by_limits: u64,
    pub messages: Vec<String>,
}

impl CheckRequests {
    /// Storage in memory, under the host's default limits, for `plugin`.
    pub fn new(plugin: &str) -> Arc<Self> {
        let backend = Arc::new(RefusingWrites::new(MemoryStorage::new()));
        let quota = StorageQuota::new(backend.clone(), StorageLimits::default());
        let storage = StorageHandler::new(quota.scoped(StorageScope::plugin(plugin)));
        Arc::new(Self {
            storage,
            backend,
            writes: AtomicU64::new(0),
            refusals: Arc::default(),
            releases: Mutex::default(),
        })
    }

    /// Refuses every storage write from now on (`true`), as a full quota would.
    pub fn refuse_storage_writes(&self, refusing: bool) {
        self.backend.refuse(refusing);
    }

    /// How the plugin's storage writes went so far.
    pub fn storage_writes(&self) -> StorageWrites {
        let (refused_by_limits, messages) = self.refusals.lock().unwrap_or_else(PoisonError::into_inner).clone();
        StorageWrites {
            sent: self.writes.load(Ordering::SeqCst),
            refused_on_purpose: self.backend.refused(),
            refused_by_limits,
            messages,
        }
    }

    /// The release sources the plugin registered.
    pub fn sources(&self) -> Vec<RegisteredSource> {
        self.lock().sources.clone()
    }

    /// The first candidates the plugin recorded (at most 100).
    pub fn candidates(&self) -> Vec<Value> {
        self.lock().candidates.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Releases> {
        self.releases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, method: &str, params: Option<&RawValue>) -> Result<Value, ErrorObject> {
        let mut releases = self.lock();
        let known = |releases: &Releases, id: &str| {
            releases.sources.iter().any(|source| source.id == id).then_some(()).ok_or_else(|| {
                ErrorObject::new(ErrorCode::NotFound, format!("no source `{id}` is registered by this plugin"))
            })
        };
        match method {
            "releases/register_sources" => {
                let registered: RegisterSourcesParams = read(params)?;
                let pruned = releases.sources.len();
                releases.sources = registered
                    .sources
                    .iter()
                    .map(|source| RegisteredSource {
                        id: format!("codex-check-source-{}", source.source_key),
                        key: source.source_key.clone(),
                    })
                    .collect();
                Ok(json!({"registered": releases.sources.len(), "pruned": pruned}))
            }
            "releases/list_tracked" => {
                let asked: ListTrackedParams = read(params)?;
                known(&releases, &asked.source_id)?;
                let tracked = if asked.offset.unwrap_or(0) == 0 {
                    vec![json!({
                        "seriesId": TRACKED_SERIES_ID, "aliases": ["One Piece", "ワンピース"],
                        "externalIds": {}, "latestKnownChapter": 3, "latestKnownVolume": 1
                    })]
                } else {
                    Vec::new()
                };
                Ok(json!({"tracked": tracked}))
            }
            "releases/count_tracked" => {
                known(&releases, &read::<SourceParams>(params)?.source_id)?;
                Ok(json!({"total": 1}))
            }
            "releases/report_progress" => Ok(json!({"emitted": true})),
            "releases/record" => {
                let recorded: RecordParams = read(params)?;
                known(&releases, &recorded.source_id)?;
                releases.recorded += 1;
                if releases.candidates.len() < KEPT_CANDIDATES {
                    releases.candidates.push(recorded.candidate);
                }
                Ok(json!({"ledgerId": format!("codex-check-ledger-{}", releases.recorded), "deduped": false}))
            }
            "releases/source_state/get" => {
                let source = read::<SourceParams>(params)?.source_id;
                known(&releases, &source)?;
                Ok(json!({"etag": releases.etags.get(&source)}))
            }
            "releases/source_state/set" => {
                let set: SetSourceStateParams = read(params)?;
                known(&releases, &set.source_id)?;
                let etag = set.etag.unwrap_or_default();
                releases.etags.insert(set.source_id, etag.clone());
                Ok(json!({"success": true, "etag": etag}))
            }
            other => Err(ErrorObject::new(
                ErrorCode::MethodNotFound,
                format!(
                    "unknown method `{other}`: plugins may call storage/get, set, delete, list and clear, and a release source releases/*"
                ),
            )),
        }
    }
}

fn read<T: DeserializeOwned>(params: Option<&RawValue>) -> Result<T, ErrorObject> {
    crate::storage::handler::required(params)
}

impl ReverseHandler for CheckRequests {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>> {
        if request.method == "storage/set" {
            self.writes.fetch_add(1, Ordering::SeqCst);
            let on_purpose = self.backend.is_refusing();
            let answering = self.storage.handle(request);
            let refusals = self.refusals.clone();
            return Box::pin(async move {
                let answer = answering.await;
                if let Err(error) = &answer
                    && !on_purpose
                {
                    let mut refusals = refusals.lock().unwrap_or_else(PoisonError::into_inner);
                    refusals.0 += 1;
                    if refusals.1.len() < KEPT_REFUSALS {
                        refusals.1.push(error.message.clone());
                    }
                }
                answer
            });
        }
        if request.method.starts_with("storage/") {
            return self.storage.handle(request);
        }
        let answer = self.release(&request.method, request.params.as_deref());
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ask(requests: &CheckRequests, method: &str, params: Value) -> Result<Value, ErrorObject> {
        let params = Some(serde_json::value::to_raw_value(&params).unwrap());
        requests.handle(ReverseRequest { method: method.into(), params, parent_request_id: None }).await
    }

    #[tokio::test]
    async fn a_release_source_is_served_from_memory() {
        let requests = CheckRequests::new("p");
        let sources = json!({"sources": [{"sourceKey": "a", "displayName": "A", "kind": "api-feed"}]});
        assert_eq!(ask(&requests, "releases/register_sources", sources).await.unwrap()["registered"], 1);
        let source = requests.sources()[0].id.clone();
        let tracked = ask(&requests, "releases/list_tracked", json!({"sourceId": source})).await.unwrap();
        assert_eq!(tracked["tracked"][0]["seriesId"], TRACKED_SERIES_ID);
        ask(&requests, "releases/record", json!({"sourceId": source, "candidate": {"x": 1}})).await.unwrap();
        assert_eq!(requests.candidates(), [json!({"x": 1})]);
        ask(&requests, "releases/source_state/set", json!({"sourceId": source, "etag": "e1"})).await.unwrap();
        let state = ask(&requests, "releases/source_state/get", json!({"sourceId": source})).await.unwrap();
        assert_eq!(state["etag"], "e1");
        let error = ask(&requests, "releases/count_tracked", json!({"sourceId": "other"})).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::NotFound.code());
        let error = ask(&requests, "library/delete", json!({})).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::MethodNotFound.code());
    }

    #[tokio::test]
    async fn storage_writes_are_refused_on_demand() {
        let requests = CheckRequests::new("p");
        ask(&requests, "storage/set", json!({"key": "k", "data": 1})).await.unwrap();
        requests.refuse_storage_writes(true);
        let refused = ask(&requests, "storage/set", json!({"key": "k2", "data": 2})).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidParams.code());
        assert_eq!(ask(&requests, "storage/get", json!({"key": "k"})).await.unwrap()["data"], 1);
        requests.refuse_storage_writes(false);
        ask(&requests, "storage/set", json!({"key": "k".repeat(300), "data": 3})).await.unwrap_err();
        let writes = requests.storage_writes();
        assert_eq!((writes.sent, writes.refused_on_purpose, writes.refused_by_limits), (3, 1, 1));
        assert!(writes.messages[0].contains("key"), "{:?}", writes.messages);
    }
}
