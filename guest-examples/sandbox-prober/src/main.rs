//! `sandbox-prober`, a hostile guest: on `metadata/series/search` it tries to reach what a
//! sandbox should deny, and reports each probe as one search result: `externalId` names
//! the probe, `title` is `{"reached": bool, "detail": "..."}`.
//!
//! The query names a TCP target, `host:port` (a loopback server of the test), which the
//! wasm `http` probe also takes as `https://host:port`. Probes:
//! `environment` (the variables it can see), `arguments`, `file-outside` (`/etc/passwd`),
//! `parent-dir` (listing `..`), `data-dir` (a file written and read back in its own data
//! directory), `socket` (a TCP connection to the target), `http` (a GET of `/` from it,
//! reported as `status <code>: <body>`).
//!
//! As a component it has no socket probe to run: the plugin world has no `wasi:sockets`,
//! and a component importing it is refused at load (`socket-importer` shows that). Its
//! `http` probe goes through `wasi:http`, which the host lets through only to the hosts
//! and addresses the admin allowed; a refusal is reported by its `wasi:http` error code.
//! It waits at most one second for each step (connection and TLS handshake, the response's
//! first byte, each piece of its body), so a stalling server shows as a timeout.
//!
//! `cargo build -p sandbox-prober` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use serde_json::json;
#[cfg(not(target_os = "wasi"))]
use std::io::{Read, Write};
#[cfg(not(target_os = "wasi"))]
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
#[cfg(not(target_os = "wasi"))]
use std::time::Duration;

struct Prober;

type Probe = std::result::Result<String, String>;

fn environment() -> Probe {
    let mut names: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    names.sort();
    if names.is_empty() { Err("no variables".into()) } else { Ok(names.join(",")) }
}

fn arguments() -> Probe {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() { Err("no arguments".into()) } else { Ok(args.join(" ")) }
}

fn file_outside() -> Probe {
    std::fs::read_to_string("/etc/passwd")
        .map(|text| format!("{} bytes", text.len()))
        .map_err(|error| error.to_string())
}

fn parent_dir() -> Probe {
    std::fs::read_dir("..").map(|entries| format!("{} entries", entries.count())).map_err(|error| error.to_string())
}

fn data_dir(ctx: &Context) -> Probe {
    let dir = ctx.data_dir().ok_or("no data directory")?;
    let path = std::path::Path::new(&dir).join("probe.txt");
    std::fs::write(&path, "written by sandbox-prober").map_err(|error| error.to_string())?;
    std::fs::read_to_string(&path).map_err(|error| error.to_string())
}

#[cfg(not(target_os = "wasi"))]
fn connect(target: &str) -> std::result::Result<TcpStream, String> {
    let address = target.to_socket_addrs().map_err(|error| error.to_string())?.next().ok_or("no address")?;
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|error| error.to_string())
}

#[cfg(target_os = "wasi")]
fn connect(_target: &str) -> std::result::Result<std::io::Cursor<Vec<u8>>, String> {
    Err("no sockets in the plugin world".into())
}

fn socket(target: &str) -> Probe {
    connect(target).map(|_| format!("connected to {target}"))
}

#[cfg(not(target_os = "wasi"))]
fn http(target: &str) -> Probe {
    let mut stream = connect(target)?;
    let request = format!("GET / HTTP/1.0\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|error| error.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|error| error.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?;
    Ok(format!("status {status}: {body}"))
}

#[cfg(target_os = "wasi")]
fn http(target: &str) -> Probe {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, RequestOptions, Scheme, http_error_code};
    use wasip2::io::streams::StreamError;

    /// One second, in the nanoseconds `wasi:http` counts in.
    const STEP_WAIT: u64 = 1_000_000_000;

    let (scheme, authority) = match target.strip_prefix("https://") {
        Some(authority) => (Scheme::Https, authority),
        None => (Scheme::Http, target),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme refused")?;
    request.set_authority(Some(authority)).map_err(|()| "authority refused")?;
    request.set_path_with_query(Some("/")).map_err(|()| "path refused")?;
    let options = RequestOptions::new();
    options.set_connect_timeout(Some(STEP_WAIT)).map_err(|()| "connect timeout refused")?;
    options.set_first_byte_timeout(Some(STEP_WAIT)).map_err(|()| "first byte timeout refused")?;
    options.set_between_bytes_timeout(Some(STEP_WAIT)).map_err(|()| "between bytes timeout refused")?;
    let pending = outgoing_handler::handle(request, Some(options)).map_err(|error| format!("{error:?}"))?;
    pending.subscribe().block();
    let response = pending.get().ok_or("no response")?.map_err(|()| "response taken")?;
    let response = response.map_err(|error| format!("{error:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "body taken")?;
    let stream = body.stream().map_err(|()| "body stream taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(http_error_code(&error).map_or_else(|| error.to_debug_string(), |code| format!("{code:?}")));
            }
        }
    }
    Ok(format!("status {status}: {}", String::from_utf8_lossy(&bytes)))
}

fn report(name: &str, probe: Probe) -> SearchResult {
    let (reached, detail) = match probe {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    SearchResult::new(name, json!({"reached": reached, "detail": detail}).to_string())
}

impl SeriesProvider for Prober {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        let target = params.query;
        let results = vec![
            report("environment", environment()),
            report("arguments", arguments()),
            report("file-outside", file_outside()),
            report("parent-dir", parent_dir()),
            report("data-dir", data_dir(ctx)),
            report("socket", socket(&target)),
            report("http", http(&target)),
        ];
        Ok(SearchResponse { results, next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("sandbox-prober", "Sandbox Prober", "0.1.0", "Reports what it can reach"))
        .series(Prober)
        .run()
}
