//! The admin's commands, run as real commands: register a plugin, give it credentials,
//! call it as registered, rotate the vault key. The plugin is the `sandbox-prober` example,
//! a real process that reports the environment it was given.

use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

/// The native `sandbox-prober`, built into this test's target directory.
fn prober() -> PathBuf {
    let target = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf();
    let profile = std::env::current_exe().unwrap().ancestors().nth(2).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut build = Command::new(cargo);
    build.current_dir(repo).args(["build", "--quiet", "-p", "sandbox-prober", "--target-dir"]).arg(&target);
    if profile.ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building sandbox-prober failed");
    profile.join("sandbox-prober")
}

struct Admin {
    data: tempfile::TempDir,
}

impl Admin {
    /// `codex-plugin-host ARGS --data-dir DATA`, with `key` as `CODEX_ENCRYPTION_KEY`.
    fn run(&self, args: &[&str], key: Option<&str>) -> Output {
        self.run_with_stdin(args, key, "")
    }

    /// [`Admin::run`], with `stdin` as the command's input.
    fn run_with_stdin(&self, args: &[&str], key: Option<&str>, stdin: &str) -> Output {
        let mut command = Command::new(HOST);
        // `--data-dir` goes before a plugin command's `--`.
        let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
        command.args(&args[..split]).arg("--data-dir").arg(self.data.path()).args(&args[split..]);
        command.env_remove("RUST_LOG").env_remove("CODEX_ENCRYPTION_KEY");
        if let Some(key) = key {
            command.env("CODEX_ENCRYPTION_KEY", key);
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the host binary runs");
        // A command refused before it reads its input may be gone already.
        if let Err(error) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
        child.wait_with_output().unwrap()
    }

    /// A file holding `value`, for `--set KEY=@FILE`.
    fn secret_file(&self, value: &str) -> String {
        let path = self.data.path().join(format!("{value}.secret"));
        std::fs::write(&path, value).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Sets one credential, its value given on stdin.
    fn set_credential(&self, plugin: &str, user: Option<&str>, name: &str, value: &str, key: &str) {
        let pair = format!("{name}=-");
        let mut args = vec!["plugin", "credentials", plugin, "--set", &pair];
        if let Some(user) = user {
            args.extend(["--user", user]);
        }
        let output = self.run_with_stdin(&args, Some(key), &format!("{value}\n"));
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn ok(&self, args: &[&str], key: Option<&str>) -> String {
        let output = self.run(args, key);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// The prober's `environment` probe: the variable names it sees.
fn environment_seen(answer: &str) -> String {
    let results = json_of(answer)["results"].as_array().unwrap().clone();
    let probe = results.iter().find(|result| result["externalId"] == "environment").unwrap();
    let detail: Value = serde_json::from_str(probe["title"].as_str().unwrap()).unwrap();
    detail["detail"].as_str().unwrap().to_owned()
}

#[test]
fn a_registered_plugin_gets_its_credentials_and_never_the_hosts_key() {
    let binary = prober();
    let plugins_dir = binary.parent().unwrap().to_str().unwrap().to_owned();
    let admin = Admin { data: tempfile::tempdir().unwrap() };
    let key = admin.ok(&["vault", "generate-key"], None).trim().to_owned();
    admin.ok(&["plugin", "add", "prober", "--credentials-in-env", "--", binary.to_str().unwrap()], None);
    admin.set_credential("prober", None, "api_key", "s3cret-value", &key);
    admin.ok(&["plugin", "connect", "prober", "--user", "alice", "--config", r#"{"lang":"en"}"#], None);
    admin.set_credential("prober", Some("alice"), "token", "alices-token", &key);

    let search = ["call", "--plugin", "prober", "--plugins-dir", &plugins_dir, "metadata/series/search"];
    let mut args = search.to_vec();
    args.push(r#"{"query":"127.0.0.1:9"}"#);
    let answer = admin.ok(&args, Some(&key));
    // The host runs with CODEX_ENCRYPTION_KEY; the plugin sees only its own credential.
    assert_eq!(environment_seen(&answer), "API_KEY,HOME,LANG,PATH,TMPDIR");
    // As alice: her credential on top of the plugin's.
    let mut as_alice = args.clone();
    as_alice.splice(3..3, ["--user", "alice"]);
    assert_eq!(environment_seen(&admin.ok(&as_alice, Some(&key))), "API_KEY,HOME,LANG,PATH,TMPDIR,TOKEN");

    let shown = admin.ok(&["plugin", "show", "prober"], None);
    assert!(!shown.contains("s3cret-value") && !shown.contains("alices-token"), "no plaintext: {shown}");
    let shown = json_of(&shown);
    assert_eq!(shown["credentials"], json!(["api_key"]));
    assert_eq!(shown["users"], json!([{"user": "alice", "config": {"lang": "en"}, "credentials": ["token"]}]));
    assert_eq!(shown["manifest"]["name"], json!("sandbox-prober"), "the manifest is cached at start");
    assert_eq!(shown["metrics"]["methods"]["metadata/series/search"]["successes"], json!(2));

    // Without the key: a clear refusal, and nothing stored is lost.
    let refused = admin.run_with_stdin(&["plugin", "credentials", "prober", "--set", "other=-"], None, "x\n");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no encryption key: set CODEX_ENCRYPTION_KEY"));
    // A value on the command line, where every user could read it, is refused.
    let on_command_line = admin.run(&["plugin", "credentials", "prober", "--set", "other=x"], Some(&key));
    assert_eq!(on_command_line.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&on_command_line.stderr).contains("give `other=-` and the value on stdin"));
    let no_value = admin.run(&["plugin", "credentials", "prober", "--set", "novalue"], Some(&key));
    assert!(String::from_utf8_lossy(&no_value.stderr).contains("--set takes KEY=VALUE"), "{no_value:?}");
    let refused = admin.run(&args, None);
    assert_eq!(refused.status.code(), Some(2), "a missing key is the caller's to give");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no encryption key"), "{refused:?}");
    let malformed = admin.run(&args, Some("c2hvcnQ="));
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("it decodes to 5 bytes"));

    // Rotation: every value moves to the new key, and the plugin still gets its credential.
    let new_key = admin.ok(&["vault", "generate-key"], None).trim().to_owned();
    let new_key_file = admin.data.path().join("new.key");
    std::fs::write(&new_key_file, &new_key).unwrap();
    let readable_by_others =
        admin.run(&["vault", "rotate", "--new-key-file", new_key_file.to_str().unwrap()], Some(&key));
    assert_eq!(readable_by_others.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&readable_by_others.stderr).contains("chmod 600"), "{readable_by_others:?}");
    std::fs::set_permissions(&new_key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rotated = admin.ok(&["vault", "rotate", "--new-key-file", new_key_file.to_str().unwrap()], Some(&key));
    assert_eq!(json_of(&rotated)["rotated"], json!(2), "the plugin's and alice's");
    assert_eq!(environment_seen(&admin.ok(&args, Some(&new_key))), "API_KEY,HOME,LANG,PATH,TMPDIR");
    let old_key_refused = admin.run(&args, Some(&key));
    assert!(String::from_utf8_lossy(&old_key_refused.stderr).contains("which this host does not have"));
}

#[test]
fn then_sends_several_methods_to_one_instance_of_a_registered_plugin() {
    let admin = Admin { data: tempfile::tempdir().unwrap() };
    let recorder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/wire-recorder.mjs");
    let answers = json!({"answers": {"sync/getUserInfo": {"externalId": "u1", "username": "reader"},
                                     "sync/pushProgress": {"success": [], "failed": [], "batch": 1}}});
    let config = answers.to_string();
    admin.ok(&["plugin", "add", "recorder", "--admin-config", &config, "--", "node", recorder.to_str().unwrap()], None);
    let push = r#"sync/pushProgress {"entries": [{"externalId": "s1", "status": "reading", "libraryId": "l1"}]}"#;
    let printed = admin.ok(&["call", "--plugin", "recorder", "sync/getUserInfo", "--then", push], None);
    let documents: Vec<Value> =
        serde_json::Deserializer::from_str(&printed).into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(documents.len(), 2, "{printed}");
    assert_eq!(
        documents[1],
        json!({"method": "sync/pushProgress", "result": {"success": [], "failed": [], "batch": 1}})
    );
    let record = std::fs::read_to_string(admin.data.path().join("plugins/recorder/plugin/requests.jsonl")).unwrap();
    let methods: Vec<Value> = record.lines().map(|line| json_of(line)["method"].clone()).collect();
    assert_eq!(
        methods,
        [json!("initialize"), json!("sync/getUserInfo"), json!("sync/pushProgress"), json!("shutdown")]
    );
}

#[test]
fn admin_commands_refuse_bad_input_with_exit_2_and_change_nothing() {
    let admin = Admin { data: tempfile::tempdir().unwrap() };
    admin.ok(&["plugin", "add", "echo", "--", "node", "echo.mjs"], None);
    for (args, fragment) in [
        (&["plugin", "add", "echo", "--", "node"][..], "already registered as `echo`"),
        (&["plugin", "add", "Bad_Id", "--", "node"], "invalid plugin id"),
        (&["plugin", "add", "web", "--allow-http-host", "x.org", "--", "node"], "apply to wasm plugins"),
        (&["plugin", "add", "py", "--env", "PYTHONWARNINGS=all", "--", "python3"], "would be dropped at every start"),
        (&["plugin", "add", "np", "--env", "npm_config_registry=http://x", "--", "npx"], "`NPM_`"),
        (&["plugin", "show", "missing"], "no plugin is registered as `missing`"),
        (&["plugin", "config", "echo", "--admin", "[1]"], "--admin must be a JSON object"),
        (&["plugin", "connect", "missing", "--user", "alice"], "no plugin is registered"),
        (&["call", "--plugin", "echo", "--user", "alice", "ping"], "user `alice` is not connected"),
        (&["call", "--plugin", "missing", "ping"], "no plugin is registered as `missing`"),
        (&["call", "--plugin", "echo", "--admin-config", "{}", "ping"], "cannot be used with"),
    ] {
        let output = admin.run(args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    }
    let listed = admin.ok(&["plugin", "list"], None);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert_eq!(json_of(listed.lines().next().unwrap())["state"], json!("enabled"));
    admin.ok(&["plugin", "disable", "echo"], None);
    let refused = admin.run(&["call", "--plugin", "echo", "ping"], None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("plugin `echo` is disabled: disabled by an admin"));
    admin.ok(&["plugin", "reset", "echo"], None);
    admin.ok(&["plugin", "remove", "echo"], None);
    assert_eq!(admin.ok(&["plugin", "list"], None), "");
}

/// `vault rotate` while other processes (`plugin credentials`, holding only the old key)
/// keep writing: the rotation reports success only when every value is under the new key,
/// and each writer either wrote a value that opens under the new key or was refused.
#[test]
fn a_rotation_with_writers_in_other_processes_leaves_nothing_under_the_old_key() {
    use codex_plugin_host::registry::Registry;
    use codex_plugin_host::vault::{EncryptionKey, Vault};
    use std::sync::atomic::{AtomicBool, Ordering};

    let admin = Admin { data: tempfile::tempdir().unwrap() };
    let key = admin.ok(&["vault", "generate-key"], None).trim().to_owned();
    admin.ok(&["plugin", "add", "echo", "--", "node", "echo.mjs"], None);
    // Enough values that the rotation takes a while.
    let many: Vec<String> = (0..300).map(|index| format!("--set=seed{index}=@{}", admin.secret_file("seed"))).collect();
    let mut args = vec!["plugin", "credentials", "echo"];
    args.extend(many.iter().map(String::as_str));
    admin.ok(&args, Some(&key));

    let stop = AtomicBool::new(false);
    let new_key = admin.ok(&["vault", "generate-key"], None).trim().to_owned();
    let new_key_file = admin.data.path().join("new.key");
    std::fs::write(&new_key_file, &new_key).unwrap();
    std::fs::set_permissions(&new_key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (written, refused, rotation) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|writer| {
                let (admin, key, stop) = (&admin, &key, &stop);
                scope.spawn(move || {
                    let (mut written, mut refused) = (Vec::new(), 0);
                    for round in 0.. {
                        if stop.load(Ordering::Acquire) && round > 2 {
                            break;
                        }
                        let field = format!("w{writer}r{round}");
                        let output = admin.run_with_stdin(
                            &["plugin", "credentials", "echo", "--set", &format!("{field}=-")],
                            Some(key),
                            "written during the rotation\n",
                        );
                        if output.status.success() {
                            written.push(field);
                        } else {
                            let stderr = String::from_utf8_lossy(&output.stderr);
                            assert!(stderr.contains("nothing was written"), "{stderr}");
                            refused += 1;
                        }
                    }
                    (written, refused)
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let rotation = admin.run(&["vault", "rotate", "--new-key-file", new_key_file.to_str().unwrap()], Some(&key));
        stop.store(true, Ordering::Release);
        let mut written = Vec::new();
        let mut refused = 0;
        for writer in writers {
            let (fields, count) = writer.join().unwrap();
            written.extend(fields);
            refused += count;
        }
        (written, refused, rotation)
    });
    assert!(rotation.status.success(), "{}", String::from_utf8_lossy(&rotation.stderr));
    assert_eq!(json_of(&String::from_utf8_lossy(&rotation.stdout))["finished"], json!(true));
    assert!(refused > 0, "no writer ran into the rotation: the test proved nothing");
    assert!(!written.is_empty(), "no writer wrote before the rotation");
    // Everything opens with the new key alone.
    let registry = Registry::open(&admin.data.path().join("codex-plugin-host.sqlite3")).unwrap();
    let new_only = Vault::new(EncryptionKey::from_base64(&new_key, "test").unwrap());
    let opened = registry.credentials(&new_only, "echo", None).expect("every value opens under the new key");
    for field in &written {
        assert_eq!(opened[field].expose(), "written during the rotation", "{field}");
    }
    assert_eq!(opened.len(), 300 + written.len());
}
