//! An npm registry on a loopback port, serving packages packed from folders with `npm pack`:
//! their packuments (as npm asks for them, `/@scope%2fname`) and their tarballs. It can be
//! stopped, after which the port refuses connections: a registry gone offline.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A package the registry serves.
pub struct Served {
    pub name: String,
    pub version: String,
    /// `sha512-…` of its tarball.
    pub integrity: String,
}

pub struct NpmRegistry {
    pub url: String,
    routes: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    packuments: Mutex<BTreeMap<String, Map<String, Value>>>,
    stopped: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NpmRegistry {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let routes: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served, stop, counted) = (routes.clone(), stopped.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_nonblocking(false);
                        answer(stream, &served);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { url, routes, packuments: Mutex::default(), stopped, requests, thread: Some(thread) }
    }

    /// Packs `folder` (a package.json and its files) and serves it.
    pub fn publish(&self, folder: &Path) -> Served {
        let manifest: Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(folder.join("package.json")).unwrap()).unwrap();
        let packed =
            Command::new("npm").args(["pack", "--silent", "--pack-destination"]).arg(folder).arg(folder).output();
        let packed = packed.expect("npm runs");
        assert!(packed.status.success(), "npm pack: {}", String::from_utf8_lossy(&packed.stderr));
        let file = String::from_utf8_lossy(&packed.stdout).trim().lines().last().unwrap().to_owned();
        let tarball = std::fs::read(folder.join(&file)).unwrap();
        let integrity =
            format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball)));
        let name = manifest["name"].as_str().unwrap().to_owned();
        let version = manifest["version"].as_str().unwrap().to_owned();
        let mut entry = manifest.clone();
        entry.insert("_id".into(), json!(format!("{name}@{version}")));
        entry.insert("dist".into(), json!({"tarball": format!("{}tarballs/{file}", self.url), "integrity": integrity}));
        let mut packuments = self.packuments.lock().unwrap();
        let packument = packuments.entry(name.clone()).or_insert_with(|| {
            let mut packument = Map::new();
            packument.insert("name".into(), json!(name));
            packument.insert("versions".into(), json!({}));
            packument
        });
        packument["versions"][&version] = Value::Object(entry);
        packument.insert("dist-tags".into(), json!({"latest": version}));
        let mut routes = self.routes.lock().unwrap();
        routes.insert(
            format!("/{}", name.replace('/', "%2f")),
            Value::Object(packument.clone()).to_string().into_bytes(),
        );
        routes.insert(format!("/tarballs/{file}"), tarball);
        Served { name, version, integrity }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Closes the port: from now on a connection is refused.
    pub fn stop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for NpmRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answers one request: the route's bytes, or 404.
fn answer(stream: std::net::TcpStream, routes: &Mutex<BTreeMap<String, Vec<u8>>>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_or(true, |read| read == 0) || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = path.replace("%2F", "%2f").replace("%40", "@");
    let body = routes.lock().unwrap().get(&path).cloned();
    let mut stream = &stream;
    let _ = match body {
        Some(body) => {
            let kind = if path.starts_with("/tarballs/") { "application/octet-stream" } else { "application/json" };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body))
        }
        None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n{\"error\":\"not found\"}"),
    };
}
