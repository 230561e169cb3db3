//! `/api/v1/libraries` and `/api/v1/series`: the library (series and their books),
//! a metadata search with a plugin, an apply with its dry run (the preview), and an
//! admin's auto-match of a whole library as a job.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::super::AppState;
use super::super::auth::{Admin, Caller};
use super::super::body::{JsonBody, QueryParams};
use super::super::error::ApiError;
use crate::library::LibraryPort;
use crate::pipeline::{ApplyOptions, RunOptions};

type Answer = Result<Json<Value>, ApiError>;

/// Series per page at most.
const MAX_PAGE: usize = 500;

pub async fn libraries(_: Caller, State(state): State<AppState>) -> Answer {
    let libraries = super::blocking(&state, |state| Ok(state.services().library.libraries()?)).await?;
    Ok(Json(json!({"libraries": libraries})))
}

/// `?after=ID&limit=N`: the page of series after `after`, in id order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

pub async fn series_page(
    _: Caller,
    State(state): State<AppState>,
    Path(library): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_PAGE}")));
    }
    Ok(Json(
        super::blocking(&state, move |state| series_page_json(state, &library, query.after.as_deref(), limit)).await?,
    ))
}

/// A page of a library's series, whole.
pub fn series_page_json(state: &AppState, library: &str, after: Option<&str>, limit: usize) -> Result<Value, ApiError> {
    let port = state.services().library.as_ref();
    port.library(library)?;
    let page = port.series_page(library, after, limit)?;
    let series = page.ids.iter().map(|id| port.series(id)).collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"library": library, "series": series, "next": page.next}))
}

pub async fn series(_: Caller, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    Ok(Json(super::blocking(&state, move |state| series_json(state, &id)).await?))
}

/// A series and its books.
pub fn series_json(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let port = state.services().library.as_ref();
    Ok(json!({"series": port.series(id)?, "books": port.books(id)?}))
}

/// A search with a plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub plugin: String,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Searches the plugin for the series: the query its rules and template built, and the
/// results.
pub async fn search(
    _: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<SearchRequest>,
) -> Answer {
    if request.limit.is_some_and(|limit| !(1..=100).contains(&limit)) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 100"));
    }
    let found = state.services().pipeline.search_series(&request.plugin, &id, request.limit).await?;
    Ok(Json(json!(found)))
}

/// An apply: which of the plugin's results, a dry run (the preview) or not, and only some
/// fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyRequest {
    pub plugin: String,
    pub external_id: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub only: Option<BTreeSet<String>>,
}

/// Fetches the result and applies it (or, in a dry run, shows each field's current and
/// new value and outcome).
pub async fn apply(
    _: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ApplyRequest>,
) -> Answer {
    if request.external_id.trim().is_empty() {
        return Err(ApiError::bad_request("`externalId` is empty: give one of the search's results"));
    }
    let options = ApplyOptions { dry_run: request.dry_run, only: request.only };
    let report = state.services().pipeline.apply_series(&request.plugin, &id, &request.external_id, &options).await?;
    Ok(Json(json!(report)))
}

/// An auto-match of a library.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoMatchRequest {
    pub plugin: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Start over instead of resuming an interrupted run.
    #[serde(default)]
    pub fresh: bool,
}

/// Starts an auto-match of every series of the library as a job.
pub async fn auto_match(
    _: Admin,
    State(state): State<AppState>,
    Path(library): Path<String>,
    JsonBody(request): JsonBody<AutoMatchRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let services = state.services();
    services.library.library(&library)?;
    services.host.registry().get(&request.plugin)?;
    let pipeline = services.pipeline.clone();
    let subject = json!({"plugin": request.plugin, "library": library});
    let options = RunOptions { dry_run: request.dry_run, fresh: request.fresh, ..RunOptions::default() };
    let job = state.jobs().start("auto-match", &crate::access::Principal::Admin, subject, move |progress| async move {
        let report = move |step: &crate::pipeline::Progress| progress.report(json!(step));
        let run = pipeline.auto_match_library(&request.plugin, &library, &options, &report).await?;
        Ok(json!({"plugin": run.plugin, "library": run.library, "dryRun": run.dry_run, "tally": run.tally, "seconds": run.seconds, "reports": run.reports}))
    });
    Ok((StatusCode::ACCEPTED, Json(json!(job))))
}
