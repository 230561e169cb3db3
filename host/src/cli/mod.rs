//! The `codex-plugin-host` command line, for plugin authors and admins.
//!
//! Output contract: results go to stdout as JSON, logs to stderr. Exit codes: 0 on a
//! result; 1 when the plugin answered with an error; 2 for bad input on the command line;
//! 3 when the host could not get an answer (not allowed, not started, timed out, died).

mod admin;
mod auto_match;
mod call;
mod check;
mod connect;
mod input;
mod install;
mod launch_args;
mod library;
mod logging;
mod metadata;
mod oauth_callback;
mod pipeline_host;
mod plugin_metadata;
mod recommendations;
mod releases;
mod serve;
mod status;
mod sync;
mod table;
mod termination;
mod token;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Runs Codex plugins: JSON-RPC over stdin/stdout, in a sandbox.
#[derive(Debug, Parser)]
#[command(name = "codex-plugin-host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Call(Box<call::CallArgs>),
    Check(Box<check::CheckArgs>),
    Plugin(Box<admin::PluginArgs>),
    Vault(admin::VaultArgs),
    Library(Box<library::LibraryArgs>),
    Metadata(Box<metadata::MetadataArgs>),
    /// Sync a user's reading progress with a sync plugin, or show the last syncs.
    Sync(Box<sync::SyncArgs>),
    /// A user's recommendations from their recommendation plugins, or dismiss one.
    Recommendations(Box<recommendations::RecommendationsArgs>),
    /// Release sources: the sources plugins registered, polls, the releases they found.
    Releases(Box<releases::ReleasesArgs>),
    /// Run the host as a server: the HTTP API under /api/v1 and the page, until SIGINT or
    /// SIGTERM.
    Serve(Box<serve::ServeArgs>),
    /// API tokens for the HTTP API and page: create (shown once), list, revoke.
    Token(token::TokenArgs),
    /// What bounds this machine's capacity (wasm instances, open files, address space) and
    /// the sandbox layers it offers, as JSON.
    Status,
    /// Internal: run by the host between itself and each process plugin, to confine it
    /// (Landlock, its own uid, no_new_privs) and to kill whatever it leaves behind. Not for
    /// direct use; it reads its instructions from the host.
    SandboxExec,
}

/// A failure of a command: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    /// Bad input on the command line (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 2 }
    }
}

/// Writes a command's output, a line, on stdout. A reader that went away (`| head`) is not
/// an error of the command.
pub fn print_line(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Parses the arguments, runs the command, prints the outcome; returns the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::SandboxExec) {
        crate::sandbox::confine::run();
    }
    // Before any thread or secret: no process of the same user may read this one's memory.
    crate::sandbox::protect_host_process();
    crate::limits::open_files::raise_to_hard_limit();
    let outcome = match cli.command {
        Command::SandboxExec => unreachable!("the launcher never returns"),
        Command::Call(args) => {
            logging::init(args.log_level());
            call::run(*args)
        }
        Command::Check(args) => {
            // The plugin's own lines are judged, not shown; the report says what matters.
            logging::init_without_plugin_lines(crate::protocol::types::initialize::LogLevel::Warn);
            check::run(*args)
        }
        Command::Plugin(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            admin::run_plugin(*args)
        }
        Command::Vault(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            admin::run_vault(args)
        }
        Command::Library(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            library::run(*args)
        }
        Command::Metadata(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            metadata::run(*args)
        }
        Command::Sync(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            sync::run(*args)
        }
        Command::Recommendations(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            recommendations::run(*args)
        }
        Command::Releases(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            releases::run(*args)
        }
        Command::Serve(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Info);
            serve::run(*args)
        }
        Command::Token(args) => {
            logging::init(crate::protocol::types::initialize::LogLevel::Warn);
            token::run(args)
        }
        Command::Status => status::run(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
