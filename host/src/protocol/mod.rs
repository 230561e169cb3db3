//! The plugin protocol. The wire types live in the `codex-plugin-protocol` crate, shared
//! with the guest SDK; [`codec`] adds what only the host needs: reading bounded lines from
//! an async byte stream.

pub mod codec;

pub use codex_plugin_protocol::{
    Capability, ErrorCode, ErrorObject, HostMethod, Incoming, Manifest, ManifestError, MethodSpec, PluginRequest,
    Response, codes, manifest, message, methods, types,
};
