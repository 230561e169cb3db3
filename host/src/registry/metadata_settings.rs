//! Each plugin's metadata settings (permissions, libraries, search and match), kept beside
//! its registration and removed with it. Host-side only: a change does not restart the
//! plugin.

use rusqlite::{OptionalExtension, params};

use super::{Registry, RegistryError};
use crate::metadata::settings::MetadataSettings;

/// What the pipeline builds a plugin's provider from, read in one query: its manifest
/// and its metadata settings as stored. Equal sources build equal providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSource {
    /// As its last start recorded it; `None` before its first start.
    pub manifest: Option<String>,
    /// `None`: the defaults.
    pub settings: Option<String>,
}

impl ProviderSource {
    pub fn settings(&self, plugin: &str) -> Result<MetadataSettings, RegistryError> {
        parse_settings(plugin, self.settings.as_deref())
    }
}

impl Registry {
    /// The plugin's metadata settings (the defaults when it has none).
    pub fn metadata_settings(&self, plugin: &str) -> Result<MetadataSettings, RegistryError> {
        self.provider_source(plugin)?.settings(plugin)
    }

    /// The plugin's manifest and metadata settings as stored.
    pub fn provider_source(&self, plugin: &str) -> Result<ProviderSource, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT p.manifest, s.settings FROM plugins p
             LEFT JOIN plugin_metadata_settings s ON s.plugin_id = p.id WHERE p.id = ?",
        )?;
        let found = statement
            .query_row([plugin], |row| Ok(ProviderSource { manifest: row.get(0)?, settings: row.get(1)? }))
            .optional()?;
        found.ok_or_else(|| RegistryError::NotRegistered(plugin.to_owned()))
    }

    /// Replaces the plugin's metadata settings, after checking them whole.
    pub fn set_metadata_settings(&self, plugin: &str, settings: &MetadataSettings) -> Result<(), RegistryError> {
        settings.compile().map_err(|why| RegistryError::Invalid { plugin: plugin.to_owned(), why })?;
        self.get(plugin)?;
        let text = serde_json::to_string(settings).expect("settings serialize");
        self.lock().execute(
            "INSERT INTO plugin_metadata_settings (plugin_id, settings) VALUES (?1, ?2)
             ON CONFLICT (plugin_id) DO UPDATE SET settings = ?2",
            params![plugin, text],
        )?;
        Ok(())
    }
}

fn parse_settings(plugin: &str, stored: Option<&str>) -> Result<MetadataSettings, RegistryError> {
    match stored {
        None => Ok(MetadataSettings::default()),
        Some(text) => serde_json::from_str(text).map_err(|error| RegistryError::Corrupt {
            plugin: plugin.to_owned(),
            what: "metadata settings",
            why: error.to_string(),
        }),
    }
}
