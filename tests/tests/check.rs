//! `codex-plugin-host check`, the real command, against every example plugin in both modes,
//! the published Open Library plugin and the test plugin's misbehaviours. Each report must
//! be right: friendly plugins pass, each hostile one fails exactly the checks its
//! misbehaviour should fail (and warns exactly where expected), and a plugin that dies or
//! hangs still gets every check, the unreached ones marked not run with why.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

use codex_plugin_host_tests::{
    EXAMPLES, binary_dir, example_binary, host_binary, openlibrary, test_plugin, wasm_component_path,
};

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

/// A finished `check`.
struct Checked {
    report: Value,
    code: i32,
    stderr: String,
}

impl Checked {
    fn ids(&self, outcome: &str) -> BTreeSet<String> {
        let checks = self.report["checks"].as_array().expect("a report lists its checks");
        checks
            .iter()
            .filter(|check| check["outcome"] == outcome)
            .map(|check| check["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn check(&self, id: &str) -> &Value {
        let checks = self.report["checks"].as_array().unwrap();
        checks.iter().find(|check| check["id"] == id).unwrap_or_else(|| panic!("no check `{id}` in {}", self.report))
    }

    /// Exactly these checks failed and these warned; the exit code says whether any failed.
    fn expect(&self, what: &str, fails: &[&str], warns: &[&str]) {
        let set = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(self.ids("fail"), set(fails), "{what}: failed checks\n{}", self.report);
        assert_eq!(self.ids("warn"), set(warns), "{what}: checks with warnings\n{}", self.report);
        assert_eq!(self.code, i32::from(!fails.is_empty()), "{what}: exit code; stderr: {}", self.stderr);
        let summary = &self.report["summary"];
        assert_eq!(summary["failed"], fails.len(), "{what}");
        for check in self.report["checks"].as_array().unwrap() {
            if check["outcome"] == "not_run" {
                assert!(
                    check["not_run"].as_str().is_some_and(|why| !why.is_empty()),
                    "{what}: a check not run says why: {check}"
                );
            }
        }
    }
}

/// Runs `check --json ARGS` in a fresh data directory.
fn check(args: &[&str], plugin: &[&str]) -> Checked {
    let data = tempfile::tempdir().unwrap();
    check_in(data.path(), args, plugin)
}

/// Runs `check --json ARGS` with the data directory `data`.
fn check_in(data: &std::path::Path, args: &[&str], plugin: &[&str]) -> Checked {
    let output = Command::new(host_binary())
        .arg("check")
        .arg("--json")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .args(plugin)
        .current_dir("/tmp")
        .env_remove("RUST_LOG")
        .output()
        .expect("the host binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().expect("it exits");
    let report = match serde_json::from_slice(&output.stdout) {
        Ok(report) => report,
        Err(_) if code > 1 => Value::Null,
        Err(error) => panic!("--json prints JSON ({error}): {}\n{stderr}", String::from_utf8_lossy(&output.stdout)),
    };
    Checked { report, code, stderr }
}

/// `check` of an example as a native process and as a wasm component.
fn both(example: &str, args: &[&str]) -> [(&'static str, Checked); 2] {
    let binary = example_binary(example);
    let plugins_dir = binary_dir();
    let mut native = vec!["--plugins-dir", plugins_dir.to_str().unwrap()];
    if example == "memory-hog" {
        // Natively it would take what the machine has.
        native.extend(["--memory-limit-mib", "64"]);
    }
    native.extend_from_slice(args);
    let component = wasm_component_path(example);
    let mut wasm = vec!["--wasm", component.to_str().unwrap()];
    wasm.extend_from_slice(args);
    [("process", check(&native, &["--", &binary])), ("wasm", check(&wasm, &[]))]
}

/// For the plugins that hang or babble: each of their timeouts costs this much (the
/// others keep the default 30 s, which nothing they answer comes near).
const TIMEOUT: [&str; 2] = ["--timeout", "3"];
/// For Node plugins, which may start slowly on a loaded machine.
const NODE_TIMEOUT: [&str; 2] = ["--timeout", "8"];

/// What each example fails and warns of, in each mode; `None` for a component the host
/// refuses to load.
type Expected = (&'static [&'static str], &'static [&'static str]);

fn expected(example: &str, transport: &str) -> Option<Expected> {
    let ended = &["series.search"][..];
    Some(match (example, transport) {
        ("bare-ping" | "metadata-echo" | "sync-echo" | "recommendations-echo" | "release-echo", _) => (&[], &[]),
        // No SDK, no answers configured: -32601 to every method, required ones included.
        ("wire-echo", _) => (
            &[
                "lifecycle.ping",
                "lifecycle.concurrent",
                "series.search",
                "book.search",
                "book.search.isbn",
                "sync.user-info",
                "sync.pull",
                "recommendations.get",
            ],
            &["series.get.unknown", "book.get.unknown", "lifecycle.bad-params"],
        ),
        // Junk instead of answers: every search times out, and stdout is not JSON-RPC.
        ("bad-json", _) => (
            &[
                "series.search",
                "series.search.empty",
                "series.search.unicode",
                "series.search.long",
                "timing",
                "hygiene.stdout",
            ],
            &[],
        ),
        ("exit-mid-request" | "giant-line", _) => (ended, &[]),
        ("stdout-flood", _) => (&["series.search", "hygiene.stdout"], &[]),
        // A hung process is found by its timeout; a hung guest is ended by the watchdog at
        // the same deadline.
        ("spin-loop", _) => (&["series.search", "timing"], &[]),
        // A native allocation failure says so on stderr, without a level.
        ("memory-hog", "process") => (ended, &["hygiene.stderr"]),
        ("memory-hog", _) => (ended, &[]),
        // Its results name its steps, which `get` does not know; it hits the quota on purpose.
        ("storage-abuser", _) => (&[], &["series.get", "storage.quota-full"]),
        ("sandbox-prober", _) => (&[], &["series.get"]),
        // Natively it answers an empty query with an empty id; its component never loads.
        ("socket-importer", "process") => (&["series.search.empty"], &["series.get"]),
        ("socket-importer", _) => return None,
        (other, _) => panic!("no expectation for the example `{other}`: add one"),
    })
}

fn expect_example(example: &str, args: &[&str]) {
    for (transport, checked) in both(example, args) {
        let what = format!("{example} ({transport})");
        match expected(example, transport) {
            Some((fails, warns)) => {
                checked.expect(&what, fails, warns);
                assert_eq!(checked.report["plugin"]["transport"], transport, "{what}");
            }
            None => {
                assert_eq!(checked.code, 3, "{what}: not started: {}", checked.stderr);
                assert!(checked.stderr.contains("imports what a plugin may not"), "{what}: {}", checked.stderr);
            }
        }
    }
}

#[test]
fn every_example_has_an_expected_report() {
    for example in EXAMPLES {
        expected(example, "process");
        expected(example, "wasm");
    }
}

#[test]
fn friendly_examples_pass() {
    let credentials = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(credentials.path(), r#"{"access_token":"t0ken"}"#).unwrap();
    let credentials = credentials.path().to_str().unwrap().to_owned();
    expect_example("metadata-echo", &[]);
    expect_example("bare-ping", &[]);
    // With what they need, and with their writes sent.
    expect_example("sync-echo", &["--credentials-file", &credentials, "--allow-writes"]);
    expect_example("recommendations-echo", &["--allow-writes"]);
    expect_example("release-echo", &["--allow-writes"]);
}

#[test]
fn examples_that_die_mid_request_get_a_whole_report() {
    for example in ["exit-mid-request", "giant-line", "stdout-flood", "memory-hog"] {
        expect_example(example, &[]);
    }
    for (transport, checked) in both("exit-mid-request", &[]) {
        for later in ["series.get.unknown", "lifecycle.unknown-method", "lifecycle.shutdown"] {
            let check = checked.check(later);
            assert_eq!(check["outcome"], "not_run", "{transport}: {check}");
            let why = check["not_run"].as_str().unwrap();
            assert!(why.contains("ended during `series.search`"), "{transport}: {why}");
        }
        assert!(
            checked.check("hygiene.stdout")["outcome"] == "pass",
            "{transport}: hygiene is judged on what it wrote"
        );
    }
}

#[test]
fn examples_that_hang_or_babble_get_a_whole_report() {
    expect_example("spin-loop", &TIMEOUT);
    expect_example("bad-json", &TIMEOUT);
    let [(_, process), _] = both("spin-loop", &TIMEOUT);
    let why = process.check("series.match")["not_run"].as_str().unwrap().to_owned();
    assert!(why.contains("stopped answering"), "{why}");
}

#[test]
fn the_other_hostile_examples_fail_only_where_they_misbehave() {
    for example in ["wire-echo", "storage-abuser", "sandbox-prober", "socket-importer"] {
        expect_example(example, &[]);
    }
    let [(_, abuser), _] = both("storage-abuser", &[]);
    let storage = abuser.check("storage.quota-full");
    assert!(storage["note"].as_str().unwrap().contains("writes refused during `metadata/series/search`"), "{storage}");
}

#[test]
fn the_published_open_library_plugin() {
    let script = openlibrary();
    let checked = check(&["--timeout", "10"], &["--", "node", &script]);
    // Without network its searches find nothing (no id to `get`), and it answers an id
    // that does not exist with a record rather than NotFound.
    checked.expect("Open Library", &[], &["book.get.unknown"]);
    assert_eq!(checked.report["plugin"]["name"], "metadata-openlibrary");
    assert_eq!(checked.check("book.get")["outcome"], "not_run");
    assert_eq!(checked.check("lifecycle.bad-params")["outcome"], "pass", "the SDK answers -32602");
}

#[test]
fn test_plugin_misbehaviours_fail_their_checks() {
    let script = test_plugin();
    let scenario = |name: &str, extra: &[&str]| {
        let mut plugin = vec!["--", "node", script.as_str(), name];
        plugin.extend_from_slice(extra);
        check(&NODE_TIMEOUT, &plugin)
    };
    // What the well-behaved scenario warns of (a legacy count, no credentials, a rate limit
    // without its delay), every scenario shares.
    let warns = ["series.get", "series.get.unknown", "sync.user-info", "sync.pull", "lifecycle.bad-params"];
    scenario("well-behaved", &[]).expect("well-behaved", &[], &warns);
    scenario("junk", &[]).expect("junk", &["hygiene.stdout"], &warns);
    scenario("ignores-shutdown", &[]).expect("ignores-shutdown", &["lifecycle.shutdown"], &warns);
    scenario("grandchild", &[]).expect("grandchild", &["lifecycle.leftovers"], &warns);
    let bad_year = scenario("bad-year", &[]);
    bad_year.expect("bad-year", &["series.get", "series.get.unknown"], &warns[2..]);
    let findings = bad_year.check("series.get")["findings"].to_string();
    assert!(findings.contains("result.year") && findings.contains("MCMXCIV"), "{findings}");
    let bad_manifest =
        scenario("bad-manifest", &[r#"{"version": 3, "capabilities": {"metadataProvider": ["comics"]}}"#]);
    assert_eq!(bad_manifest.code, 1, "{}", bad_manifest.stderr);
    assert_eq!(bad_manifest.ids("fail"), BTreeSet::from(["manifest".to_owned()]));
    let found = bad_manifest.check("manifest")["findings"].as_array().unwrap().len();
    assert!(found >= 1, "{}", bad_manifest.report);
    let silent = scenario("silent-init", &[]);
    assert_eq!(silent.code, 3, "a plugin that does not start: {}", silent.stderr);
    assert!(silent.stderr.contains("did not answer `initialize`"), "{}", silent.stderr);
}

#[test]
fn a_registered_plugin_is_checked_apart_from_its_registration() {
    let data = tempfile::tempdir().unwrap();
    let host = |args: &[&str]| {
        let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
        let mut command = Command::new(host_binary());
        command.args(&args[..split]).arg("--data-dir").arg(data.path()).args(&args[split..]);
        let output = command.output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let abuser = wasm_component_path("storage-abuser");
    host(&["plugin", "add", "abuser", "--wasm", abuser.to_str().unwrap()]);
    let echo = example_binary("metadata-echo");
    host(&["plugin", "add", "echo", "--", &echo]);
    let plugins_dir = binary_dir();
    let checked = check_in(data.path(), &["--plugin", "abuser"], &[]);
    checked.expect("abuser (registered)", &[], &["series.get", "storage.quota-full"]);
    assert_eq!(
        (checked.report["plugin"]["id"].as_str(), checked.report["plugin"]["transport"].as_str()),
        (Some("abuser"), Some("wasm"))
    );
    let checked = check_in(data.path(), &["--plugin", "echo", "--plugins-dir", plugins_dir.to_str().unwrap()], &[]);
    checked.expect("echo (registered)", &[], &[]);
    // The abuser wrote over a hundred keys during its check: none reached the host's storage.
    let database = rusqlite::Connection::open(data.path().join("codex-plugin-host.sqlite3")).unwrap();
    let stored: i64 = database.query_row("SELECT COUNT(*) FROM plugin_storage", [], |row| row.get(0)).unwrap();
    assert_eq!(stored, 0);
    // Its own uid, never the registered plugin's, under a root host.
    if is_root() {
        let uids = std::fs::read_to_string(data.path().join("plugins/.sandbox-uids")).unwrap();
        assert!(uids.lines().any(|line| line.ends_with(" echo:check")), "{uids}");
        assert!(!uids.lines().any(|line| line.ends_with(" echo")), "the plugin's own uid was never handed out: {uids}");
    }
    let unknown = check_in(data.path(), &["--plugin", "nobody-registered"], &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("nobody-registered"), "{}", unknown.stderr);
}

#[test]
fn the_text_report_has_a_line_per_check_and_a_summary() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(host_binary())
        .args(["check", "--data-dir"])
        .arg(data.path())
        .arg("--wasm")
        .arg(wasm_component_path("metadata-echo"))
        .current_dir("/tmp")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("Checked metadata-echo 0.1.0 (wasm; network: none"), "{text}");
    let lines: Vec<&str> =
        text.lines().filter(|line| line.starts_with("PASS") || line.starts_with("NOT RUN")).collect();
    assert_eq!(lines.len(), 28, "{text}");
    assert!(text.trim_end().ends_with("27 passed, 0 with warnings, 0 failed, 1 not run"), "{text}");
    let plugins = data.path().join("plugins");
    let kept: Vec<_> = std::fs::read_dir(&plugins)
        .map(|dir| dir.filter_map(Result::ok).map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(kept.iter().all(|path| !path.is_dir()), "the plugin's data went to a scratch directory: {kept:?}");
}
