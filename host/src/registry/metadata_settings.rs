//! Each plugin's metadata settings (permissions, libraries, search and match), kept beside
//! its registration and removed with it. Host-side only: a change does not restart the
//! plugin.

use rusqlite::{OptionalExtension, params};

use super::{Registry, RegistryError};
use crate::metadata::settings::MetadataSettings;

impl Registry {
    /// The plugin's metadata settings (the defaults when it has none).
    pub fn metadata_settings(&self, plugin: &str) -> Result<MetadataSettings, RegistryError> {
        self.get(plugin)?;
        let connection = self.lock();
        let stored: Option<String> = connection
            .query_row("SELECT settings FROM plugin_metadata_settings WHERE plugin_id = ?", [plugin], |row| row.get(0))
            .optional()?;
        match stored {
            None => Ok(MetadataSettings::default()),
            Some(text) => serde_json::from_str(&text).map_err(|error| RegistryError::Corrupt {
                plugin: plugin.to_owned(),
                what: "metadata settings",
                why: error.to_string(),
            }),
        }
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
