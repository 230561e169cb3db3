//! A running plugin: started by a transport, initialized, its manifest validated, and
//! ready for typed calls. The same code serves every transport.

mod error;
mod id;
mod session;

pub use error::PluginError;
pub use id::PluginId;
pub use session::{ExitStep, Plugin, PluginSettings, Stopped};
