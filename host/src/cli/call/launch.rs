//! From `call`'s arguments to a plugin ready to start: its launch (a confined process or a
//! wasm component), its settings and its storage, all checked before anything starts.

use std::path::PathBuf;

use super::CallArgs;
use super::steps::{self, Step};
use crate::cli::Failure;
use crate::cli::input::{absolute, read_credentials};
use crate::cli::launch_args::{Identity, Launch, host_failure};
use crate::host::DATABASE_FILE;
use crate::plugin::{PluginId, PluginSettings};
use crate::sandbox::Sandbox;

/// Everything `call` needs, checked before anything starts.
pub(super) struct Request {
    pub steps: Vec<Step>,
    pub settings: PluginSettings,
    pub launch: Launch,
    pub database: PathBuf,
}

pub(super) fn prepare(args: &CallArgs) -> Result<Request, Failure> {
    let steps = steps::steps(args)?;
    let credentials = read_credentials("--credentials", args.credentials.as_deref())?;
    let id = match &args.plugin_id {
        Some(id) => PluginId::new(id).map_err(Failure::usage)?,
        None => args.launch.derived_id()?,
    };
    let data_dir = absolute(&args.launch.data_dir)?;
    crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
    let sandbox = Sandbox::new(args.launch.sandbox_config(), &data_dir, Vec::new());
    let identity = Identity { id, credentials, log_level: args.log_level(), http_allowed: true, deny_network: false };
    let prepared = args.launch.prepare(&sandbox, identity)?;
    Ok(Request { steps, settings: prepared.settings, launch: prepared.launch, database: data_dir.join(DATABASE_FILE) })
}
