//! `/api/v1/recommendations`: a user's recommendations from their recommendation plugins,
//! merged, a refresh, and a dismissal.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::body::{JsonBody, QueryParams};
use super::super::error::ApiError;
use super::connections::ForUser;
use codex_plugin_protocol::types::recommendations::DismissReason;

type Answer = Result<Json<Value>, ApiError>;

pub async fn list(caller: Caller, State(state): State<AppState>, QueryParams(query): QueryParams<ForUser>) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    let list = state.services().integrations.recommendations(&user, false).await?;
    Ok(Json(json!({"user": user, "recommendations": list.recommendations, "sources": list.sources})))
}

/// Asks every recommendation plugin again (each answer kept for its plugin's max age).
pub async fn refresh(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ForUser>,
) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    let list = state.services().integrations.recommendations(&user, true).await?;
    Ok(Json(json!({"user": user, "recommendations": list.recommendations, "sources": list.sources})))
}

/// A recommendation to dismiss.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dismissal {
    #[serde(default)]
    pub user: Option<String>,
    pub external_id: String,
    #[serde(default)]
    pub reason: Option<DismissReason>,
}

pub async fn dismiss(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(dismissal): JsonBody<Dismissal>,
) -> Answer {
    let user = caller.user(dismissal.user.as_deref())?;
    let report = state.services().integrations.dismiss(&user, &dismissal.external_id, dismissal.reason).await?;
    Ok(Json(json!(report)))
}
