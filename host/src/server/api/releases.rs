//! `/api/v1/release-sources` and `/api/v1/releases`: the sources release plugins
//! registered, a poll now (an admin's job), the tracked series and the announced releases.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::{Admin, Caller};
use super::super::body::QueryParams;
use super::super::error::ApiError;
use crate::library::LibraryPort;
use crate::release_tracking::LedgerFilter;

type Answer = Result<Json<Value>, ApiError>;

/// Releases per answer at most.
const MAX_RELEASES: usize = 500;

/// The sources; a user sees what they are, not their settings or poll state (an upstream
/// error may name a feed's address with its key).
pub async fn sources(caller: Caller, State(state): State<AppState>) -> Answer {
    let sources = super::blocking(&state, |state| Ok(state.services().releases.sources(None)?)).await?;
    let shown: Vec<Value> = sources
        .into_iter()
        .map(|source| match caller.0.is_admin() {
            true => json!(source),
            false => json!({
                "id": source.id,
                "plugin": source.plugin,
                "sourceKey": source.source_key,
                "displayName": source.display_name,
                "kind": source.kind,
                "enabled": source.enabled,
            }),
        })
        .collect();
    Ok(Json(json!({"sources": shown})))
}

/// Polls the source now, as a job; its progress is what the plugin reports.
pub async fn poll(
    _: Admin,
    State(state): State<AppState>,
    Path(source): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(json!(start_poll(&state, &source)?))))
}

/// Starts a poll of `source` as an admin's job.
pub fn start_poll(state: &AppState, source: &str) -> Result<super::super::jobs::JobState, ApiError> {
    let releases = state.services().releases.clone();
    let found = releases.source(source)?;
    let subject = json!({"source": found.id, "plugin": found.plugin});
    let source = source.to_owned();
    Ok(state.jobs().start("poll", &crate::access::Principal::Admin, subject, move |progress| async move {
        let report = Box::new(move |step| progress.report(json!(step)));
        Ok(json!(releases.poll(&source, Some(report)).await?))
    }))
}

/// `?series=&state=&source=&limit=`: which announced releases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseQuery {
    pub series: Option<String>,
    pub state: Option<String>,
    pub source: Option<String>,
    pub limit: Option<usize>,
}

pub async fn announced(
    _: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ReleaseQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_RELEASES).contains(&limit) {
        return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_RELEASES}")));
    }
    let releases = &state.services().releases;
    let source = query.source.map(|source| releases.source(&source).map(|found| found.id)).transpose()?;
    let filter = LedgerFilter { series: query.series, state: query.state, source, limit };
    Ok(Json(json!({"releases": releases.ledger(&filter)?})))
}

/// `?offset=&limit=`: a page of the tracked series.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedQuery {
    pub offset: Option<u64>,
    pub limit: Option<usize>,
}

pub async fn tracked(
    _: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TrackedQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_RELEASES).contains(&limit) {
        return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_RELEASES}")));
    }
    let library = state.services().library.as_ref();
    let series = library.tracked_series(query.offset.unwrap_or(0), limit)?;
    Ok(Json(json!({"total": library.count_tracked()?, "series": series})))
}
