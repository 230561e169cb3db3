//! Who is asking: an API token, from the `Authorization: Bearer` header (programs) or the
//! page's cookie (a browser). The cookie is taken only for reading: a change made with it
//! comes through the page's forms, which carry a CSRF token of their own.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Method, StatusCode, header};

use super::AppState;
use super::error::ApiError;
use crate::access::{Principal, bearer};

/// The page's cookie: `__Host-` (Secure, this host only, path /) when served over https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-codex_token" } else { "codex_token" }
}

/// Any principal with a live token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// An admin.
#[derive(Debug, Clone)]
pub struct Admin;

impl Caller {
    /// Refuses a user acting for someone else, as if what they asked for did not exist.
    pub fn act_for(&self, user: &str) -> Result<(), ApiError> {
        match self.0.may_act_for(user) {
            true => Ok(()),
            false => Err(ApiError::not_found(format!("no user `{user}` of yours"))),
        }
    }

    /// The user a request acts for: the caller's own, or for an admin the one named.
    pub fn user(&self, named: Option<&str>) -> Result<String, ApiError> {
        match (&self.0, named) {
            (Principal::User(own), None) => Ok(own.clone()),
            (Principal::User(_), Some(user)) => self.act_for(user).map(|()| user.to_owned()),
            (Principal::Admin, Some(user)) => Ok(user.to_owned()),
            (Principal::Admin, None) => {
                Err(ApiError::bad_request("an admin acting for a user names them: `?user=USER` or `\"user\"`"))
            }
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => value.to_str().ok().and_then(bearer).map(str::to_owned).ok_or_else(|| {
                unauthorized("the Authorization header is not `Bearer cph_…`; `token create` makes a token")
            })?,
            None => {
                let cookie = cookie_token(parts, state.secure_cookies()).ok_or_else(|| {
                    unauthorized("this needs an API token: `Authorization: Bearer cph_…` (`token create` makes one)")
                })?;
                if !matches!(parts.method, Method::GET | Method::HEAD) {
                    return Err(ApiError::forbidden(
                        "a change through the API needs the token in the Authorization header, not the page's cookie",
                    ));
                }
                cookie
            }
        };
        let principal = state.services().tokens.principal(&token)?;
        principal.map(Caller).ok_or_else(|| unauthorized("this token is unknown or revoked; `token list` shows yours"))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Principal::Admin => Ok(Admin),
            Principal::User(_) => Err(ApiError::forbidden("this is for admins; a user's token may not do it")),
        }
    }
}

/// The token in the page's cookie, if it has a token's shape.
pub fn cookie_token(parts: &Parts, secure: bool) -> Option<String> {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
    let token = jar.get(cookie_name(secure))?.value().to_owned();
    crate::access::looks_like_token(&token).then_some(token)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}
