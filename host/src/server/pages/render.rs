//! The page's templates (Handlebars, embedded in the binary, every value HTML-escaped) and
//! how a page is answered: the layout around it, with who is signed in, the navigation, a
//! message, and the headers every page gets (a strict CSP: no inline script, nothing from
//! elsewhere).

use axum::response::{Html, IntoResponse, Response};
use handlebars::Handlebars;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::session::Session;

/// What a page may load: its own stylesheet and script, its own images; nothing inline.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' https: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("templates/layout.hbs")),
    ("login", include_str!("templates/login.hbs")),
    ("message", include_str!("templates/message.hbs")),
    ("plugins", include_str!("templates/plugins.hbs")),
    ("plugin_new", include_str!("templates/plugin_new.hbs")),
    ("plugin", include_str!("templates/plugin.hbs")),
    ("config_fields", include_str!("templates/config_fields.hbs")),
    ("integrations", include_str!("templates/integrations.hbs")),
    ("integration", include_str!("templates/integration.hbs")),
    ("job", include_str!("templates/job.hbs")),
    ("recommendations", include_str!("templates/recommendations.hbs")),
    ("library", include_str!("templates/library.hbs")),
    ("series", include_str!("templates/series.hbs")),
    ("releases", include_str!("templates/releases.hbs")),
];

/// The registry of every template (Handlebars' built-in `eq`, `and`, `not`, `len`, and
/// `json` to show a value as text); a value the data lacks renders empty.
pub fn templates() -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(false);
    registry.set_dev_mode(false);
    for (name, source) in TEMPLATES {
        registry.register_template_string(name, *source).unwrap_or_else(|error| panic!("template {name}: {error}"));
    }
    registry.register_helper("json", Box::new(json_helper));
    registry
}

handlebars::handlebars_helper!(json_helper: |value: Value| {
    match &value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
});

/// A message shown above a page's content.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Flash {
    pub error: Option<String>,
    pub notice: Option<String>,
}

impl Flash {
    pub fn error(text: impl Into<String>) -> Self {
        Self { error: Some(text.into()), notice: None }
    }

    pub fn notice(text: impl Into<String>) -> Self {
        Self { error: None, notice: Some(text.into()) }
    }
}

/// Renders `template` with `data` inside the layout.
pub fn page(
    state: &AppState,
    status: StatusCode,
    session: Option<&Session>,
    title: &str,
    template: &str,
    data: Value,
    flash: &Flash,
) -> Response {
    let templates = state.templates();
    let body = match templates.render(template, &data) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(template, "a page could not be rendered: {error}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered (see the server's log)")
                .into_response();
        }
    };
    let layout = json!({
        "title": title,
        "body": body,
        "flash": flash,
        "session": session.map(|session| json!({
            "admin": session.is_admin(),
            "user": session.user(),
            "csrf": session.csrf,
        })),
    });
    match templates.render("layout", &layout) {
        Ok(html) => with_headers((status, Html(html)).into_response()),
        Err(error) => {
            tracing::warn!("the layout could not be rendered: {error}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered (see the server's log)").into_response()
        }
    }
}

/// A page that only says why a request was refused.
pub fn refused_page(state: &AppState, status: StatusCode, text: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Refused");
    page(state, status, None, title, "message", json!({"heading": title, "text": text}), &Flash::default())
}

/// Every page's headers.
pub fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes_what_it_shows() {
        let templates = templates();
        let shown = templates.render("message", &json!({"text": "<script>alert(1)</script>"})).unwrap();
        assert!(shown.contains("&lt;script&gt;") && !shown.contains("<script>"), "{shown}");
        let hint = templates.render("plugin", &json!({"plugin": {"id": "x"}})).unwrap();
        assert!(hint.contains("{{metadata.title}}"), "the template hint is shown as written");
    }
}
