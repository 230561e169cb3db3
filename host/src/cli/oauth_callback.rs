//! The command line's side of an OAuth flow (RFC 8252): a listener on a loopback port for
//! the provider's redirect (a port of its own per flow, unless the plugin's configured
//! redirect URI names one), the URL printed and, when a desktop is there, opened; the
//! callback finishes the flow and its page says how it went.

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

use super::Failure;
use super::pipeline_host::{host_failure, integration_failure};
use crate::integrations::{Integrations, OAuthConnected};
use crate::oauth::STATE_LIFETIME;

type Finished = Arc<Mutex<Option<tokio::sync::oneshot::Sender<Result<OAuthConnected, Failure>>>>>;

/// Runs a whole flow for `user` with `plugin`: answers once the callback came and the
/// tokens are stored, or after [`STATE_LIFETIME`].
pub async fn connect(
    integrations: &Integrations,
    plugin: &str,
    user: &str,
    port: Option<u16>,
    open_browser: bool,
) -> Result<OAuthConnected, Failure> {
    let configured = integrations.host().registry().get(plugin).ok().and_then(|record| {
        record.definition.admin_config.get("oauth_redirect_uri").and_then(|uri| uri.as_str().map(str::to_owned))
    });
    // A provider that allows one loopback port only: the configured URI's.
    let (port, path) = match (port, configured.as_deref().and_then(|uri| url::Url::parse(uri).ok())) {
        (Some(port), _) => (port, "/callback".to_owned()),
        (None, Some(uri)) if uri.host_str() == Some("127.0.0.1") && uri.port().is_some() => {
            (uri.port().unwrap_or_default(), uri.path().to_owned())
        }
        _ => (0, "/callback".to_owned()),
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|error| {
        Failure::usage(format!("could not listen on 127.0.0.1:{port} for the OAuth callback: {error}"))
    })?;
    let port = listener.local_addr().map_err(|error| host_failure(error.to_string()))?.port();
    let redirect = format!("http://127.0.0.1:{port}{path}");
    let started = integrations.start_oauth(plugin, user, Some(&redirect)).await.map_err(integration_failure)?;
    eprintln!(
        "To connect `{user}`'s account to `{plugin}`, open this address and sign in:\n\n  {}\n",
        started.authorization_url
    );
    if open_browser {
        open(&started.authorization_url);
    }
    eprintln!("waiting for the sign-in (at most {} minutes)…", STATE_LIFETIME.as_secs() / 60);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let finished: Finished = Arc::new(Mutex::new(Some(sender)));
    let serving = {
        let (integrations, state, path) = (integrations.clone(), started.state.clone(), path.clone());
        tokio::spawn(serve(listener, integrations, state, path, finished))
    };
    let outcome = tokio::time::timeout(STATE_LIFETIME, receiver).await;
    serving.abort();
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(host_failure("the OAuth callback listener stopped".into())),
        Err(_) => Err(Failure::usage(format!(
            "no sign-in came back within {} minutes; run the command again",
            STATE_LIFETIME.as_secs() / 60
        ))),
    }
}

/// Opens `url` with the desktop's browser, when there is a desktop.
fn open(url: &str) {
    let desktop = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !desktop {
        return;
    }
    let opener = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
    match std::process::Command::new(&opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => eprintln!("(opened with {opener})"),
        Err(error) => eprintln!("(could not open a browser with {opener}: {error})"),
    }
}

async fn serve(listener: TcpListener, integrations: Integrations, state: String, path: String, finished: Finished) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (integrations, state, path, finished) =
            (integrations.clone(), state.clone(), path.clone(), finished.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let (integrations, state, path, finished) =
                    (integrations.clone(), state.clone(), path.clone(), finished.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(callback(request, &integrations, &state, &path, &finished).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn callback(
    request: Request<hyper::body::Incoming>,
    integrations: &Integrations,
    state: &str,
    path: &str,
    finished: &Finished,
) -> Response<Full<bytes::Bytes>> {
    if request.uri().path() != path {
        return page(StatusCode::NOT_FOUND, "Not found", "This address only takes the OAuth callback.");
    }
    let query = request.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    if get("state") != Some(state) {
        return page(
            StatusCode::BAD_REQUEST,
            "Not this sign-in",
            "This callback is not for the flow the command started.",
        );
    }
    let error = get("error").map(|error| match get("error_description") {
        Some(description) => format!("{error}: {description}"),
        None => error.to_owned(),
    });
    let result = integrations.finish_oauth(state, get("code"), error.as_deref()).await.map_err(integration_failure);
    let shown = match &result {
        Ok(_) => page(StatusCode::OK, "Connected", "The account is connected. You can close this window."),
        Err(failure) => page(StatusCode::BAD_REQUEST, "Not connected", &failure.message),
    };
    if let Some(sender) = finished.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        let _ = sender.send(result);
    }
    shown
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<bytes::Bytes>> {
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>{0}</title><h1>{0}</h1><p>{1}</p>",
        escape(title),
        escape(text)
    );
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("a valid response")
}
