//! `codex-plugin-host call`, run as a real command against real plugin processes.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn test_plugin() -> String {
    repo().join("tests/plugins/test-plugin.mjs").to_string_lossy().into_owned()
}

/// Runs `codex-plugin-host call ARGS -- node test-plugin.mjs SCENARIO` in `data`.
fn call(data: &Path, args: &[&str], plugin: &[&str]) -> Output {
    Command::new(HOST)
        .arg("call")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg("--")
        .args(plugin)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the host binary runs")
}

fn stdout_json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {text}\nstderr: {}", stderr(output)))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn steps(output: &Output) -> Vec<Value> {
    let results = stdout_json(output)["results"].as_array().cloned().unwrap_or_default();
    results.iter().map(|result| serde_json::from_str(result["title"].as_str().unwrap()).unwrap()).collect()
}

#[test]
fn ping_and_initialize_print_json_on_stdout_and_logs_on_stderr() {
    let data = tempfile::tempdir().unwrap();
    let script = test_plugin();
    let output = call(data.path(), &["ping"], &["node", &script]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_json(&output), json!("pong"));
    let output = call(data.path(), &["initialize"], &["node", &script]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_json(&output)["name"], json!("test-plugin"));
}

#[test]
fn storage_persists_between_calls_of_the_same_plugin() {
    let data = tempfile::tempdir().unwrap();
    let script = test_plugin();
    let set = call(data.path(), &["metadata/series/search", r#"{"query":"set:remember=\"me\""}"#], &["node", &script]);
    assert!(set.status.success(), "{}", stderr(&set));
    let get = call(data.path(), &["metadata/series/search", r#"{"query":"get:remember"}"#], &["node", &script]);
    assert_eq!(steps(&get)[0], json!({"data": "me"}));
    assert!(data.path().join("codex-plugin-host.sqlite3").exists());
    let other = call(
        data.path(),
        &["metadata/series/search", r#"{"query":"get:remember"}"#, "--plugin-id", "other"],
        &["node", &script],
    );
    assert_eq!(steps(&other)[0], json!({"data": null}), "another plugin id is another scope");
}

#[test]
fn a_plugin_error_exits_1_with_its_code_and_message() {
    let data = tempfile::tempdir().unwrap();
    let output = call(data.path(), &["sync/getUserInfo"], &["node", &test_plugin()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("no access token") && message.contains("-32003"), "{message}");
    assert!(output.stdout.is_empty());
    // A refused `initialize` carries the plugin's own code, not the host's -32603.
    let output = call(data.path(), &["ping"], &["node", &test_plugin(), "refuses-init"]);
    let message = stderr(&output);
    assert!(message.contains("missing apiKey") && message.ends_with("[-32004]\n"), "{message}");
    assert!(!message.contains("-32603"), "{message}");
}

#[test]
fn bad_input_on_the_command_line_exits_2_before_anything_starts_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let script = test_plugin();
    let stored = call(data.path(), &["metadata/series/search", r#"{"query":"set:kept=7"}"#], &["node", &script]);
    assert!(stored.status.success(), "{}", stderr(&stored));
    let bad_credentials = data.path().join("credentials.json");
    std::fs::write(&bad_credentials, r#"{"api_key": 5}"#).unwrap();
    let bad_credentials = bad_credentials.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["metadata/series/search", "{query: naruto}"], "PARAMS_JSON is not valid JSON"),
        (&["metadata/series/search", r#"{"limit": 5}"#], "missing field `query`"),
        (&["ping", "--admin-config", "[1]"], "--admin-config must be a JSON object"),
        (&["ping", "--user-config", "{"], "--user-config is not valid JSON"),
        (&["ping", "--credentials", bad_credentials], "`api_key` must be a string"),
        (&["ping", "--credentials", "/nonexistent/credentials.json"], "--credentials: could not read"),
        (&["library/scan"], "not part of the plugin protocol [-32601]"),
        (&["ping", "--timeout", "0"], "--timeout must be between"),
        (&["ping", "--timeout", "1e20"], "--timeout must be between"),
    ];
    for (args, fragment) in cases {
        refused_before_start(data.path(), args, fragment, &["node", &script]);
    }
    // A method the plugin did not declare is the caller's mistake too (it is not sent).
    let undeclared = call(data.path(), &["metadata/book/search", r#"{"query":"dune"}"#], &["node", &script]);
    assert_eq!(undeclared.status.code(), Some(2), "{}", stderr(&undeclared));
    assert!(stderr(&undeclared).contains("does not declare"), "{}", stderr(&undeclared));
    let kept = call(data.path(), &["metadata/series/search", r#"{"query":"get:kept"}"#], &["node", &script]);
    assert_eq!(steps(&kept)[0], json!({"data": 7}), "nothing stored was lost");
}

/// Runs `call ARGS` as plugin `never-started` and checks it exits 2 with `fragment` on
/// stderr, without starting the plugin.
fn refused_before_start(data: &Path, args: &[&str], fragment: &str, plugin: &[&str]) {
    let mut args = args.to_vec();
    args.extend(["--plugin-id", "never-started"]);
    let output = call(data, &args, plugin);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
    assert!(stderr(&output).contains(fragment), "{args:?}: {}", stderr(&output));
    assert!(!data.join("plugins/never-started").exists(), "{args:?} started the plugin");
}

/// Every JSON document on stdout, in order.
fn documents(output: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::Deserializer::from_str(&text).into_iter().map(|document| document.expect("stdout is JSON")).collect()
}

#[test]
fn then_sends_several_methods_to_one_instance_and_prints_each_result_as_written() {
    let data = tempfile::tempdir().unwrap();
    let recorder = repo().join("tests/plugins/wire-recorder.mjs");
    let user = json!({"externalId": "u1", "username": "reader"});
    let pulled = json!({"entries": [{"externalId": "s1", "status": "reading", "progress": {"chapters": 1, "volumes": 2}, "x": {"y": 3}}], "hasMore": false});
    let admin = json!({"answers": {"sync/getUserInfo": user, "sync/pullProgress": pulled, "ping": "pong"}}).to_string();
    let getting_the_user_then = |second: &'static str| {
        let mut args = vec!["sync/getUserInfo", "--then", second, "--then", "ping", "--admin-config"];
        args.extend([admin.as_str(), "--plugin-id", "recorder"]);
        args
    };
    let args = getting_the_user_then(r#"sync/pullProgress {"limit": 500, "weight": 1.0}"#);
    let two_values = ["sync/getUserInfo", "--then", "sync/pullProgress", r#"{"limit": 500, "weight": 1.0}"#];
    let mut two_values = two_values.to_vec();
    two_values.extend(["--then", "ping", "--admin-config", admin.as_str(), "--plugin-id", "recorder"]);
    let output = call(data.path(), &args, &["node", recorder.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        documents(&output),
        [
            json!({"method": "sync/getUserInfo", "result": user}),
            json!({"method": "sync/pullProgress", "result": pulled}),
            json!({"method": "ping", "result": "pong"}),
        ],
        "each result as the plugin wrote it, integers included"
    );
    let record = std::fs::read_to_string(data.path().join("plugins/recorder/plugin/requests.jsonl")).unwrap();
    let requests: Vec<Value> = record.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let methods: Vec<&str> = requests.iter().map(|request| request["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["initialize", "sync/getUserInfo", "sync/pullProgress", "ping", "shutdown"], "one instance");
    assert_eq!(requests[2]["params"], json!({"limit": 500, "weight": 1.0}));
    // The same with the params as a second value of `--then`: they go to its method.
    std::fs::remove_file(data.path().join("plugins/recorder/plugin/requests.jsonl")).unwrap();
    let output = call(data.path(), &two_values, &["node", recorder.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let record = std::fs::read_to_string(data.path().join("plugins/recorder/plugin/requests.jsonl")).unwrap();
    let requests: Vec<Value> = record.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!((&requests[1]["params"], &requests[2]["params"]), (&json!({}), &json!({"limit": 500, "weight": 1.0})));

    // The first error stops the rest, after printing what came before it.
    let args = getting_the_user_then("sync/status");
    let output = call(data.path(), &args, &["node", recorder.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(documents(&output), [json!({"method": "sync/getUserInfo", "result": user})]);
    let message = stderr(&output);
    assert!(
        message.contains("step 2 of 3 (`sync/status`)") && message.contains("the 1 after it were not sent"),
        "{message}"
    );

    // Every step is checked before the plugin starts.
    let cases: [(&[&str], &str); 4] = [
        (&["ping", "--then", "library/scan"], "not part of the plugin protocol"),
        (&["ping", "--then", r#"metadata/series/search {"limit": 1}"#], "missing field `query`"),
        (&["shutdown", "--then", "ping"], "`shutdown` ends the plugin"),
        (&["ping", "--then", "{}"], "--then needs a METHOD before its PARAMS_JSON"),
    ];
    for (args, fragment) in cases {
        refused_before_start(data.path(), args, fragment, &["node", recorder.to_str().unwrap()]);
    }
}

#[test]
fn relative_script_paths_resolve_from_the_callers_directory() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(HOST)
        .args(["call", "ping", "--data-dir"])
        .arg(data.path())
        .args(["--", "node", "tests/plugins/test-plugin.mjs"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_json(&output), json!("pong"));
}

/// A `node` planted first on the host's own `PATH` is never the one run: bare names are
/// looked up on the plugin's fixed `PATH`.
#[test]
fn a_bare_command_is_not_taken_from_the_hosts_path() {
    let data = tempfile::tempdir().unwrap();
    let planted = tempfile::tempdir().unwrap();
    let marker = planted.path().join("ran");
    let fake = planted.path().join("node");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display())).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let host_path = format!("{}:{}", planted.path().display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new(HOST)
        .args(["call", "ping", "--data-dir"])
        .arg(data.path())
        .args(["--", "node", &test_plugin()])
        .env("PATH", host_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_json(&output), json!("pong"));
    assert!(!marker.exists(), "the node planted on the host's PATH ran");
}

#[test]
fn host_errors_exit_3_with_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let output = call(data.path(), &["ping"], &["bash", "-c", "echo hi"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("command `bash` is not allowed"), "{}", stderr(&output));
    let output = call(data.path(), &["ping", "--timeout", "0.5"], &["node", &test_plugin(), "never-answers"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("did not answer `ping` within 500 ms"), "{}", stderr(&output));
    assert_eq!(stderr(&output).lines().filter(|line| line.starts_with("error:")).count(), 1);
}

#[test]
fn the_host_environment_is_not_inherited_and_blocked_variables_are_named() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(HOST)
        .args([
            "call",
            "metadata/series/search",
            r#"{"query":"env"}"#,
            "--env",
            "LD_PRELOAD=/tmp/x.so",
            "--env",
            "REGION=eu",
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--")
        .args(["node", &test_plugin()])
        .env("CODEX_ENCRYPTION_KEY", "aG9zdCBzZWNyZXQ=")
        .env("DATABASE_URL", "postgres://host-secret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let environment = &steps(&output)[0]["env"];
    assert_eq!(environment["REGION"], json!("eu"));
    for absent in ["CODEX_ENCRYPTION_KEY", "DATABASE_URL", "LD_PRELOAD"] {
        assert!(environment.get(absent).is_none(), "{absent} reached the plugin: {environment}");
    }
    assert!(stderr(&output).contains("dropping environment variable `LD_PRELOAD`"), "{}", stderr(&output));
}

#[test]
fn the_published_open_library_plugin_answers_a_book_search() {
    let fetch = Command::new("bash").arg(repo().join("tests/fetch-plugins.sh")).status().unwrap();
    assert!(fetch.success(), "tests/fetch-plugins.sh needs npm and the npm registry");
    let plugin = repo().join("tests/plugins/npm/metadata-openlibrary/dist/index.js");
    let data = tempfile::tempdir().unwrap();
    let output =
        call(data.path(), &["metadata/book/search", r#"{"query":"dune"}"#], &["node", plugin.to_str().unwrap()]);
    match output.status.code() {
        Some(0) => assert!(stdout_json(&output)["results"].is_array()),
        Some(1) => assert!(stderr(&output).contains("-3200"), "a clean plugin error: {}", stderr(&output)),
        other => panic!("exit {other:?}: {}", stderr(&output)),
    }
}

#[test]
fn sigterm_stops_the_command_and_its_plugin() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(HOST)
        .args(["call", "ping", "--log-level", "debug", "--data-dir"])
        .arg(data.path())
        .args(["--", "node", &test_plugin(), "stuck"])
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(command.stderr.take().unwrap()).lines();
    let started = log.by_ref().map_while(Result::ok).find(|line| line.contains("started plugin process")).unwrap();
    let pid: i32 = started.split("pid=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    // The ping is on its way to a plugin that never answers, and ignores SIGTERM and the end
    // of its input; now the operator gives up. Only the host's escalation can stop it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(command.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert_eq!(command.wait().unwrap().code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|line| line.contains("interrupted by SIGTERM")), "{rest:?}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "plugin {pid} outlived the command");
}

#[test]
fn a_component_runs_in_wasm_mode_with_its_storage_kept_between_calls() {
    // The test binary lives in <target>/<profile>/deps; the component goes to
    // <target>/wasm32-wasip2/guest.
    let target = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(repo())
        .args(["build", "--quiet", "-p", "recommendations-echo", "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(built.success(), "building the component failed");
    let component = target.join("wasm32-wasip2/guest/recommendations-echo.wasm");
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(HOST)
            .arg("call")
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--wasm")
            .arg(&component)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let manifest = run(&["initialize"]);
    assert!(manifest.status.success(), "{}", stderr(&manifest));
    assert_eq!(stdout_json(&manifest)["capabilities"], json!({"userRecommendationProvider": true}));
    let dismissed = run(&["recommendations/dismiss", r#"{"externalId":"more-1"}"#]);
    assert_eq!(stdout_json(&dismissed), json!({"dismissed": true}), "{}", stderr(&dismissed));
    let library = r#"{"library":[{"seriesId":"1","title":"Dune"},{"seriesId":"2","title":"Emma"}]}"#;
    let recommended = run(&["recommendations/get", library]);
    let ids: Vec<Value> = stdout_json(&recommended)["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["externalId"].clone())
        .collect();
    assert_eq!(ids, [json!("more-2")], "the dismissal was kept in storage between calls");
    let cached: Vec<_> = std::fs::read_dir(data.path().join("wasm-cache")).unwrap().collect();
    assert_eq!(cached.len(), 1, "one compiled entry, reused by every call after the first");
    let bad_host = run(&["ping", "--allow-http-host", "https://api.example.org"]);
    assert_eq!(bad_host.status.code(), Some(2), "{}", stderr(&bad_host));
    assert!(stderr(&bad_host).contains(r#"allowed HTTP host "https://api.example.org" is not valid"#));
}

#[test]
fn status_reports_what_bounds_the_hosts_capacity() {
    let output = Command::new(HOST).arg("status").env_remove("RUST_LOG").output().unwrap();
    let status = stdout_json(&output);
    let capacity = status["wasmCapacity"].as_u64().unwrap();
    assert!((1..=1000).contains(&capacity), "{status}");
    assert_eq!(status["openFiles"]["soft"], status["openFiles"]["hard"], "raised to the hard limit: {status}");
    assert!(status["processSandbox"].is_string() || status["processSandbox"]["refused"].is_string(), "{status}");
}
