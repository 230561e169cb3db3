//! An upstream on loopback for the release plugins' tests: it answers each request by the
//! first route whose method and path prefix match, honours `If-None-Match` for a reply
//! with an etag (304), and keeps every request it saw (method, path and query, headers,
//! body).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::io::TokioIo;

/// What a route answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Self { status: 200, body: body.into(), etag: None }
    }

    pub fn status(status: u16) -> Self {
        Self { status, body: String::new(), etag: None }
    }

    pub fn with_etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.to_owned());
        self
    }
}

/// A request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercased names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Default)]
struct State {
    routes: Vec<(String, String, Reply)>,
    seen: Vec<Seen>,
}

pub struct FeedServer {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl FeedServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(request, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { base_url, state, accepting }
    }

    /// Answers `method` requests whose path starts with `prefix` with `reply` (replacing
    /// what that route answered before).
    pub fn route(&self, method: &str, prefix: &str, reply: Reply) {
        let mut state = self.state.lock().unwrap();
        state.routes.retain(|(m, p, _)| !(m == method && p == prefix));
        state.routes.push((method.to_owned(), prefix.to_owned(), reply));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn answer(request: Request<hyper::body::Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let target = request.uri().path_and_query().map(|target| target.as_str().to_owned()).unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        .collect::<BTreeMap<_, _>>();
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let mut state = state.lock().unwrap();
    let reply = state
        .routes
        .iter()
        .find(|(m, prefix, _)| *m == method && target.starts_with(prefix.as_str()))
        .map(|(_, _, reply)| reply.clone())
        .unwrap_or_else(|| Reply::status(404));
    let unchanged = reply.etag.is_some() && headers.get("if-none-match") == reply.etag.as_ref();
    state.seen.push(Seen { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() });
    let mut response = Response::builder().status(if unchanged { 304 } else { reply.status });
    if let Some(etag) = &reply.etag {
        response = response.header("etag", etag);
    }
    let body = if unchanged { Bytes::new() } else { Bytes::from(reply.body) };
    response.body(Full::new(body)).expect("a valid response")
}
