//! The integrations' own records in the host's database: one connection per store, opened
//! (and migrated) as every part of the host opens the file.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::IntegrationError;

pub(super) struct Records(Mutex<Connection>);

impl Records {
    pub fn open(path: &Path) -> Result<Self, IntegrationError> {
        Ok(Self(Mutex::new(crate::database::open(path).map_err(failed)?)))
    }

    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A database error, as the integrations report it.
pub(super) fn failed(error: impl std::fmt::Display) -> IntegrationError {
    IntegrationError::Store(error.to_string())
}
