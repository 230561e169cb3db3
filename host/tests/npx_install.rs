//! The seeds' container deployment of an npx plugin: `plugin add` with the seeds' exact
//! arguments (`npx`, then `-y`, `--prefer-offline`, `@scope/name@1.2.3`, one per line) has
//! the host install the package once, from a registry on loopback, in the plugin's sandbox
//! with scripts off; afterwards the plugin starts with the registry gone and, as root, in a
//! network namespace without interfaces. The package is ours, packed here, with a
//! dependency, so the installed tree is what runs.

mod support;

use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::npm_registry::NpmRegistry;

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// `codex-plugin-host ARGS --data-dir DATA` (before a plugin command's `--`).
fn host(data: &Path, args: &[&str]) -> Output {
    host_in(data, args, &[])
}

/// [`host`], run under `wrapper` (e.g. `unshare --net`).
fn host_in(data: &Path, args: &[&str], wrapper: &[&str]) -> Output {
    let split = args.iter().position(|arg| *arg == "--").unwrap_or(args.len());
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(HOST);
            command
        }
        None => Command::new(HOST),
    };
    command.args(&args[..split]).arg("--data-dir").arg(data).args(&args[split..]);
    command.env_remove("RUST_LOG").env_remove("CODEX_ENCRYPTION_KEY").output().expect("the host runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> Value {
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {output:?}"))
}

/// What the packages' install scripts would leave in their own folders, were they run.
const SCRIPT_MARKER: &str = "install-script-ran";

/// Two packages: `@codex-test/recorder` (a program that imports its dependency) and
/// `@codex-test/recorder-core` (the wire recorder). Both have install scripts that would
/// leave [`SCRIPT_MARKER`] in their folder (which npm may write) if they ran.
fn packages(top: &Path) -> (PathBuf, PathBuf) {
    let script = format!("node -e \"require('fs').writeFileSync('{SCRIPT_MARKER}', 'ran')\"");
    let core = top.join("recorder-core");
    std::fs::create_dir_all(&core).unwrap();
    let recorder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/wire-recorder.mjs");
    std::fs::copy(recorder, core.join("wire-recorder.mjs")).unwrap();
    let core_manifest = json!({
        "name": "@codex-test/recorder-core", "version": "1.0.0", "files": ["wire-recorder.mjs"],
        "scripts": {"postinstall": script},
    });
    std::fs::write(core.join("package.json"), core_manifest.to_string()).unwrap();
    let program = top.join("recorder");
    std::fs::create_dir_all(&program).unwrap();
    std::fs::write(
        program.join("bin.mjs"),
        "#!/usr/bin/env node\nimport \"@codex-test/recorder-core/wire-recorder.mjs\";\n",
    )
    .unwrap();
    let manifest = json!({
        "name": "@codex-test/recorder", "version": "1.0.0", "bin": {"codex-recorder": "bin.mjs"}, "files": ["bin.mjs"],
        "dependencies": {"@codex-test/recorder-core": "1.0.0"}, "scripts": {"preinstall": script},
    });
    std::fs::write(program.join("package.json"), manifest.to_string()).unwrap();
    (program, core)
}

#[test]
fn an_npx_plugin_is_installed_once_and_then_starts_offline() {
    let top = tempfile::Builder::new().prefix("npx-install").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (program, core) = packages(top.path());
    let mut registry = NpmRegistry::start();
    registry.publish(&core);
    let served = registry.publish(&program);
    let data = top.path().join("data");
    let data = data.as_path();

    let answers =
        json!({"answers": {"ping": "pong", "sync/getUserInfo": {"externalId": "u1", "username": "reader", "n": 1}}});
    let answers = answers.to_string();
    let seeds = ["npx", "-y", "--prefer-offline", "@codex-test/recorder@1.0.0"];
    let mut add = vec!["plugin", "add", "recorder", "--npm-registry", &registry.url, "--admin-config", &answers, "--"];
    add.extend(seeds);
    let added = host(data, &add);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stderr(&added).contains("installed @codex-test/recorder@1.0.0 (sha512-"), "{}", stderr(&added));
    assert!(registry.requests() >= 3, "both packuments and a tarball were fetched");
    assert!(!scripts_ran(&data.join("plugins/recorder/install")), "an install script ran");
    if is_root() {
        let uids = std::fs::read_to_string(data.join("plugins/.sandbox-uids")).unwrap();
        let uid_of = |key: &str| uids.lines().find(|line| line.ends_with(&format!(" {key}"))).map(str::to_owned);
        let (plugin, installer) = (uid_of("recorder"), uid_of("recorder:install"));
        assert!(installer.is_some(), "npm ran as the installer's own uid: {uids}");
        assert_ne!(
            plugin.map(|line| line.split(' ').next().map(str::to_owned)),
            installer.map(|line| line.split(' ').next().map(str::to_owned))
        );
    }

    let shown = ok(host(data, &["plugin", "show", "recorder"]));
    let install = &shown["install"];
    assert_eq!((install["name"].as_str(), install["version"].as_str()), (Some(&*served.name), Some(&*served.version)));
    assert_eq!(install["integrity"], json!(served.integrity), "the integrity of the tarball served");
    assert_eq!(install["bin"], json!("bin.mjs"));
    assert_eq!(shown["definition"]["launch"]["args"], json!(seeds[1..]), "the admin's npx arguments are kept");

    // Sealed: the host's, nothing writable by anyone else, nothing left of the staging.
    let installed = data.join("plugins/recorder/install");
    for entry in walk(&installed) {
        let metadata = std::fs::symlink_metadata(&entry).unwrap();
        assert_eq!(metadata.uid(), nix::unistd::Uid::effective().as_raw(), "{}", entry.display());
        let link = metadata.file_type().is_symlink();
        assert!(link || metadata.mode() & 0o022 == 0, "{} is writable by others", entry.display());
    }
    assert!(!data.join("plugins/recorder/.install-staging").exists());

    // The registry goes away; the plugin starts from its install.
    registry.stop();
    let user = ok(host(data, &["call", "--plugin", "recorder", "sync/getUserInfo"]));
    assert_eq!(user, json!({"externalId": "u1", "username": "reader", "n": 1}));
    let recorded = std::fs::read_to_string(data.join("plugins/recorder/plugin/requests.jsonl")).unwrap();
    assert!(recorded.contains("sync/getUserInfo"), "the installed program ran as the plugin: {recorded}");
    if is_root() {
        let offline = host_in(data, &["call", "--plugin", "recorder", "ping"], &["unshare", "--net"]);
        assert_eq!(ok(offline), json!("pong"), "no network at all");
    }

    // A reinstall that cannot reach the registry fails and keeps the install that works.
    let failed = host(data, &["plugin", "install", "recorder"]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("npm could not install @codex-test/recorder@1.0.0"), "{}", stderr(&failed));
    assert_eq!(ok(host(data, &["call", "--plugin", "recorder", "ping"])), json!("pong"));
    assert_eq!(ok(host(data, &["plugin", "show", "recorder"]))["install"], *install);
}

/// The seeds' image build warms npm's cache (`npx -y PKG@1.2.3 --version`); at run time the
/// registry is out of reach. `--npm-cache` installs from a copy of that cache.
#[test]
fn an_operators_warmed_cache_installs_with_the_registry_gone() {
    let top = tempfile::Builder::new().prefix("npx-cache").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (program, core) = packages(top.path());
    let mut registry = NpmRegistry::start();
    registry.publish(&core);
    registry.publish(&program);
    // The image build: the operator's own npm, its own cache.
    let warmed = top.path().join("operator-npm-cache");
    let build = top.path().join("image-build");
    let prewarm = Command::new("npm")
        .args(["install", "--ignore-scripts", "--no-audit", "--no-fund", "--registry", &registry.url, "--cache"])
        .arg(&warmed)
        .arg("--prefix")
        .arg(&build)
        .arg("@codex-test/recorder@1.0.0")
        .output()
        .unwrap();
    assert!(prewarm.status.success(), "{}", String::from_utf8_lossy(&prewarm.stderr));
    registry.stop();

    let data = top.path().join("data");
    let data = data.as_path();
    let mut add = vec!["plugin", "add", "cold", "--npm-registry", &registry.url, "--"];
    add.extend(["npx", "-y", "--prefer-offline", "@codex-test/recorder@1.0.0"]);
    let cold = host(data, &add);
    assert_eq!(cold.status.code(), Some(3), "without the cache there is nothing to install from: {}", stderr(&cold));

    let cache = warmed.to_str().unwrap();
    let answers = r#"{"answers": {"ping": "pong"}}"#;
    let mut add = vec!["plugin", "add", "warm", "--npm-registry", &registry.url, "--npm-cache", cache];
    add.extend(["--admin-config", answers, "--"]);
    add.extend(["npx", "-y", "--prefer-offline", "@codex-test/recorder@1.0.0"]);
    let warm = host(data, &add);
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert_eq!(ok(host(data, &["call", "--plugin", "warm", "ping"])), json!("pong"));
    assert!(!scripts_ran(&data.join("plugins/warm/install")), "an install script ran");
    let operator = nix::unistd::Uid::effective().as_raw();
    assert!(
        walk(&warmed).iter().all(|path| std::fs::symlink_metadata(path).unwrap().uid() == operator),
        "only a copy is handed over"
    );

    // A cache that is no cache, one whose `_cacache` is a link (to a secret the plugin
    // would get a copy of), one someone else may write: each refused, the install kept.
    let linked = top.path().join("linked-cache");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(data.join("plugins"), linked.join("_cacache")).unwrap();
    let shared = top.path().join("shared-cache");
    std::fs::create_dir_all(shared.join("_cacache")).unwrap();
    std::fs::set_permissions(shared.join("_cacache"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let refusals = [
        (top.path().to_path_buf(), "holds no npm cache"),
        (linked, "holds no npm cache"),
        (shared, "writable by no one else"),
    ];
    for (cache, fragment) in refusals {
        let refused = host(data, &["plugin", "install", "warm", "--npm-cache", cache.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(2), "{}: {}", cache.display(), stderr(&refused));
        assert!(stderr(&refused).contains(fragment), "{}: {}", cache.display(), stderr(&refused));
    }
    assert_eq!(ok(host(data, &["call", "--plugin", "warm", "ping"])), json!("pong"));
}

/// Whether an install script left its marker anywhere in an install.
fn scripts_ran(install: &Path) -> bool {
    walk(install).iter().any(|path| path.file_name().is_some_and(|name| name == SCRIPT_MARKER))
}

#[test]
fn a_package_that_cannot_be_installed_registers_nothing() {
    let top = tempfile::Builder::new().prefix("npx-refused").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let registry = NpmRegistry::start();
    let data = top.path().join("data");
    let data = data.as_path();
    let cases: [(&[&str], i32, &str); 4] = [
        (&["npx", "-y", "@codex-test/missing@1.0.0"], 3, "npm could not install @codex-test/missing@1.0.0"),
        (&["npx", "-c", "echo hi"], 2, "register the plugin with `--no-install`"),
        (&["npx", "-y", "./local-folder"], 2, "not a package of a registry"),
        (&["npx", "-y", "Bad_Name@1.0.0"], 2, "not a valid npm package name"),
    ];
    for (command, code, fragment) in cases {
        let mut add = vec!["plugin", "add", "refused", "--npm-registry", &registry.url, "--"];
        add.extend(command);
        let output = host(data, &add);
        assert_eq!(output.status.code(), Some(code), "{command:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(fragment), "{command:?}: {}", stderr(&output));
        let shown = host(data, &["plugin", "show", "refused"]);
        assert_eq!(shown.status.code(), Some(2), "{command:?} was registered");
        assert!(!data.join("plugins/refused/install").exists(), "{command:?}");
    }
    let bad_url =
        host(data, &["plugin", "add", "x", "--npm-registry", "ftp://example.test", "--", "npx", "-y", "a@1.0.0"]);
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    assert!(stderr(&bad_url).contains("must start with http:// or https://"), "{}", stderr(&bad_url));
}

/// Every path under `dir`, `dir` included, links not followed.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    if std::fs::symlink_metadata(dir).is_ok_and(|metadata| metadata.is_dir()) {
        for entry in std::fs::read_dir(dir).unwrap() {
            found.extend(walk(&entry.unwrap().path()));
        }
    }
    found
}
