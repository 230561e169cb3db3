//! Who uses the page: the token in its cookie (set by the sign-in form: HttpOnly,
//! SameSite=Strict, and `__Host-` with Secure when the public URL is https), and the CSRF
//! token every form carries, derived from that token so that only a page the server
//! rendered for this session has it. A page without a session sends the browser to sign in.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::super::AppState;
use super::super::auth::cookie_token;
use super::render::refused_page;
use crate::access::Principal;

/// A signed-in page user.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// What this session's forms carry in their `csrf` field.
    pub csrf: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.principal.is_admin()
    }

    /// The user this session acts for; an admin has none of their own.
    pub fn user(&self) -> Option<&str> {
        match &self.principal {
            Principal::User(user) => Some(user),
            Principal::Admin => None,
        }
    }
}

/// The CSRF token of the session whose cookie holds `token`.
pub fn csrf_token(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"codex-plugin-host page csrf\0");
    hasher.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let sign_in = || Redirect::to("/login").into_response();
        let Some(token) = cookie_token(parts, state.secure_cookies()) else { return Err(sign_in()) };
        match state.services().tokens.principal(&token) {
            Ok(Some(principal)) => Ok(Self { principal, csrf: csrf_token(&token) }),
            Ok(None) => Err(sign_in()),
            Err(error) => Err(refused_page(state, http::StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())),
        }
    }
}

/// A form sent by a signed-in page: its fields, once its CSRF token matched the session's.
pub struct PageForm {
    pub session: Session,
    pub fields: Vec<(String, String)>,
}

impl PageForm {
    /// The value of `name`, if the form has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The value of `name`, trimmed; an empty or missing one is an error naming it.
    pub fn required(&self, name: &str, label: &str) -> Result<String, String> {
        match self.get(name).map(str::trim) {
            Some(value) if !value.is_empty() => Ok(value.to_owned()),
            _ => Err(format!("{label} is missing")),
        }
    }
}

impl FromRequest<AppState> for PageForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|rejection| refused_page(state, rejection.status(), &rejection.body_text()))?;
        let sent = fields.iter().find(|(key, _)| key == "csrf").map(|(_, value)| value.as_str()).unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return Err(refused_page(
                state,
                http::StatusCode::FORBIDDEN,
                "this form did not come from this session's page (its CSRF token does not match); reload the page and send it again",
            ));
        }
        Ok(Self { session, fields })
    }
}
