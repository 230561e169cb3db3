//! Lists the example plugins of `guest-examples/` (every folder with a Cargo.toml, the SDK
//! aside) for the tests, which must have a test per example.

use std::path::Path;

fn main() {
    let examples_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples");
    println!("cargo::rerun-if-changed={}", examples_dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&examples_dir)
        .expect("guest-examples/ exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name != "sdk")
        .collect();
    names.sort();
    let list = names.iter().map(|name| format!("{name:?}")).collect::<Vec<_>>().join(", ");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("examples.rs");
    std::fs::write(out, format!("&[{list}]")).expect("OUT_DIR is writable");
    let checks: String = names
        .iter()
        .map(|name| {
            let test = name.replace('-', "_");
            format!("    ({name:?}, {test}::process as fn()),\n    ({name:?}, {test}::wasm as fn()),\n")
        })
        .collect();
    let table = format!(
        "/// Each example and its test: a missing test is a compile error.\n#[allow(dead_code)]\nconst EVERY_EXAMPLE_HAS_A_TEST: &[(&str, fn())] = &[\n{checks}];\n"
    );
    std::fs::write(Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("example_tests.rs"), table)
        .expect("OUT_DIR is writable");
}
