//! Release tracking's page: the sources (an admin polls one now), the tracked series, and
//! the announced releases.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use serde_json::json;

use super::super::AppState;
use super::super::error::ApiError;
use super::admin_only;
use super::render::{Flash, page, refused_page};
use super::session::{PageForm, Session};
use crate::library::LibraryPort;
use crate::release_tracking::LedgerFilter;

pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let admin = session.is_admin();
    let shown = super::super::api::blocking(&state, move |state| {
        let services = state.services();
        let sources = services.releases.sources(None)?;
        let library = services.library.as_ref();
        let tracked = json!({"total": library.count_tracked()?, "series": library.tracked_series(0, 100)?});
        let releases = services.releases.ledger(&LedgerFilter { limit: 100, ..LedgerFilter::default() })?;
        Ok(json!({"admin": admin, "sources": sources, "tracked": tracked, "releases": releases}))
    })
    .await;
    match shown {
        Ok(mut data) => {
            data["csrf"] = json!(session.csrf);
            page(&state, StatusCode::OK, Some(&session), "Releases", "releases", data, &Flash::default())
        }
        Err(error) => refused_page(&state, error.status, &error.message),
    }
}

/// Polls a source now, as a job; the browser goes to the job's page.
pub async fn poll(State(state): State<AppState>, Path(source): Path<String>, form: PageForm) -> Response {
    if let Some(refused) = admin_only(&state, &form.session) {
        return refused;
    }
    match super::super::api::releases::start_poll(&state, &source) {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(ApiError { status, message }) => refused_page(&state, status, &message),
    }
}
