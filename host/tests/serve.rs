//! `serve` as a real command: it prints where it listens, answers the API, installs an
//! npx plugin an admin adds over HTTP, and on SIGTERM in the middle of a sync stops
//! cleanly, keeping everything the sync reported as applied.

mod support;

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
    let (mut server, address) = data.serve(&["--public-url", "https://codex.example"]);
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = client.get(format!("http://{address}/api/v1/whoami")).bearer_auth(admin.trim()).send().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().unwrap(), json!({"role": "admin"}));
    let refused = client.get(format!("http://{address}/api/v1/plugins")).send().unwrap();
    assert_eq!(refused.status(), 401);
    // Behind https, the page's cookie is `__Host-` and Secure; the plain name opens nothing
    // (a cookie planted without Secure, say over plain http on the same name, is not taken).
    // Tokens and CSRF values are URL-safe as they are: the form bodies need no encoding.
    let form = |body: String| (reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded", body);
    let (name, value, body) = form(format!("token={}", admin.trim()));
    let signed_in = client.post(format!("http://{address}/login")).header(name, value).body(body).send().unwrap();
    assert_eq!(signed_in.status(), 303);
    let set = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with(&format!("__Host-codex_token={}", admin.trim())), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let whoami = |cookie: String| {
        client.get(format!("http://{address}/api/v1/whoami")).header("cookie", cookie).send().unwrap().status()
    };
    assert_eq!(whoami(format!("codex_token={}", admin.trim())), 401);
    assert_eq!(whoami(format!("__Host-codex_token={}", admin.trim())), 200);
    // Signing out removes it with the attributes a browser needs to accept the removal.
    let csrf = codex_plugin_host::server::pages::session::csrf_token(admin.trim());
    let (name, value, body) = form(format!("csrf={csrf}"));
    let signed_out = client
        .post(format!("http://{address}/logout"))
        .header("cookie", format!("__Host-codex_token={}", admin.trim()))
        .header(name, value)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(signed_out.status(), 303);
    let removal = signed_out.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(removal.starts_with("__Host-codex_token=;") && removal.contains("Secure"), "{removal}");
    terminate(&server);
    assert!(exited(&mut server, Duration::from_secs(20)).success());
    for (url, why) in [("ftp://x", "http or https"), ("https://codex.example/plugins", "root of a host name")] {
        let output = data.run(&["serve", "--public-url", url], None);
        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--public-url") && stderr.contains(why), "{url}: {stderr}");
    }
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
    let (mut applied, mut event) = (None, String::new());
    for line in std::io::BufReader::new(events).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_owned();
        }
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let state: Value = serde_json::from_str(data).unwrap();
        assert_eq!(state["status"], "running", "the sync ended before the signal: {state}");
        assert_eq!(event, "progress", "a running job's state comes as a `progress` event: {state}");
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

/// Follows the job `id` until it ends; answers its last state.
fn finished_job(client: &reqwest::blocking::Client, address: &str, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job: Value =
            client.get(format!("http://{address}/api/v1/jobs/{id}")).bearer_auth(token).send().unwrap().json().unwrap();
        if job["status"] != "running" {
            return job;
        }
        assert!(Instant::now() < deadline, "the job did not end: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_npx_plugin_added_over_http_is_installed_as_a_job_then_registered() {
    let data = Data::new();
    // Plugins' uids reach their install through the data directory.
    std::fs::set_permissions(data.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let package = data.dir.path().join("package");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::copy(repo().join("tests/plugins/wire-recorder.mjs"), package.join("recorder.mjs")).unwrap();
    let manifest = json!({"name": "@codex-test/served-recorder", "version": "1.2.3", "bin": "recorder.mjs"});
    std::fs::write(package.join("package.json"), manifest.to_string()).unwrap();
    let npm = support::npm_registry::NpmRegistry::start();
    let served = npm.publish(&package);
    let admin = data.ok(&["token", "create", "--admin"], None);
    let admin = admin.trim();
    let (mut server, address) = data.serve(&["--npm-registry", &npm.url]);
    let client = reqwest::blocking::Client::new();
    let add = |id: &str, package: &str| {
        // As the seeds write it: `npx`, then `-y` and the package, one per line.
        let launch = json!({"mode": "process", "command": "npx", "args": ["-y", package]});
        let body = json!({"id": id, "definition": {"launch": launch, "adminConfig": {"answers": {"ping": "pong"}}}});
        let answer = client.post(format!("http://{address}/api/v1/plugins")).bearer_auth(admin).json(&body).send();
        let answer = answer.unwrap();
        (answer.status().as_u16(), answer.json::<Value>().unwrap())
    };
    let (status, job) = add("recorder", "@codex-test/served-recorder@1.2.3");
    assert_eq!((status, &job["kind"]), (202, &json!("install")), "{job}");
    assert_eq!(job["subject"]["registry"], json!(npm.url), "{job}");
    let done = finished_job(&client, &address, admin, job["id"].as_str().unwrap());
    assert_eq!(done["status"], "succeeded", "{done}");
    let shown = &done["result"]["plugin"];
    let install = &shown["install"];
    assert_eq!(
        (&install["name"], &install["version"], &install["integrity"]),
        (&json!(served.name), &json!(served.version), &json!(served.integrity)),
        "{shown}"
    );
    assert!(npm.requests() >= 2, "the package was fetched from the registry the operator named");
    assert_eq!(shown["enabled"], false, "added for a review of its permissions first: {shown}");
    // A second add under the same id is refused at once; the first install stays.
    let (status, refused) = add("recorder", "@codex-test/served-recorder@1.2.3");
    assert_eq!(status, 409, "{refused}");
    let post = |path: &str| client.post(format!("http://{address}/api/v1/plugins/recorder/{path}")).bearer_auth(admin);
    assert_eq!(post("enable").send().unwrap().status(), 200);
    let tested = post("test").send().unwrap();
    assert_eq!(tested.status(), 200, "the installed program starts: {}", tested.text().unwrap());
    // A package the registry does not have: the job fails with npm's reason, nothing is registered.
    let (status, job) = add("missing", "@codex-test/not-published@1.0.0");
    assert_eq!(status, 202, "{job}");
    let done = finished_job(&client, &address, admin, job["id"].as_str().unwrap());
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("npm could not install @codex-test/not-published@1.0.0"),
        "{done}"
    );
    let gone = client.get(format!("http://{address}/api/v1/plugins/missing")).bearer_auth(admin).send().unwrap();
    assert_eq!(gone.status(), 404);
    // An npx line that names no package is refused before any job.
    let (status, refused) = add("bad", "-y");
    assert_eq!(status, 400, "{refused}");
    terminate(&server);
    assert!(exited(&mut server, Duration::from_secs(20)).success());
}
