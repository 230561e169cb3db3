//! A release source's requests to the host (`releases/*`): register its sources, list and
//! count the tracked series, report progress, record releases, keep a source's etag. The
//! host serves them only to a plugin whose manifest declares `releaseSource`.

use codex_plugin_protocol::types::releases::{
    CountTrackedResult, ListTrackedParams, ListTrackedResult, RecordParams, RecordResult, RegisterSourcesParams,
    RegisterSourcesResult, ReleaseCandidate, ReportProgressParams, ReportProgressResult, SetSourceStateParams,
    SetSourceStateResult, SourceParams, SourceRegistration, SourceState,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::rc::Rc;

use crate::link::HostLink;
use crate::storage::HostError;

/// The host's release records, as this plugin may reach them. Cheap to clone.
#[derive(Clone)]
pub struct Releases {
    link: Rc<HostLink>,
}

impl Releases {
    pub(crate) fn new(link: Rc<HostLink>) -> Self {
        Self { link }
    }

    /// Makes `sources` this plugin's whole set of sources (the others are removed).
    pub async fn register_sources(&self, sources: Vec<SourceRegistration>) -> Result<RegisterSourcesResult, HostError> {
        self.call("releases/register_sources", &RegisterSourcesParams { sources }).await
    }

    /// One page of the tracked series, for `source_id`.
    pub async fn list_tracked(&self, source_id: &str, offset: u64, limit: u32) -> Result<ListTrackedResult, HostError> {
        let params = ListTrackedParams { source_id: source_id.to_owned(), limit: Some(limit), offset: Some(offset) };
        self.call("releases/list_tracked", &params).await
    }

    pub async fn count_tracked(&self, source_id: &str) -> Result<u64, HostError> {
        let result: CountTrackedResult =
            self.call("releases/count_tracked", &SourceParams { source_id: source_id.to_owned() }).await?;
        Ok(result.total)
    }

    /// Tells the host how far the poll is; `false` when it was not shown.
    pub async fn report_progress(&self, current: u64, total: u64, message: Option<String>) -> Result<bool, HostError> {
        let result: ReportProgressResult =
            self.call("releases/report_progress", &ReportProgressParams { current, total, message }).await?;
        Ok(result.emitted)
    }

    /// Records a release found on `source_id`.
    pub async fn record(&self, source_id: &str, candidate: &ReleaseCandidate) -> Result<RecordResult, HostError> {
        let candidate = serde_json::to_value(candidate)
            .map_err(|error| HostError::Malformed { method: "releases/record", why: error.to_string() })?;
        self.call("releases/record", &RecordParams { source_id: source_id.to_owned(), candidate }).await
    }

    pub async fn source_state(&self, source_id: &str) -> Result<SourceState, HostError> {
        self.call("releases/source_state/get", &SourceParams { source_id: source_id.to_owned() }).await
    }

    /// Keeps `etag` as the source's.
    pub async fn set_etag(&self, source_id: &str, etag: &str) -> Result<(), HostError> {
        let params = SetSourceStateParams { source_id: source_id.to_owned(), etag: Some(etag.to_owned()) };
        let _: SetSourceStateResult = self.call("releases/source_state/set", &params).await?;
        Ok(())
    }

    async fn call<P: Serialize, R: DeserializeOwned>(&self, method: &'static str, params: &P) -> Result<R, HostError> {
        let malformed = |error: serde_json::Error| HostError::Malformed { method, why: error.to_string() };
        let params = serde_json::to_value(params).map_err(malformed)?;
        let answer = self.link.request(method, Some(&params)).await?;
        serde_json::from_value(answer).map_err(malformed)
    }
}
