//! The host's own outbound HTTP calls (an OAuth token endpoint): a form POST through the
//! same address policy as a wasm guest's requests. The name is resolved once and every
//! address checked (an internal one refused unless allowed) before connecting to exactly
//! those addresses; https with the web's roots; one deadline over the whole exchange; the
//! answer capped.

use http::{Request, header};
use http_body_util::{BodyExt as _, Full, Limited};
use std::time::Duration;
use url::Url;
use wasmtime_wasi_http::io::TokioIo;

use crate::transport::wasm::http::connector::{Stream, resolve, tls_handshake};
use crate::transport::wasm::http::is_internal;

/// The most of an answer the host reads.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// An answer: its status, its `Retry-After`, its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// POSTs `form` to `url`, within `deadline`. `internal_allowed` lets the name resolve to
/// loopback, private or link-local addresses (a test server).
pub async fn post_form(
    url: &Url,
    form: &[(&str, &str)],
    internal_allowed: bool,
    deadline: Duration,
) -> Result<Answer, String> {
    match tokio::time::timeout(deadline, post(url, form, internal_allowed, deadline)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("{} did not answer within {} s", redacted(url), deadline.as_secs())),
    }
}

/// The URL without its query (which may carry a secret).
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

async fn post(url: &Url, form: &[(&str, &str)], internal_allowed: bool, deadline: Duration) -> Result<Answer, String> {
    let shown = redacted(url);
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("{shown}: scheme {other:?} is not http(s)")),
    };
    let host = url.host_str().ok_or_else(|| format!("{shown} has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().ok_or_else(|| format!("{shown} has no port"))?;
    let addresses = resolve(host, port, deadline).await.map_err(|error| format!("{shown}: {error}"))?;
    if !tls && let Some(outside) = addresses.iter().find(|address| !address.ip().is_loopback()) {
        return Err(format!(
            "{shown} is plain http to {}, not loopback; the host sends secrets over https only",
            outside.ip()
        ));
    }
    if !internal_allowed && let Some(internal) = addresses.iter().find(|address| is_internal(address.ip())) {
        return Err(format!(
            "{shown} resolves to {}, an internal address the host does not call (allow internal addresses for the plugin only for a test server)",
            internal.ip()
        ));
    }
    let stream = tokio::net::TcpStream::connect(&addresses[..]).await.map_err(|error| format!("{shown}: {error}"))?;
    let stream: Box<dyn Stream> = if tls {
        Box::new(tls_handshake(host, stream).await.map_err(|error| format!("{shown}: TLS: {error}"))?)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|error| format!("{shown}: {error}"))?;
    let driving = tokio::spawn(connection);
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, concat!("codex-plugin-host/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|error| format!("{shown}: {error}"))?;
    let response = sender.send_request(request).await.map_err(|error| format!("{shown}: {error}"))?;
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(header::RETRY_AFTER).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|error| format!("{shown}: the answer could not be read ({error}; at most {MAX_ANSWER_BYTES} bytes)"))?
        .to_bytes()
        .to_vec();
    driving.abort();
    Ok(Answer { status, retry_after, body })
}
