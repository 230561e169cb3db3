//! The `codex-plugin-host` command: see `codex-plugin-host --help`.

fn main() -> std::process::ExitCode {
    codex_plugin_host::cli::run()
}
