//! Signing in with an API token (kept in an HttpOnly, SameSite=Strict cookie; `__Host-` and
//! Secure behind https) and signing out.

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use http::StatusCode;
use serde_json::json;

use super::super::AppState;
use super::super::auth::cookie_name;
use super::render::{Flash, page};
use super::session::PageForm;

pub async fn login_page(State(state): State<AppState>) -> Response {
    page(&state, StatusCode::OK, None, "Sign in", "login", json!({}), &Flash::default())
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

pub async fn login(State(state): State<AppState>, jar: CookieJar, Form(form): Form<SignIn>) -> Response {
    let token = form.token.trim().to_owned();
    let refused =
        |text: &str| page(&state, StatusCode::UNAUTHORIZED, None, "Sign in", "login", json!({}), &Flash::error(text));
    if !crate::access::looks_like_token(&token) {
        return refused("That is not an API token: they start with cph_ and are 47 characters long.");
    }
    match state.services().tokens.principal(&token) {
        Ok(Some(_)) => (jar.add(session_cookie(&state, token)), Redirect::to("/")).into_response(),
        Ok(None) => refused("This token is unknown or revoked; ask an admin for a new one."),
        Err(error) => refused(&error.to_string()),
    }
}

pub async fn logout(State(state): State<AppState>, jar: CookieJar, _form: PageForm) -> Response {
    // Removed with the attributes it was set with: a browser ignores a `__Host-` cookie
    // (even an expired one) sent without Secure.
    (jar.remove(session_cookie(&state, String::new())), Redirect::to("/login")).into_response()
}

/// The page's session cookie: HttpOnly, SameSite=Strict, for the whole site; Secure (and
/// named `__Host-…`) behind https.
fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    Cookie::build((cookie_name(state.secure_cookies()), token))
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies())
        .same_site(SameSite::Strict)
        .build()
}
