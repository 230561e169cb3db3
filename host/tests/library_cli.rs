//! The library and metadata commands, run as real commands on a real database file, with
//! the metadata-echo example as a wasm component: import the sample, search, a dry run that
//! writes nothing, an apply, an auto-match of a library; every bad input refused with exit 2
//! and nothing changed.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// metadata-echo as a component, built into this test's target directory.
fn echo_component() -> PathBuf {
    let target = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo())
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "-p",
            "metadata-echo",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "building the metadata-echo component failed");
    target.join("wasm32-wasip2/guest/metadata-echo.wasm")
}

struct Host {
    data: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let host = Self { data: tempfile::tempdir().unwrap() };
        let sample = repo().join("docs/sample-library.json");
        host.ok(&["library", "import", sample.to_str().unwrap()]);
        host
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(HOST)
            .args(args)
            .arg("--data-dir")
            .arg(self.data.path())
            .env_remove("RUST_LOG")
            .env_remove("CODEX_ENCRYPTION_KEY")
            .output()
            .expect("the host binary runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Refused with exit 2 and a message holding `expected`, changing nothing.
    fn refused(&self, args: &[&str], expected: &str) {
        let before = self.snapshot();
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        assert_eq!(self.snapshot(), before, "{args:?} changed something");
    }

    /// The library and the echo plugin's settings, as the commands show them.
    fn snapshot(&self) -> (String, String) {
        let settings = match self.run(&["plugin", "show", "echo"]) {
            output if output.status.success() => {
                let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
                shown["metadataSettings"].to_string()
            }
            _ => String::new(),
        };
        (self.ok(&["library", "export"]), settings)
    }

    fn register_echo(&self) {
        self.ok(&["plugin", "add", "echo", "--wasm", echo_component().to_str().unwrap()]);
    }
}

#[test]
fn import_show_export_and_bad_files() {
    let host = Host::new();
    let libraries = host.json(&["library", "show", "--json"]);
    assert_eq!(libraries.as_array().unwrap().len(), 2);
    let table = host.ok(&["library", "show", "--library", "manga"]);
    assert!(table.contains("manga-berserk") && table.contains("title, summary"), "{table}");
    let series = host.json(&["library", "show", "--series", "manga-naruto", "--json"]);
    assert_eq!(series["externalIds"]["plugin:echo"]["id"], json!("naruto"));
    assert_eq!(series["books"].as_array().unwrap().len(), 2);
    let broken = host.data.path().join("broken.json");
    let sample = std::fs::read_to_string(repo().join("docs/sample-library.json")).unwrap();
    std::fs::write(&broken, sample.replacen("\"position\": 1", "\"position\": \"one\"", 1)).unwrap();
    host.refused(&["library", "import", broken.to_str().unwrap()], "libraries[0].series[0].books[0].position");
    std::fs::write(&broken, "{\"format\": ").unwrap();
    host.refused(&["library", "import", broken.to_str().unwrap()], "line 1");
    host.refused(&["library", "show", "--library", "comics"], "no library `comics`");
    host.refused(&["library", "lock", "--series", "manga-naruto", "title", "spine"], "unknown variant `spine`");
    host.refused(&["library", "settings", "manga", "--rules", "[{\"pattern\": \"(\"}]"], "title rule 1");
    host.refused(
        &[
            "library",
            "settings",
            "manga",
            "--conditions",
            "{\"rules\": [{\"field\": \"x\", \"operator\": \"is_null\"}]}",
        ],
        "no such field",
    );
    let locked = host.json(&["library", "lock", "--series", "manga-naruto", "summary", "genres"]);
    assert_eq!(locked["locks"], json!(["summary", "genres"]));
    let unlocked = host.json(&["library", "unlock", "--series", "manga-naruto", "genres"]);
    assert_eq!(unlocked["locks"], json!(["summary"]));
}

#[test]
fn permissions_settings_search_dry_run_apply_and_auto_match() {
    let host = Host::new();
    host.register_echo();
    host.refused(&["plugin", "permissions", "echo", "--grant", "metadata:write:everything"], "unknown permission");
    host.refused(&["plugin", "search-settings", "echo", "--template", "{{#if}}"], "does not parse");
    host.refused(&["plugin", "search-settings", "echo", "--threshold", "2"], "0 to 1");
    host.refused(&["plugin", "permissions", "ghost", "--grant", "metadata:read"], "ghost");
    host.refused(&["plugin", "permissions", "echo", "--library", "comics"], "no library `comics`");
    host.refused(
        &["metadata", "apply", "manga-monster", "--plugin", "echo", "--external-id", "monster-0", "--fields", "titel"],
        "no field \"titel\"",
    );
    let shown = host.json(&["plugin", "show", "echo"]);
    assert_eq!(shown["metadataSettings"]["permissions"], json!([]), "nothing is granted by default");
    // Without permissions, an apply writes only the match's own id.
    let report =
        host.json(&["metadata", "apply", "manga-monster", "--plugin", "echo", "--external-id", "monster-0", "--json"]);
    let changes = report["changes"].as_array().unwrap();
    let applied: Vec<&Value> = changes.iter().filter(|change| change["outcome"] == "applied").collect();
    assert_eq!(applied.len(), 1, "{changes:?}");
    assert_eq!(applied[0]["field"], json!("externalIds[plugin:echo]"));
    assert!(changes.iter().any(|change| change["outcome"] == "not_permitted"));
    host.ok(&["plugin", "permissions", "echo", "--grant", "metadata:write:*"]);
    host.ok(&["plugin", "search-settings", "echo", "--template", "{{metadata.title}} {{metadata.year}}"]);
    let found = host.json(&["metadata", "search", "manga-one-piece", "--plugin", "echo", "--json"]);
    assert_eq!(found["query"]["query"], json!("One Piece 1997"));
    let before = host.snapshot();
    let preview = host.json(&[
        "metadata",
        "apply",
        "manga-berserk",
        "--plugin",
        "echo",
        "--external-id",
        "berserk-0",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(preview["written"], json!(false));
    assert_eq!(host.snapshot(), before, "a dry run wrote");
    let table = host.ok(&["metadata", "apply", "manga-berserk", "--plugin", "echo", "--external-id", "berserk-0"]);
    assert!(table.contains("locked") && table.contains("applied"), "{table}");
    assert_ne!(host.snapshot(), before);
    let series = host.json(&["library", "show", "--series", "manga-berserk", "--json"]);
    assert_eq!(series["externalIds"]["plugin:echo"]["id"], json!("berserk-0"));
    host.refused(&["metadata", "search", "manga-nope", "--plugin", "echo"], "no series `manga-nope`");
    // The whole novels library: a series and a book each.
    let run = host.json(&["library", "auto-match", "--library", "novels", "--plugin", "echo", "--json"]);
    assert_eq!(run["tally"]["outcomes"]["applied"], json!(16), "{}", run["tally"]);
    let output = host.run(&["library", "auto-match", "--library", "novels", "--plugin", "echo", "--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("[16/16]") && stderr.contains("dry run: nothing written"),
        "plain progress lines: {stderr}"
    );
}

#[test]
fn an_auto_match_stopped_by_ctrl_c_says_so_and_the_next_run_goes_on_from_there() {
    stopped_and_resumed(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn an_auto_match_stopped_by_sigterm_records_what_ended_as_well() {
    stopped_and_resumed(nix::sys::signal::Signal::SIGTERM);
}

fn stopped_and_resumed(signal: nix::sys::signal::Signal) {
    use std::io::{BufRead as _, BufReader};
    let host = Host::new();
    host.register_echo();
    host.ok(&["plugin", "permissions", "echo", "--grant", "metadata:write:*"]);
    // Paced (a call every 100 ms), so that the run is still going when it is stopped.
    host.ok(&["plugin", "search-settings", "echo", "--requests-per-minute", "600", "--target", "series"]);
    let mut child = Command::new(HOST)
        .args(["library", "auto-match", "--library", "manga", "--plugin", "echo", "--in-flight", "1", "--data-dir"])
        .arg(host.data.path())
        .env_remove("RUST_LOG")
        .env_remove("CODEX_ENCRYPTION_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut done_before = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // `[3/23] series manga-x: applied`
        if let Some(id) = line.strip_prefix('[').and_then(|rest| rest.split(' ').nth(2)) {
            done_before.push(id.trim_end_matches(':').to_owned());
        }
        if done_before.len() == 3 {
            break;
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let said = rest.join("\n");
    assert_eq!(status.code(), Some(130), "{said}");
    let stopped_by = format!("stopped by {} after", signal.as_str());
    assert!(said.contains(&stopped_by) && said.contains("run the same command again"), "{said}");
    for line in &rest {
        if let Some(id) = line.strip_prefix('[').and_then(|rest| rest.split(' ').nth(2)) {
            done_before.push(id.trim_end_matches(':').to_owned());
        }
    }
    assert!(done_before.len() < 23, "the run ended before it was stopped: {said}");
    // Every item that ended before the stop is recorded: the next run skips exactly those.
    let run = host.json(&["library", "auto-match", "--library", "manga", "--plugin", "echo", "--json"]);
    assert_eq!(run["tally"]["alreadyDone"], json!(done_before.len()), "{}", run["tally"]);
    let redone: Vec<&str> =
        run["reports"].as_array().unwrap().iter().map(|report| report["id"].as_str().unwrap()).collect();
    assert_eq!(redone.len(), 23 - done_before.len());
    for id in &done_before {
        assert!(!redone.contains(&id.as_str()), "{id} was done before the stop and again after");
    }
}
