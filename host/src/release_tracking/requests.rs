//! A release source's `releases/*` requests, with Codex's params, answers and errors; a
//! source is the plugin's only when it registered it under its registered id.

use codex_plugin_protocol::manifest::ReleaseSourceCapability;
use codex_plugin_protocol::types::releases::{
    CountTrackedResult, DEFAULT_TRACKED_PAGE, ListTrackedParams, ListTrackedResult, MAX_TRACKED_PAGE, RecordParams,
    RegisterSourcesParams, RegisterSourcesResult, ReportProgressParams, ReportProgressResult, SetSourceStateParams,
    SetSourceStateResult, SourceParams, SourceState,
};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

use super::record::Refused;
use super::store::ReleaseSource;
use super::{Inner, ReleaseError, now_micros, rfc3339_utc};
use crate::dispatch::{BoxFuture, ReverseRequest};
use crate::protocol::{ErrorCode, ErrorObject};
use crate::releases::{check_etag, check_sources, tracked_series};
use crate::storage::handler::required;

impl crate::host::ReleaseService for Inner {
    fn instance_started(&self, plugin: &str) {
        self.starts.started(plugin);
    }

    fn serve(
        &self,
        plugin: &str,
        capability: &ReleaseSourceCapability,
        request: ReverseRequest,
    ) -> BoxFuture<Result<Value, ErrorObject>> {
        // The host holds the tracker weakly; a request in flight keeps it.
        let this = self.strong();
        let (plugin, capability) = (plugin.to_owned(), capability.clone());
        Box::pin(async move {
            let params = request.params.as_deref();
            match request.method.as_str() {
                "releases/register_sources" => {
                    // Whoever waits for this plugin's registration hears of it, even a
                    // malformed one.
                    let registering = match required(params) {
                        Ok(params) => this.register(&plugin, &capability, params).await,
                        Err(error) => Err(error),
                    };
                    this.starts.registered(&plugin);
                    answer(registering)
                }
                "releases/list_tracked" => answer(this.list_tracked(&plugin, &capability, required(params)?).await),
                "releases/count_tracked" => answer(this.count_tracked(&plugin, required(params)?).await),
                "releases/report_progress" => answer(Ok(this.report_progress(&plugin, required(params)?))),
                "releases/record" => answer(this.record_request(&plugin, required(params)?).await),
                "releases/source_state/get" => answer(this.source_state(&plugin, required(params)?).await),
                "releases/source_state/set" => answer(this.set_source_state(&plugin, required(params)?).await),
                other => Err(ErrorObject::new(ErrorCode::MethodNotFound, format!("unknown method `{other}`"))),
            }
        })
    }
}

fn answer<T: Serialize>(result: Result<T, ErrorObject>) -> Result<Value, ErrorObject> {
    let value = result?;
    serde_json::to_value(value).map_err(|error| ErrorObject::new(ErrorCode::InternalError, error.to_string()))
}

fn invalid(message: String) -> ErrorObject {
    ErrorObject::new(ErrorCode::InvalidParams, message)
}

/// A host fault: -32603 for the plugin, an error in the host's log.
fn host_fault(plugin: &str, error: ReleaseError) -> ErrorObject {
    tracing::error!(plugin, "a release request failed: {error}");
    ErrorObject::new(ErrorCode::InternalError, error.to_string())
}

impl Inner {
    pub(super) fn strong(&self) -> Arc<Inner> {
        // Served only through the host's weak reference to an `Arc<Inner>`.
        self.this.upgrade().expect("the tracker lives while it serves")
    }

    /// The source, if `plugin` owns it (Codex's errors otherwise).
    async fn owned(&self, plugin: &str, id: &str) -> Result<ReleaseSource, ErrorObject> {
        let id = id.to_owned();
        let source = self.stored(move |store| store.source(&id)).await.map_err(|error| host_fault(plugin, error))?;
        let source = source.ok_or_else(|| ErrorObject::new(ErrorCode::NotFound, "source not found"))?;
        if source.plugin != plugin {
            return Err(ErrorObject::new(ErrorCode::AuthFailed, "source does not belong to calling plugin"));
        }
        Ok(source)
    }

    /// Registers the plugin's sources, and logs what came of it.
    async fn register(
        &self,
        plugin: &str,
        capability: &ReleaseSourceCapability,
        params: RegisterSourcesParams,
    ) -> Result<RegisterSourcesResult, ErrorObject> {
        let registered = self.register_checked(plugin, capability, params).await;
        match &registered {
            Ok(done) => tracing::info!(plugin, done.registered, done.pruned, "release sources registered"),
            Err(error) => tracing::warn!(plugin, "release sources refused: {}", error.message),
        }
        registered
    }

    async fn register_checked(
        &self,
        plugin: &str,
        capability: &ReleaseSourceCapability,
        params: RegisterSourcesParams,
    ) -> Result<RegisterSourcesResult, ErrorObject> {
        check_sources(&params.sources, capability).map_err(invalid)?;
        let owner = plugin.to_owned();
        let registering = self.stored(move |store| store.register(&owner, &params.sources, now_micros())).await;
        let (registered, pruned) = registering.map_err(|error| host_fault(plugin, error))?;
        Ok(RegisterSourcesResult { registered, pruned })
    }

    async fn list_tracked(
        &self,
        plugin: &str,
        capability: &ReleaseSourceCapability,
        params: ListTrackedParams,
    ) -> Result<ListTrackedResult, ErrorObject> {
        self.owned(plugin, &params.source_id).await?;
        // Codex reads a limit of 0 as "no limit" and then pages forever; here it is the default.
        let limit = match params.limit {
            None | Some(0) => DEFAULT_TRACKED_PAGE,
            Some(limit) => limit.min(MAX_TRACKED_PAGE),
        } as usize;
        let offset = params.offset.unwrap_or(0).min(i64::MAX as u64);
        let series = self.library(move |library| library.tracked_series(offset, limit)).await;
        let series = series.map_err(|error| host_fault(plugin, error))?;
        let tracked: Vec<_> = series.iter().map(|series| tracked_series(series, capability)).collect();
        let next_offset = (tracked.len() == limit).then(|| offset.saturating_add(limit as u64));
        Ok(ListTrackedResult { tracked, next_offset })
    }

    async fn count_tracked(&self, plugin: &str, params: SourceParams) -> Result<CountTrackedResult, ErrorObject> {
        self.owned(plugin, &params.source_id).await?;
        let total = self.library(|library| library.count_tracked()).await.map_err(|error| host_fault(plugin, error))?;
        Ok(CountTrackedResult { total })
    }

    fn report_progress(&self, plugin: &str, params: ReportProgressParams) -> ReportProgressResult {
        let active = self.active_poll(plugin, None);
        let emitted = active.is_some_and(|active| active.report(params.current, params.total, params.message));
        ReportProgressResult { emitted }
    }

    async fn record_request(
        &self,
        plugin: &str,
        params: RecordParams,
    ) -> Result<codex_plugin_protocol::types::releases::RecordResult, ErrorObject> {
        let source = self.owned(plugin, &params.source_id).await?;
        match self.record(&source, &params.candidate).await {
            Ok(recorded) => {
                self.count_recorded(plugin, &source.id, &recorded);
                Ok(recorded.result)
            }
            Err(Refused::Candidate(why)) => {
                self.count_rejected(plugin, &source.id, &why);
                Err(invalid(why))
            }
            Err(Refused::Host(error)) => {
                self.count_rejected(plugin, &source.id, &error.to_string());
                Err(host_fault(plugin, error))
            }
        }
    }

    async fn source_state(&self, plugin: &str, params: SourceParams) -> Result<SourceState, ErrorObject> {
        let state = self.owned(plugin, &params.source_id).await?.state;
        Ok(SourceState {
            etag: state.etag,
            last_polled_at: state.last_polled_at.map(rfc3339_utc),
            last_error: state.last_error,
            last_error_at: state.last_error_at.map(rfc3339_utc),
        })
    }

    async fn set_source_state(
        &self,
        plugin: &str,
        params: SetSourceStateParams,
    ) -> Result<SetSourceStateResult, ErrorObject> {
        self.owned(plugin, &params.source_id).await?;
        let etag = params.etag.ok_or_else(|| invalid("no writable fields supplied".into()))?;
        check_etag(&etag).map_err(invalid)?;
        let (id, kept) = (params.source_id, etag.clone());
        let written = self.stored(move |store| store.set_etag(&id, &kept, now_micros())).await;
        written.map_err(|error| host_fault(plugin, error))?;
        Ok(SetSourceStateResult { success: true, etag })
    }
}
