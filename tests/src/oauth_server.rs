//! The OAuth tests' authorization server: oidc-provider (`tests/oauth-server/server.mjs`)
//! on a loopback port of its own, and the scripted browser that signs in through it.

use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::{fetched, repo_root};

pub struct AuthorizationServer {
    child: Child,
    pub port: u16,
}

impl AuthorizationServer {
    /// Starts a server whose refresh tokens rotate (or not) and whose access tokens live
    /// `access_ttl` seconds.
    pub fn start(rotate: bool, access_ttl: u64) -> Self {
        fetched().unwrap_or_else(|why| panic!("the OAuth test server's packages are not available: {why}"));
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/oauth-server/server.mjs"))
            .env("ROTATE", if rotate { "1" } else { "0" })
            .env("ACCESS_TTL", access_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the authorization server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").and_then(|port| port.parse().ok());
        let port = port.unwrap_or_else(|| panic!("the authorization server did not start: {line:?}"));
        Self { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Signs in at `authorization_url` with the scripted browser; answers the URL the
    /// server sent it back to (the callback, with its code and state).
    pub fn authorize(&self, authorization_url: &str) -> String {
        self.authorize_as(authorization_url, None).0
    }

    /// [`AuthorizationServer::authorize`] by a browser that holds `cookie` (`name=value`)
    /// for the callback; answers the callback's URL, status and page.
    pub fn authorize_as(&self, authorization_url: &str, cookie: Option<&str>) -> (String, u16, String) {
        let output = Command::new("node")
            .arg(repo_root().join("tests/oauth-server/browser.mjs"))
            .arg(authorization_url)
            .args(cookie)
            .output()
            .expect("node runs the browser");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        let url = lines.next().unwrap_or_default().to_owned();
        let status = lines.next().and_then(|status| status.parse().ok()).unwrap_or_default();
        (url, status, lines.collect::<Vec<_>>().join("\n"))
    }

    fn request(&self, method: &str, path: &str) -> Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|error| panic!("{method} {path}: {error}: {answer}"))
    }

    /// Token requests served: `(authorization codes, refreshes)`.
    pub fn stats(&self) -> (u64, u64) {
        let stats = self.request("GET", "/test/stats");
        (stats["codes"].as_u64().unwrap(), stats["refreshes"].as_u64().unwrap())
    }

    /// Destroys every grant (the user revoked the host's access).
    pub fn revoke_all(&self) {
        self.request("POST", "/test/revoke");
    }
}

impl Drop for AuthorizationServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
