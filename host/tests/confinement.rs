//! Process plugins against a host that holds the vault key: a hostile plugin
//! (`tests/plugins/hostile.mjs`) tries to read the host's environment and command line, its
//! database, its key file and another plugin's data, and to leave a `setsid` child behind.
//! Confined, every attempt fails; knowingly unconfined, the same plugin reads the database
//! and the key file, which shows the attacks are real. Run as whoever runs the tests and,
//! when that is root, also as an unprivileged user through `setpriv`.

use serde_json::{Value, json};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");
/// `nobody`: the unprivileged user the host runs as in the `setpriv` tests.
const NOBODY: u32 = 65534;

fn hostile_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/plugins/hostile.mjs")
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A host's directories and key, set up for the user it runs as.
struct Setup {
    /// Holds the data directory and the key file; 0755 so the host's user can pass.
    _top: tempfile::TempDir,
    data: PathBuf,
    key_file: PathBuf,
    key: String,
    /// Run the host as this uid (through `setpriv`), or as ourselves.
    run_as: Option<u32>,
}

impl Setup {
    fn new(run_as: Option<u32>) -> Self {
        let top = tempfile::Builder::new().prefix("confinement").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = top.path().join("data");
        let secrets = top.path().join("secrets");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&secrets).unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
        let key_file = secrets.join("vault.key");
        let key = String::from_utf8(Command::new(HOST).args(["vault", "generate-key"]).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        std::fs::write(&key_file, &key).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(uid) = run_as {
            for path in [&data, &secrets, &key_file] {
                chown(path, Some(uid), Some(uid)).unwrap();
            }
        }
        Self { _top: top, data, key_file, key, run_as }
    }

    /// `codex-plugin-host ARGS --data-dir DATA`, holding the key in its environment (as the
    /// reference host does) and naming the key file on its command line.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = match self.run_as {
            Some(uid) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(HOST);
                command
            }
            None => Command::new(HOST),
        };
        let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
        command.args(&args[..split]).arg("--data-dir").arg(&self.data).args(&args[split..]);
        command.env_remove("RUST_LOG").env("CODEX_ENCRYPTION_KEY", &self.key).current_dir("/tmp");
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the host binary runs");
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        // A command refused before it reads its input may be gone already.
        if let Err(error) = input.write_all(stdin.unwrap_or("").as_bytes()) {
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

    /// Registers the hostile plugin as `id`, with a credential, and another plugin's data.
    fn register(&self, id: &str, extra: &[&str]) {
        let script = hostile_script();
        let mut args = vec!["plugin", "add", id];
        args.extend_from_slice(extra);
        args.extend(["--", "node", script.to_str().unwrap()]);
        self.ok(&args, None);
        let key_file = self.key_file.to_str().unwrap();
        self.ok(&["plugin", "credentials", id, "--key-file", key_file, "--set", "api_key=-"], Some("s3cret\n"));
    }

    /// Runs the attacks, with `extra` arguments to `call`; each result by name.
    fn attack(&self, id: &str, query: Value, extra: &[&str]) -> Vec<(String, bool, String)> {
        let params = json!({"query": query.to_string()}).to_string();
        let key_file = self.key_file.to_str().unwrap();
        let mut args = vec!["call", "--plugin", id, "--key-file", key_file];
        args.extend_from_slice(extra);
        args.extend(["metadata/series/search", &params]);
        let answer = self.ok(&args, None);
        let answer: Value = serde_json::from_str(&answer).unwrap();
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| {
                let probe: Value = serde_json::from_str(result["title"].as_str().unwrap()).unwrap();
                let name = result["externalId"].as_str().unwrap().to_owned();
                (name, probe["reached"].as_bool().unwrap(), probe["detail"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// Another plugin's private file, where it would be, made as the host would make it.
    fn other_plugins_file(&self) -> PathBuf {
        let mut dir = self.data.clone();
        for level in ["plugins", "other", "plugin"] {
            dir.push(level);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap();
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
            }
            if let Some(uid) = self.run_as {
                chown(&dir, Some(uid), Some(uid)).unwrap();
            }
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.join("secret.txt");
        std::fs::write(&file, "another plugin's data").unwrap();
        if let Some(uid) = self.run_as {
            chown(&file, Some(uid), Some(uid)).unwrap();
        }
        file
    }

    fn targets(&self) -> Value {
        let database = self.data.join("codex-plugin-host.sqlite3");
        json!({
            "read": [database, self.key_file, self.other_plugins_file()],
            "scanProc": [reversed(&self.key), reversed("s3cret")],
            "detach": true,
        })
    }
}

fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

fn assert_confined(setup: &Setup, extra: &[&str]) {
    let results = setup.attack("hostile", setup.targets(), extra);
    assert_eq!(results.len(), 5, "{results:?}");
    for (name, reached, detail) in &results[..4] {
        assert!(!reached, "the confined plugin reached {name}: {detail}");
    }
    let (name, _, marker) = &results[4];
    assert_eq!(name, "detach");
    assert!(all_gone(marker), "the plugin's setsid child outlived it");
}

/// The same plugin, knowingly unconfined, reads the database, the key file and the other
/// plugin's data: the attacks are real, and only the sandbox stops them. The host's
/// environment it reads only if it runs as root: to a plugin of the same unprivileged
/// user, the undumpable host's `/proc` files are closed even then.
fn assert_unconfined_reaches(setup: &Setup) {
    setup.register("trusted", &["--confinement", "unconfined"]);
    let results = setup.attack("trusted", setup.targets(), &[]);
    for (name, reached, detail) in &results[..3] {
        assert!(reached, "unconfined, {name} failed: {detail}");
    }
    let (_, environ_read, detail) = &results[3];
    assert_eq!(*environ_read, setup.run_as.is_none() && is_root(), "{detail}");
    assert!(all_gone(&results[4].2), "the launcher still kills what an unconfined plugin leaves");
}

/// The attacks, confined and then knowingly unconfined, by a host run as `run_as`.
fn attacks_as(run_as: Option<u32>) {
    let setup = Setup::new(run_as);
    setup.register("hostile", &[]);
    assert_confined(&setup, &[]);
    assert_unconfined_reaches(&setup);
}

#[test]
fn a_hostile_process_plugin_reaches_nothing_of_the_host() {
    attacks_as(None);
}

/// When the tests run as root, the same as an unprivileged user (`nobody`); otherwise
/// the test above already ran as one.
#[test]
fn a_hostile_process_plugin_reaches_nothing_of_an_unprivileged_host() {
    attacks_as(is_root().then_some(NOBODY));
}

/// What the plugin process itself holds: its uid, its capabilities, its descriptors.
fn self_report(setup: &Setup, extra: &[&str]) -> Value {
    let results = setup.attack("hostile", json!({"self": true}), extra);
    let (name, reached, detail) = &results[0];
    assert!(name == "self" && *reached, "{results:?}");
    serde_json::from_str(detail).unwrap()
}

/// A root host with separate uids turned off leaves its plugin uid 0, but without a single
/// capability; and no descriptor the host's own caller left open reaches a plugin.
#[test]
fn a_plugin_holds_no_capability_and_no_inherited_descriptor() {
    let setup = Setup::new(None);
    setup.register("hostile", &[]);
    let held = self_report(&setup, &["--disable-layer", "separate-uid"]);
    assert_eq!(held["capEff"], json!("0000000000000000"), "{held}");
    let held = self_report(&setup, &[]);
    assert_eq!(held["capEff"], json!("0000000000000000"), "{held}");
    // The host started with the database open on descriptor 7, as a careless caller might.
    let database = setup.data.join("codex-plugin-host.sqlite3");
    let key_file = setup.key_file.to_str().unwrap();
    let params = json!({"query": json!({"self": true}).to_string()}).to_string();
    let script = format!(
        "exec 7<'{}'; exec '{HOST}' call --plugin hostile --data-dir '{}' --key-file '{key_file}' metadata/series/search '{params}'",
        database.display(),
        setup.data.display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let detail: Value = serde_json::from_str(answer["results"][0]["title"].as_str().unwrap()).unwrap();
    let held: Value = serde_json::from_str(detail["detail"].as_str().unwrap()).unwrap();
    let descriptors = held["descriptors"].as_array().unwrap();
    assert!(!descriptors.iter().any(|target| target.as_str().unwrap().contains("sqlite3")), "{held}");
}

/// Whether every process marked `marker` is gone, waiting up to 10 s.
fn all_gone(marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_marked(marker) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    processes_marked(marker) == 0
}

/// Processes whose command line holds `marker`.
fn processes_marked(marker: &str) -> usize {
    let entries = std::fs::read_dir("/proc").unwrap().filter_map(Result::ok);
    let command_lines = entries.filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok());
    command_lines.filter(|line| String::from_utf8_lossy(line).contains(marker)).count()
}

/// A chain of 300 shells, each in a session of its own and started by the one before, is
/// gone when the call returns (at once in a PID namespace; round by round without one).
#[test]
fn a_chain_of_detached_descendants_is_gone_with_the_plugin() {
    let setup = Setup::new(None);
    setup.register("hostile", &[]);
    let results = setup.attack("hostile", json!({"chain": 300}), &[]);
    let marker = &results[0].2;
    assert!(marker.starts_with("codex-chain-"), "{results:?}");
    assert!(all_gone(marker), "the chain outlived its plugin");
}

/// Under a root host, Landlock alone and a separate uid alone each hold.
#[test]
fn each_layer_alone_holds_under_a_root_host() {
    if !is_root() {
        return;
    }
    let setup = Setup::new(None);
    setup.register("hostile", &[]);
    assert_confined(&setup, &["--disable-layer", "landlock"]);
    assert_confined(&setup, &["--disable-layer", "separate-uid"]);
    assert_confined(&setup, &[]);
}

/// Calls `plugin` with layers turned off, expecting a refusal (exit 3); its stderr.
fn refused_with_layers_off(setup: &Setup, plugin: &str, layers: &[&str]) -> String {
    let params = json!({"query": "{}"}).to_string();
    let key_file = setup.key_file.to_str().unwrap();
    let mut args = vec!["call", "--plugin", plugin, "--key-file", key_file];
    for layer in layers {
        args.extend(["--disable-layer", layer]);
    }
    args.extend(["metadata/series/search", &params]);
    let output = setup.run(&args, None);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn with_every_layer_off_a_plugin_does_not_start_and_the_refusal_says_what_is_missing() {
    let setup = Setup::new(None);
    setup.register("hostile", &[]);
    let stderr = refused_with_layers_off(&setup, "hostile", &["landlock", "separate-uid"]);
    assert!(stderr.contains("Landlock was turned off"), "{stderr}");
    assert!(stderr.contains("needs Landlock or a separate uid"), "{stderr}");
    // `plugin show` tells what the next start gets here.
    let shown: Value = serde_json::from_str(&setup.ok(&["plugin", "show", "hostile"], None)).unwrap();
    let layers = shown["sandbox"]["layers"].as_str().unwrap();
    assert!(layers.contains("landlock (ABI"), "{shown}");
    assert_eq!(layers.contains("separate uid"), is_root(), "{shown}");
}

#[test]
fn strict_confinement_without_landlock_is_refused() {
    let setup = Setup::new(None);
    setup.register("hostile", &["--confinement", "strict"]);
    let stderr = refused_with_layers_off(&setup, "hostile", &["landlock"]);
    assert!(stderr.contains("confinement `strict` needs Landlock"), "{stderr}");
}

/// An `npx` plugin runs confined: npm installs the package into the plugin's own data
/// directory (its `HOME`) and runs it, as the plugin's uid under Landlock. The package is
/// our test plugin, packed here into a tarball, so nothing is fetched.
#[test]
fn an_npx_plugin_runs_confined() {
    let top = tempfile::Builder::new().prefix("npx-plugin").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let package = top.path().join("package");
    std::fs::create_dir(&package).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/plugins/test-plugin.mjs");
    std::fs::copy(&script, package.join("test-plugin.mjs")).unwrap();
    let manifest =
        json!({"name": "codex-test-plugin", "version": "1.0.0", "bin": {"codex-test-plugin": "test-plugin.mjs"}});
    std::fs::write(package.join("package.json"), manifest.to_string()).unwrap();
    // The tarball in a folder of its own: the folder it is read from must not hold the data.
    let dist = top.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    let packed = Command::new("npm").args(["pack", "--silent"]).arg(&package).current_dir(&dist).output();
    let packed = packed.expect("npm runs");
    assert!(packed.status.success(), "npm pack: {}", String::from_utf8_lossy(&packed.stderr));
    let tarball = dist.join("codex-test-plugin-1.0.0.tgz");
    std::fs::set_permissions(&tarball, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = top.path().join("data");
    let output = Command::new(HOST)
        .args(["call", "ping", "--timeout", "60", "--data-dir"])
        .arg(&data)
        .args(["--", "npx", "--yes"])
        .arg(format!("--package={}", tarball.display()))
        .arg("codex-test-plugin")
        .current_dir(top.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "\"pong\"");
    assert!(stderr.contains("sandbox: landlock (ABI"), "{stderr}");
    assert_eq!(stderr.contains("separate uid"), is_root(), "{stderr}");
}
