//! What an install left: the package's version, the integrity npm checked it against, and
//! the program npx would have run. Pure: reads JSON already read from disk.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Component, Path};

use super::npx::PackageSpec;

/// A package the host installed for a plugin, as recorded in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledPackage {
    pub name: String,
    /// What the admin asked for (`@scope/name@1.2.3`, or a range, or nothing for latest).
    pub requested: String,
    /// The version installed.
    pub version: String,
    /// The Subresource Integrity npm checked the tarball against (`sha512-…`).
    pub integrity: String,
    /// The program, relative to the package's folder.
    pub bin: String,
    /// Where it was fetched from.
    pub registry: String,
    /// When, in seconds since the epoch.
    pub installed_at: i64,
}

impl InstalledPackage {
    /// The program's path under an install directory.
    pub fn program(&self, install_dir: &Path) -> std::path::PathBuf {
        install_dir.join("node_modules").join(&self.name).join(&self.bin)
    }
}

/// The program npx runs for `spec`: the only one the package declares, or the one named
/// after the package without its scope.
pub fn choose_bin(spec: &PackageSpec, package_json: &Value) -> Result<String, String> {
    let path = match package_json.get("bin") {
        Some(Value::String(path)) => path.clone(),
        Some(Value::Object(bins)) if bins.len() == 1 => {
            bins.values().next().and_then(Value::as_str).unwrap_or_default().to_owned()
        }
        Some(Value::Object(bins)) => match bins.get(spec.unscoped_name()).and_then(Value::as_str) {
            Some(path) => path.to_owned(),
            None => {
                let names: Vec<&str> = bins.keys().map(String::as_str).collect();
                return Err(format!(
                    "{} has several programs ({}) and none named `{}`: npx could not choose one either",
                    spec.name,
                    names.join(", "),
                    spec.unscoped_name()
                ));
            }
        },
        _ => {
            return Err(format!(
                "{} declares no program (`bin` in its package.json): it cannot run as a plugin",
                spec.name
            ));
        }
    };
    let relative = Path::new(path.trim_start_matches("./"));
    let inside = !path.is_empty() && relative.components().all(|component| matches!(component, Component::Normal(_)));
    if inside {
        Ok(relative.to_string_lossy().into_owned())
    } else {
        Err(format!("{}'s program `{path}` is outside its package", spec.name))
    }
}

/// The integrity npm recorded for the package in the install's `package-lock.json`.
pub fn locked_integrity(spec: &PackageSpec, package_lock: &Value) -> Result<String, String> {
    let entry =
        package_lock.pointer(&format!("/packages/node_modules~1{}", spec.name.replace('~', "~0").replace('/', "~1")));
    match entry.and_then(|entry| entry.get("integrity")).and_then(Value::as_str) {
        Some(integrity) if integrity.starts_with("sha512-") || integrity.starts_with("sha1-") => {
            Ok(integrity.to_owned())
        }
        Some(other) => Err(format!("npm recorded an integrity of an unknown kind for {}: {other}", spec.name)),
        None => Err(format!("npm recorded no integrity for {} in package-lock.json", spec.name)),
    }
}

/// Whether a program is one `node` runs: a JavaScript file, or a script whose first line
/// names node.
pub fn runs_with_node(program_head: &[u8]) -> bool {
    match program_head.strip_prefix(b"#!") {
        Some(shebang) => {
            let line = shebang.split(|byte| *byte == b'\n').next().unwrap_or_default();
            String::from_utf8_lossy(line).contains("node")
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(text: &str) -> PackageSpec {
        PackageSpec::parse(text).unwrap()
    }

    #[test]
    fn the_program_is_chosen_as_npx_chooses_it() {
        let echo = spec("@ashdev/codex-plugin-metadata-echo@1.9.3");
        assert_eq!(choose_bin(&echo, &json!({"bin": "dist/index.js"})).unwrap(), "dist/index.js");
        assert_eq!(choose_bin(&echo, &json!({"bin": {"anything": "./dist/cli.js"}})).unwrap(), "dist/cli.js");
        let several = json!({"bin": {"other": "o.js", "codex-plugin-metadata-echo": "e.js"}});
        assert_eq!(choose_bin(&echo, &several).unwrap(), "e.js");
        let error = choose_bin(&echo, &json!({"bin": {"a": "a.js", "b": "b.js"}})).unwrap_err();
        assert!(error.contains("several programs (a, b)"), "{error}");
        assert!(choose_bin(&echo, &json!({"main": "x.js"})).unwrap_err().contains("declares no program"));
        assert!(choose_bin(&echo, &json!({"bin": "../../etc/passwd"})).unwrap_err().contains("outside its package"));
        assert!(choose_bin(&echo, &json!({"bin": "/usr/bin/env"})).unwrap_err().contains("outside its package"));
    }

    #[test]
    fn the_integrity_is_read_from_the_lock() {
        let echo = spec("@ashdev/echo@1.0.0");
        let lock = json!({"packages": {"node_modules/@ashdev/echo": {"version": "1.0.0", "integrity": "sha512-abc"}}});
        assert_eq!(locked_integrity(&echo, &lock).unwrap(), "sha512-abc");
        assert!(locked_integrity(&echo, &json!({"packages": {}})).unwrap_err().contains("no integrity"));
    }

    #[test]
    fn node_scripts_are_recognized() {
        assert!(runs_with_node(b"#!/usr/bin/env node\nimport x"));
        assert!(runs_with_node(b"import x from 'y';"));
        assert!(!runs_with_node(b"#!/bin/sh\nnode x"));
    }
}
