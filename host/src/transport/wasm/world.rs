//! The plugin world (`wit/plugin.wit`): which imports a component may have.

use std::sync::LazyLock;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The world, as written for plugin authors; the one list of what a plugin may import.
pub const PLUGIN_WORLD: &str = include_str!("../../../../wit/plugin.wit");

/// The interfaces the world imports, without versions (`wasi:cli/stdin`).
static ALLOWED: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    PLUGIN_WORLD
        .lines()
        .filter_map(|line| line.trim().strip_prefix("import "))
        .map(|import| unversioned(import.trim_end_matches(';')))
        .collect()
});

fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(interface, _)| interface)
}

/// The imports of `component` that the plugin world does not allow, as the component
/// names them (with their versions).
pub fn forbidden_imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| !ALLOWED.contains(&unversioned(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_allows_stdio_clocks_random_files_and_http_but_not_sockets() {
        for allowed in [
            "wasi:cli/stdin",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
            "wasi:filesystem/preopens",
            "wasi:http/outgoing-handler",
        ] {
            assert!(ALLOWED.contains(&allowed), "{allowed}");
        }
        for denied in ["wasi:sockets/tcp", "wasi:sockets/ip-name-lookup", "wasi:cli/run"] {
            assert!(!ALLOWED.contains(&denied), "{denied}");
        }
        assert_eq!(ALLOWED.len(), 22);
        assert_eq!(unversioned("wasi:io/poll@0.2.0"), "wasi:io/poll");
    }
}
