//! Limits shared by every transport, each written once.
//!
//! - [`timeout`]: how long a call may take, per plugin and per call.
//! - [`quota`]: what a plugin may keep in storage.
//! - [`open_files`]: the host's own descriptor limit, raised at start.

pub mod open_files;
pub mod quota;
pub mod timeout;

pub use quota::{QuotaError, ScopedStorage, StorageLimits, StorageQuota};
pub use timeout::{DEFAULT_REQUEST_TIMEOUT, Timeouts};
