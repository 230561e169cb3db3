//! `plugin connect` with a token, `sync`, `sync status` and `recommendations`, run as real
//! commands on a real database file with the sync-echo and recommendations-echo examples as
//! wasm components and the sample library.

use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// An example as a component, built into this test's target directory.
fn component(example: &str) -> PathBuf {
    let target = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo())
        .args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "guest", "-p", example])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "building the {example} component failed");
    target.join(format!("wasm32-wasip2/guest/{example}.wasm"))
}

struct Host {
    data: tempfile::TempDir,
    key_file: PathBuf,
}

impl Host {
    /// The sample library, sync-echo registered as `echo-sync` and allowed to read it.
    fn new() -> Self {
        let data = tempfile::tempdir().unwrap();
        let key_file = data.path().join("vault.key");
        let host = Self { key_file, data };
        let key = host.run(&["vault", "generate-key"], None);
        std::fs::write(&host.key_file, &key.stdout).unwrap();
        std::fs::set_permissions(&host.key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let sample = repo().join("docs/sample-library.json");
        host.ok(&["library", "import", sample.to_str().unwrap()], None);
        let component = component("sync-echo");
        host.ok(&["plugin", "add", "echo-sync", "--wasm", component.to_str().unwrap()], None);
        host.ok(&["plugin", "permissions", "echo-sync", "--grant", "library:read"], None);
        host
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        // The host's flags go before a plugin's command (`-- node …`).
        let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
        let mut child = Command::new(HOST)
            .args(&args[..split])
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--key-file")
            .arg(&self.key_file)
            .args(&args[split..])
            .env_remove("RUST_LOG")
            .env_remove("CODEX_ENCRYPTION_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the host binary runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            // A command refused before it reads its input may be gone already.
            if let Err(error) = input.write_all(text.as_bytes()) {
                assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
            }
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn refused(&self, args: &[&str], stdin: Option<&str>, expected: &str) {
        let output = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    }
}

#[test]
fn a_user_connects_with_a_token_and_syncs_from_the_command_line() {
    let host = Host::new();
    host.refused(
        &["plugin", "connect", "echo-sync", "--user", "ann", "--token", "t0ken-ann"],
        None,
        "never taken from the command line",
    );
    let connected = host.ok(&["plugin", "connect", "echo-sync", "--user", "ann", "--token", "-"], Some("t0ken-ann\n"));
    let connected: Value = serde_json::from_str(&connected).unwrap();
    assert_eq!(connected["account"]["username"], json!("reader-t0ke"), "{connected}");
    let listed = host.ok(&["plugin", "show", "echo-sync"], None);
    assert!(!listed.contains("t0ken-ann"), "the token is shown back: {listed}");

    host.refused(&["sync", "echo-sync", "--user", "bo"], None, "user `bo` is not connected");
    let dry: Value =
        serde_json::from_str(&host.ok(&["sync", "echo-sync", "--user", "ann", "--dry-run", "--json"], None)).unwrap();
    assert_eq!(
        (dry["dryRun"].clone(), dry["pulled"].clone(), dry["matched"].clone()),
        (json!(true), json!(23), json!(12))
    );
    let status: Value = serde_json::from_str(&host.ok(&["sync", "status", "--json"], None)).unwrap();
    assert_eq!(status, json!([]), "a dry run keeps no result");

    let output = host.run(&["sync", "echo-sync", "--user", "ann", "--page-size", "10"], None);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("23 entries in 3 pages"), "{stdout}");
    assert!(stdout.contains("reader-t0ke"), "{stdout}");
    assert!(stderr.contains("pulled 23 entries in 3 pages"), "no progress shown: {stderr}");

    let status: Value = serde_json::from_str(&host.ok(&["sync", "status", "--user", "ann", "--json"], None)).unwrap();
    assert_eq!(status[0]["lastResult"]["pulled"], json!(23), "{status}");
    assert_eq!(status[0]["running"], json!(false));
    let table = host.ok(&["sync", "status"], None);
    assert!(table.contains("echo-sync") && table.contains("ok"), "{table}");
}

#[test]
fn recommendations_show_as_a_table_and_dismiss() {
    let host = Host::new();
    host.ok(&["plugin", "connect", "echo-sync", "--user", "ann", "--token", "-"], Some("t0ken-ann\n"));
    host.ok(&["sync", "echo-sync", "--user", "ann"], None);
    host.refused(&["recommendations", "ann"], None, "connected to no recommendation plugin");
    let recs = component("recommendations-echo");
    host.ok(&["plugin", "add", "recs", "--wasm", recs.to_str().unwrap()], None);
    host.ok(&["plugin", "permissions", "recs", "--grant", "library:read"], None);
    host.ok(&["plugin", "connect", "recs", "--user", "ann"], None);

    let output = host.run(&["recommendations", "ann"], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.contains("refreshing"), "{stderr}");
    let list: Value = serde_json::from_str(&host.ok(&["recommendations", "ann", "--json"], None)).unwrap();
    let first = list["recommendations"][0]["externalId"].as_str().unwrap().to_owned();
    assert!(first.starts_with("more-manga-"), "{list}");
    assert_eq!(list["sources"][0]["plugin"], json!("recs"));
    let table = host.ok(&["recommendations", "ann", "--limit", "3"], None);
    assert!(table.contains(&first) && table.contains("recs"), "{table}");

    let dismissed: Value = serde_json::from_str(
        &host.ok(&["recommendations", "dismiss", "ann", &first, "--reason", "already-read"], None),
    )
    .unwrap();
    assert_eq!(dismissed["told"], json!(["recs"]));
    let list: Value = serde_json::from_str(&host.ok(&["recommendations", "ann", "--json"], None)).unwrap();
    assert!(!list.to_string().contains(&format!("\"{first}\"")), "{list}");
    host.refused(&["recommendations", "dismiss", "ann", "x", "--reason", "bored"], None, "invalid value 'bored'");
}

/// The OAuth test server (`tests/oauth-server`), its packages installed by
/// `tests/fetch-plugins.sh`; killed when dropped.
struct AuthorizationServer(std::process::Child, u16);

impl AuthorizationServer {
    fn start() -> Self {
        let fetched = Command::new("bash").arg(repo().join("tests/fetch-plugins.sh")).status().unwrap();
        assert!(fetched.success(), "tests/fetch-plugins.sh failed: npm and its registry are needed");
        let mut child = Command::new("node")
            .arg(repo().join("tests/oauth-server/server.mjs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").unwrap().parse().unwrap();
        Self(child, port)
    }
}

impl Drop for AuthorizationServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_user_connects_by_oauth_through_a_loopback_redirect() {
    let server = AuthorizationServer::start();
    let host = Host::new();
    let recorder = repo().join("tests/plugins/wire-recorder.mjs");
    host.ok(
        &["plugin", "add", "tracker", "--allow-internal-addresses", "--", "node", recorder.to_str().unwrap()],
        None,
    );
    let admin = json!({
        "manifest": {"oauth": {
            "authorizationUrl": format!("http://127.0.0.1:{}/auth", server.1),
            "tokenUrl": format!("http://127.0.0.1:{}/token", server.1),
            "scopes": ["openid", "offline_access"], "clientId": "codex-host"
        }},
        "capabilities": {"userReadSync": true},
        "answers": {"sync/getUserInfo": {"externalId": "ann-1", "username": "ann"}, "ping": "pong"}
    });
    host.ok(&["plugin", "config", "tracker", "--admin", &admin.to_string()], None);

    let mut connecting = Command::new(HOST)
        .args(["plugin", "connect", "tracker", "--user", "ann", "--oauth", "--no-browser", "--allow-command", "node"])
        .arg("--data-dir")
        .arg(host.data.path())
        .arg("--key-file")
        .arg(&host.key_file)
        .env_remove("CODEX_ENCRYPTION_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(connecting.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "no sign-in address was printed");
        if let Some(url) = line.trim().strip_prefix("http://127.0.0.1:").map(|rest| format!("http://127.0.0.1:{rest}"))
        {
            break url;
        }
    };
    assert!(
        url.contains("code_challenge_method=S256") && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let browser = Command::new("node").arg(repo().join("tests/oauth-server/browser.mjs")).arg(&url).output().unwrap();
    let page = String::from_utf8_lossy(&browser.stdout);
    assert!(page.contains("\n200\n") && page.contains("Connected"), "the callback page: {page}");
    let output = connecting.wait_with_output().unwrap();
    assert!(output.status.success());
    let connected: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((connected["user"].clone(), connected["account"]["username"].clone()), (json!("ann"), json!("ann")));
    // The tokens are sealed: nothing of them is shown back.
    let shown = host.ok(&["plugin", "show", "tracker"], None);
    assert!(shown.contains("access_token") && !shown.contains("refresh_token\":\""), "{shown}");
    host.ok(&["plugin", "disconnect", "tracker", "--user", "ann"], None);
    host.refused(&["sync", "tracker", "--user", "ann"], None, "user `ann` is not connected");
    host.refused(
        &["plugin", "oauth-secret", "tracker", "--secret", "s3cret"],
        None,
        "never taken from the command line",
    );
    host.ok(&["plugin", "oauth-secret", "tracker", "--secret", "-"], Some("s3cret\n"));
    host.refused(
        &["plugin", "config", "tracker", "--admin", r#"{"oauth_client_secret": "s3cret"}"#],
        None,
        "would be sent to the plugin",
    );
    host.refused(
        &["plugin", "credentials", "tracker", "--set", "_codex.refresh_token=-"],
        Some("x\n"),
        "the host's own",
    );
}

#[test]
fn release_sources_are_listed_polled_and_their_releases_shown_from_the_command_line() {
    let host = Host::new();
    let component = component("release-echo");
    host.ok(&["plugin", "add", "echo-releases", "--wasm", component.to_str().unwrap()], None);
    let tracking: Value = serde_json::from_str(
        &host.ok(&["library", "track", "manga-naruto", "--volumes=false", "--chapters", "--alias", "NRT"], None),
    )
    .unwrap();
    let axes = [&tracking["tracked"], &tracking["trackVolumes"], &tracking["trackChapters"]];
    assert_eq!(axes, [&json!(true), &json!(false), &json!(true)]);
    assert_eq!(tracking["aliases"], json!(["NRT"]));
    // A plugin never started is started to find out whether it is a release source.
    let sources: Value = serde_json::from_str(&host.ok(&["releases", "sources", "--json"], None)).unwrap();
    let plugins: Vec<&str> =
        sources.as_array().unwrap().iter().map(|source| source["plugin"].as_str().unwrap()).collect();
    assert_eq!(plugins, ["echo-releases", "echo-releases"], "{sources}");
    let sources: Value =
        serde_json::from_str(&host.ok(&["releases", "sources", "--plugin", "echo-releases", "--json"], None)).unwrap();
    let keys: Vec<&str> =
        sources.as_array().unwrap().iter().map(|source| source["sourceKey"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a", "b"]);
    let report: Value =
        serde_json::from_str(&host.ok(&["releases", "poll", "echo-releases:a", "--json"], None)).unwrap();
    assert_eq!(report["counts"]["recorded"], json!(8), "two tracked series, four releases each: {report}");
    let listed: Value = serde_json::from_str(
        &host.ok(&["releases", "list", "--series", "manga-naruto", "--state", "ignored", "--json"], None),
    )
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "its volume is not tracked: {listed}");
    let shown: Value = serde_json::from_str(&host.ok(&["plugin", "show", "echo-releases"], None)).unwrap();
    assert_eq!(
        shown["metrics"]["methods"]["releases/poll"]["successes"],
        json!(1),
        "the command's host shut down and kept its call counts: {shown}"
    );
    let table = host.ok(&["releases", "sources"], None);
    assert!(table.contains("echo-releases:a") && table.contains("Fetched 8 items, recorded 8"), "{table}");
    host.refused(&["releases", "list", "--state", "new"], None, "`new` is not a ledger state");
    host.refused(&["releases", "poll", "echo-releases:zz"], None, "no release source `echo-releases:zz`");
    host.refused(&["library", "track", "manga-naruto", "--threshold", "2"], None, "not a confidence");
    host.refused(
        &["library", "track", "manga-naruto", "--latest-chapter", "soon"],
        None,
        "not a chapter or volume number",
    );
    // Release sources only raise the latest known chapter; an admin corrects it.
    let corrected: Value =
        serde_json::from_str(&host.ok(&["library", "track", "manga-naruto", "--latest-chapter", "1"], None)).unwrap();
    assert_eq!(corrected["latestChapter"], json!(1.0), "{corrected}");
    let cleared: Value =
        serde_json::from_str(&host.ok(&["library", "track", "manga-naruto", "--latest-chapter", "none"], None))
            .unwrap();
    assert!(cleared.get("latestChapter").is_none(), "{cleared}");
}
