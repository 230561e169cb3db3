//! The page: HTML served by the same process, no build step. Each page reads through the
//! same functions as the API and each form changes through them, so the rules live in one
//! place; a form's fault re-renders its page with the message and changes nothing. Pages
//! only showing data need no JavaScript; the job page follows its progress with a little.

pub mod render;
pub mod session;

mod account;
mod integrations;
mod library;
mod plugins;
mod releases;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};

use super::AppState;
use render::Flash;
use session::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/assets/{file}", get(asset))
        .route("/plugins", get(plugins::list))
        .route("/plugins/new", get(plugins::new_page).post(plugins::add))
        .route(
            "/plugins/new-component",
            post(plugins::add_component).layer(axum::extract::DefaultBodyLimit::max(plugins::COMPONENT_LIMIT)),
        )
        .route("/plugins/{id}", get(plugins::show))
        .route("/plugins/{id}/{action}", post(plugins::act))
        .route("/integrations", get(integrations::list))
        .route("/integrations/{plugin}", get(integrations::show))
        .route("/integrations/{plugin}/{action}", post(integrations::act))
        .route("/jobs/{id}", get(integrations::job))
        .route("/recommendations", get(integrations::recommendations))
        .route("/recommendations/{action}", post(integrations::recommendations_act))
        .route("/library", get(library::list))
        .route("/series/{id}", get(library::show))
        .route("/series/{id}/{action}", post(library::act))
        .route("/releases", get(releases::list))
        .route("/releases/poll/{source}", post(releases::poll))
}

/// An admin starts at the plugins, a user at their integrations.
async fn home(session: Session) -> Redirect {
    Redirect::to(if session.is_admin() { "/plugins" } else { "/integrations" })
}

/// The stylesheet and the script, embedded.
async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body): (&str, &'static str) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", include_str!("assets/style.css")),
        "page.js" => ("text/javascript; charset=utf-8", include_str!("assets/page.js")),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// A page only for admins: the refusal a user gets, if the session is one.
fn admin_only(state: &AppState, session: &Session) -> Option<Response> {
    (!session.is_admin()).then(|| render::refused_page(state, StatusCode::FORBIDDEN, "This page is for admins."))
}

/// A page only for users (an admin has no integrations of their own).
fn user_only<'a>(state: &AppState, session: &'a Session) -> Result<&'a str, Box<Response>> {
    session.user().ok_or_else(|| {
        Box::new(render::refused_page(
            state,
            StatusCode::FORBIDDEN,
            "This page is a user's: sign in with a user's token (`token create --user NAME`).",
        ))
    })
}

/// The status of a page re-rendered for a form's fault: the host's own failures as they
/// are, anything the form could mend (a bad value, an unknown id) a 400.
fn form_status(error: &super::error::ApiError) -> StatusCode {
    if error.status.is_server_error() { error.status } else { StatusCode::BAD_REQUEST }
}

/// After a form that worked: back to `to`, with the notice `done` names.
fn done(to: &str, notice: &str) -> Response {
    Redirect::to(&format!("{to}?done={notice}")).into_response()
}

/// The message of a `?done=` key (a fixed set: nothing from the address reaches the page).
fn notice(key: Option<&str>) -> Flash {
    let text = match key {
        Some("added") => "Registered, disabled: review its permissions, then enable it.",
        Some("granted") => "Permissions saved.",
        Some("enabled") => "Enabled and started: it answered.",
        Some("disabled") => "Disabled.",
        Some("reset") => "Its faults are forgotten and it is enabled.",
        Some("tested") => "It started, answered and stopped.",
        Some("configured") => "Configuration saved; it restarts with it.",
        Some("searched") => "Search settings saved.",
        Some("credentials") => "Credentials stored.",
        Some("removed") => "Removed, with its users, credentials and storage.",
        Some("connected") => "Connected.",
        Some("settings") => "Settings saved.",
        Some("disconnected") => "Disconnected.",
        Some("dismissed") => "Dismissed: it will not be recommended again.",
        Some("refreshed") => "Recommendations asked for again.",
        Some("applied") => "Applied.",
        _ => return Flash::default(),
    };
    Flash::notice(text)
}

/// `?done=KEY` of a page's address.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    pub done: Option<String>,
}
