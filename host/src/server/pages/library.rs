//! The library's pages: its series, one series with a search through a metadata plugin,
//! the preview of what applying a result would change (field, current, new, outcome), and
//! the apply.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::api::library::{series_json, series_page_json};
use super::super::error::ApiError;
use super::render::{Flash, page, refused_page};
use super::session::{PageForm, Session};
use crate::library::LibraryPort as _;
use crate::pipeline::ApplyOptions;

/// Series shown per library.
const PAGE: usize = 50;

/// `?library=ID&after=ID`: a later page of one library.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LibraryPage {
    pub library: Option<String>,
    pub after: Option<String>,
}

pub async fn list(State(state): State<AppState>, session: Session, Query(query): Query<LibraryPage>) -> Response {
    let shown = super::super::api::blocking(&state, move |state| {
        let mut shown = Vec::new();
        for library in state.services().library.libraries()? {
            if query.library.as_ref().is_some_and(|only| *only != library.id) {
                continue;
            }
            let after = query.after.as_deref().filter(|_| query.library.is_some());
            let mut page = series_page_json(state, &library.id, after, PAGE)?;
            page["id"] = json!(library.id);
            page["name"] = json!(library.name);
            shown.push(page);
        }
        Ok(shown)
    })
    .await;
    match shown {
        Ok(libraries) => page(
            &state,
            StatusCode::OK,
            Some(&session),
            "Library",
            "library",
            json!({"libraries": libraries}),
            &Flash::default(),
        ),
        Err(error) => refused_page(&state, error.status, &error.message),
    }
}

pub async fn show(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    series_page(&state, &session, &id, Value::Null, StatusCode::OK, &Flash::default())
}

/// The series' page, with `extra` (a search's results, a preview or an apply's report).
fn series_page(
    state: &AppState,
    session: &Session,
    id: &str,
    extra: Value,
    status: StatusCode,
    flash: &Flash,
) -> Response {
    let shown = match series_json(state, id) {
        Ok(shown) => shown,
        Err(error) => return refused_page(state, error.status, &error.message),
    };
    let chosen = extra["plugin"].as_str().map(str::to_owned);
    let providers = providers(state, chosen.as_deref());
    let title =
        shown["series"]["metadata"]["title"].as_str().or(shown["series"]["name"].as_str()).unwrap_or(id).to_owned();
    let mut data = json!({"csrf": session.csrf, "providers": providers});
    for (key, value) in shown.as_object().into_iter().flatten().chain(extra.as_object().into_iter().flatten()) {
        data[key] = value.clone();
    }
    page(state, status, Some(session), &title, "series", data, flash)
}

/// Enabled plugins whose manifest provides series metadata.
fn providers(state: &AppState, chosen: Option<&str>) -> Vec<Value> {
    let records = state.services().host.registry().list().unwrap_or_default();
    records
        .into_iter()
        .filter(|record| record.enabled)
        .filter_map(|record| {
            let manifest = record.manifest?;
            let targets = manifest.pointer("/capabilities/metadataProvider")?.as_array()?;
            targets.iter().any(|target| target == "series").then(|| {
                let id = record.id.as_str().to_owned();
                let name = manifest["displayName"].as_str().unwrap_or(&id).to_owned();
                json!({"selected": chosen == Some(id.as_str()), "id": id, "name": name})
            })
        })
        .collect()
}

/// `search` (with a plugin), `preview` (a result, as a dry run) or `apply`.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    form: PageForm,
) -> Response {
    let plugin = form.get("plugin").unwrap_or_default().trim().to_owned();
    let outcome: Result<(Value, Flash), ApiError> = async {
        if plugin.is_empty() {
            return Err(ApiError::bad_request("choose a plugin"));
        }
        let pipeline = &state.services().pipeline;
        match action.as_str() {
            "search" => {
                let found = pipeline.search_series(&plugin, &id, None).await?;
                Ok((json!({"plugin": plugin, "found": found}), Flash::default()))
            }
            "preview" | "apply" => {
                let external = form.required("externalId", "The result to apply").map_err(ApiError::bad_request)?;
                let options = ApplyOptions { dry_run: action == "preview", only: None };
                let report = pipeline.apply_series(&plugin, &id, &external, &options).await?;
                let flash = match report.dry_run {
                    true => Flash::default(),
                    false => Flash::notice(if report.written { "Applied." } else { "Nothing changed." }),
                };
                Ok((json!({"plugin": plugin, "report": report}), flash))
            }
            _ => Err(ApiError::not_found(format!("series have no action `{action}`"))),
        }
    }
    .await;
    match outcome {
        Ok((extra, flash)) => series_page(&state, &form.session, &id, extra, StatusCode::OK, &flash),
        Err(error) => {
            let status = super::form_status(&error);
            series_page(&state, &form.session, &id, json!({"plugin": plugin}), status, &Flash::error(error.message))
        }
    }
}
