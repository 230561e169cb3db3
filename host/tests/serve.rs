//! `serve` as a real command: it prints where it listens, answers the API, and on SIGTERM
//! in the middle of a sync stops cleanly, keeping everything the sync reported as applied.

use serde_json::{Value, json};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

struct Data {
    dir: tempfile::TempDir,
    key_file: PathBuf,
}

impl Data {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("vault.key");
        let data = Self { key_file, dir };
        let key = data.run(&["vault", "generate-key"], None);
        std::fs::write(&data.key_file, &key.stdout).unwrap();
        std::fs::set_permissions(&data.key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        data
    }

    fn command(&self, args: &[&str]) -> Command {
        let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
        let mut command = Command::new(HOST);
        command.args(&args[..split]).arg("--data-dir").arg(self.dir.path().join("data"));
        // Tokens need no vault key.
        if args[0] != "token" {
            command.arg("--key-file").arg(&self.key_file);
        }
        command.args(&args[split..]).env_remove("RUST_LOG").env_remove("CODEX_ENCRYPTION_KEY");
        command
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin
            && let Err(error) = input.write_all(text.as_bytes())
        {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Starts `serve` on a free loopback port; answers the child and its address.
    fn serve(&self, extra: &[&str]) -> (Child, String) {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = self.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.strip_prefix("listening on ").and_then(|rest| rest.split(';').next());
        let address = address.unwrap_or_else(|| panic!("serve did not say where it listens: {line:?}")).to_owned();
        (child, address)
    }
}

/// Waits for `child` to exit, at most `limit`.
fn exited(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
}

#[test]
fn serve_prints_its_address_answers_and_stops_on_sigterm() {
    let data = Data::new();
    let admin = data.ok(&["token", "create", "--admin"], None);
    let (mut server, address) = data.serve(&["--public-url", "https://codex.example/plugins"]);
    let client = reqwest::blocking::Client::new();
    let answer = client.get(format!("http://{address}/api/v1/whoami")).bearer_auth(admin.trim()).send().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().unwrap(), json!({"role": "admin"}));
    let refused = client.get(format!("http://{address}/api/v1/plugins")).send().unwrap();
    assert_eq!(refused.status(), 401);
    terminate(&server);
    assert!(exited(&mut server, Duration::from_secs(20)).success());
    let output = data.run(&["serve", "--public-url", "ftp://x"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--public-url"));
}

#[test]
fn sigterm_in_the_middle_of_a_sync_keeps_what_it_reported_as_applied() {
    let data = Data::new();
    data.ok(&["library", "import", repo().join("docs/sample-library.json").to_str().unwrap()], None);
    let recorder = repo().join("tests/plugins/wire-recorder.mjs");
    data.ok(&["plugin", "add", "tracker", "--", "node", recorder.to_str().unwrap()], None);
    // Ann finished One Piece (series-00) on the tracker; the push then hangs for a minute.
    let entry = json!({"externalId": "series-00", "status": "completed", "progress": {"volumes": 3.0}});
    let admin = json!({
        "capabilities": {"userReadSync": true, "externalIdSource": "api:echo"},
        "answers": {
            "sync/getUserInfo": {"externalId": "ann-1", "username": "ann"},
            "sync/pullProgress": {"entries": [entry], "hasMore": false},
            "sync/pushProgress": {"success": [], "failed": []},
            "ping": "pong"
        },
        "delays": {"sync/pushProgress": 60000}
    });
    data.ok(&["plugin", "config", "tracker", "--admin", &admin.to_string()], None);
    data.ok(&["plugin", "permissions", "tracker", "--grant", "library:read"], None);
    data.ok(
        &["plugin", "connect", "tracker", "--user", "ann", "--token", "-", "--allow-command", "node"],
        Some("t0ken\n"),
    );
    let ann = data.ok(&["token", "create", "--user", "ann"], None);
    let (mut server, address) = data.serve(&["--allow-command", "node"]);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let job: Value = client
        .post(format!("http://{address}/api/v1/connections/tracker/sync"))
        .bearer_auth(ann.trim())
        .json(&json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = job["id"].as_str().unwrap_or_else(|| panic!("{job}"));
    // Follow the job until it says the pull is applied.
    let events =
        client.get(format!("http://{address}/api/v1/jobs/{id}/events")).bearer_auth(ann.trim()).send().unwrap();
    let mut applied = None;
    for line in std::io::BufReader::new(events).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let state: Value = serde_json::from_str(data).unwrap();
        assert_eq!(state["status"], "running", "the sync ended before the signal: {state}");
        if state["progress"]["stage"] == "applied" {
            applied = Some(state["progress"].clone());
            break;
        }
    }
    let applied = applied.expect("the sync reported its pull applied");
    assert_eq!(applied["booksMarked"], 3, "{applied}");
    terminate(&server);
    let status = exited(&mut server, Duration::from_secs(40));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{status}: {log}");
    // What was reported applied is in the library; the lease was given back.
    let database = data.dir.path().join("data").join(codex_plugin_host::host::DATABASE_FILE);
    let library = codex_plugin_host::library::SqliteLibrary::open(&database).unwrap();
    let books = codex_plugin_host::library::LibraryPort::progress(&library, "ann", "manga-one-piece").unwrap();
    assert_eq!(books.iter().filter(|book| book.completed).count(), 3, "{books:?}");
    let records: Value = serde_json::from_str(&data.ok(&["sync", "status", "--json"], None)).unwrap();
    assert_eq!(records[0]["running"], false, "the lease outlived the server: {records}");
}
