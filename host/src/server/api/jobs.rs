//! `/api/v1/jobs`: long jobs' states, one at a time, or followed as server-sent events
//! (`progress` as it goes, then one `done`; the stream ends then, or when the server stops).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::jobs::{JobState, JobStatus};

pub async fn list(caller: Caller, State(state): State<AppState>) -> Json<Value> {
    Json(json!({"jobs": state.jobs().list(&caller.0)}))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state.jobs().watch(&id, &caller.0)?.borrow().clone();
    Ok(Json(json!(job)))
}

pub async fn events(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = state.jobs().watch(&id, &caller.0)?;
    let stream = futures::stream::unfold(
        (receiver, state.stopping(), true, false),
        |(mut receiver, mut stopping, first, ended)| async move {
            if ended {
                return None;
            }
            if !first {
                tokio::select! {
                    changed = receiver.changed() => changed.ok()?,
                    _ = stopping.wait_for(|stopping| *stopping) => return None,
                }
            }
            let job: JobState = receiver.borrow_and_update().clone();
            let done = job.status != JobStatus::Running;
            let event = Event::default().event(if done { "done" } else { "progress" }).json_data(&job).ok()?;
            Some((Ok(event), (receiver, stopping, false, done)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
