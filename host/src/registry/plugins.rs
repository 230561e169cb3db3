//! Registered plugins: add, read, change, remove, and their health state.

use rusqlite::{OptionalExtension, ToSql, params};
use serde_json::{Map, Value};

use super::{PluginDefinition, Registry, RegistryError, Revision, now_micros};
use crate::install::package::InstalledPackage;
use crate::plugin::PluginId;

/// A registered plugin as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRecord {
    pub id: PluginId,
    pub definition: PluginDefinition,
    /// False when an admin disabled it, or the supervisor did after repeated faults.
    pub enabled: bool,
    /// Why it was disabled automatically; `None` when an admin disabled it or it is enabled.
    pub disabled_reason: Option<String>,
    /// The last faults before it was disabled, newest last.
    pub recent_faults: Vec<String>,
    /// The manifest of its last start.
    pub manifest: Option<Value>,
    /// Calls counted by hosts that have stopped, per method (see [`crate::metrics`]).
    pub metrics: Value,
    /// Which registration, and how many changes to it (see [`super::revisions`]).
    pub revision: Revision,
    /// The npm package the host installed for it (see [`crate::install`]).
    pub install: Option<InstalledPackage>,
}

const COLUMNS: &str =
    "id, definition, enabled, disabled_reason, recent_faults, manifest, metrics, created_at, revision, install";

impl Registry {
    /// Registers a plugin under `id`, after checking its definition.
    pub fn add(&self, id: &PluginId, definition: &PluginDefinition) -> Result<(), RegistryError> {
        self.insert(id, definition, None, true)
    }

    /// Registers a plugin disabled, for an admin to review its permissions before enabling
    /// it (the page's and the API's way).
    pub fn add_disabled(&self, id: &PluginId, definition: &PluginDefinition) -> Result<(), RegistryError> {
        self.insert(id, definition, None, false)
    }

    /// Registers a plugin with the package the host installed for it, in one write
    /// (disabled, for a review of its permissions, unless `enabled`).
    pub fn add_installed(
        &self,
        id: &PluginId,
        definition: &PluginDefinition,
        install: &InstalledPackage,
        enabled: bool,
    ) -> Result<(), RegistryError> {
        self.insert(id, definition, Some(install), enabled)
    }

    /// Records a new install of the plugin's package: its instances restart on it.
    pub fn record_install(&self, id: &str, install: &InstalledPackage) -> Result<(), RegistryError> {
        let json = serde_json::to_string(install).expect("an install record serializes");
        self.update(id, "install = ?, revision = revision + 1", &[&json])
    }

    fn insert(
        &self,
        id: &PluginId,
        definition: &PluginDefinition,
        install: Option<&InstalledPackage>,
        enabled: bool,
    ) -> Result<(), RegistryError> {
        definition.validate().map_err(|why| RegistryError::Invalid { plugin: id.to_string(), why })?;
        let json = serde_json::to_string(definition).expect("a definition serializes");
        let install = install.map(|install| serde_json::to_string(install).expect("an install record serializes"));
        let now = now_micros();
        let inserted = self.lock().execute(
            "INSERT INTO plugins (id, definition, install, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            params![id.as_str(), json, install, enabled, now, now],
        )?;
        if inserted == 0 {
            return Err(RegistryError::AlreadyRegistered(id.to_string()));
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<PluginRecord, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!("SELECT {COLUMNS} FROM plugins WHERE id = ?"))?;
        let row = statement.query_row([id], StoredRow::read).optional()?;
        row.ok_or_else(|| RegistryError::NotRegistered(id.to_owned()))?.decode()
    }

    /// Every registered plugin, by id.
    pub fn list(&self) -> Result<Vec<PluginRecord>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!("SELECT {COLUMNS} FROM plugins ORDER BY id"))?;
        let rows = statement.query_map([], StoredRow::read)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(StoredRow::decode).collect()
    }

    /// Removes a plugin, its users' connections and credentials, and all its storage.
    pub fn remove(&self, id: &str) -> Result<(), RegistryError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        if transaction.execute("DELETE FROM plugins WHERE id = ?", [id])? == 0 {
            return Err(RegistryError::NotRegistered(id.to_owned()));
        }
        let storage_exists: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_storage')",
            [],
            |row| row.get(0),
        )?;
        if storage_exists {
            transaction.execute(
                "DELETE FROM plugin_storage WHERE scope = ? OR substr(scope, 1, ?) = ?",
                params![format!("plugin:{id}"), format!("user-plugin:{id}:").len(), format!("user-plugin:{id}:")],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Replaces the plugin's whole registration, after checking it: its instances restart
    /// on it (its id, users, credentials, storage and settings stay).
    pub fn set_definition(&self, id: &str, definition: &PluginDefinition) -> Result<(), RegistryError> {
        definition.validate().map_err(|why| RegistryError::Invalid { plugin: id.to_owned(), why })?;
        let json = serde_json::to_string(definition).expect("a definition serializes");
        self.update(id, "definition = ?, revision = revision + 1", &[&json])
    }

    /// Replaces the admin configuration sent as `adminConfig`.
    pub fn set_admin_config(&self, id: &str, config: Map<String, Value>) -> Result<(), RegistryError> {
        let mut record = self.get(id)?;
        record.definition.admin_config = config;
        let json = serde_json::to_string(&record.definition).expect("a definition serializes");
        self.update(id, "definition = ?, revision = revision + 1", &[&json])
    }

    /// Enables or disables a plugin by an admin's hand; enabling clears an automatic
    /// disable and its faults. The revision changes only when the flag does (the right
    /// side of each assignment reads the row as it was).
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), RegistryError> {
        if enabled {
            self.update(
                id,
                "enabled = 1, disabled_reason = NULL, recent_faults = '[]', revision = revision + 1 - enabled",
                &[],
            )
        } else {
            self.update(id, "enabled = 0, revision = revision + enabled", &[])
        }
    }

    /// The supervisor disabled the plugin after repeated faults.
    pub fn record_disabled(&self, id: &str, reason: &str, recent_faults: &[String]) -> Result<(), RegistryError> {
        let faults = serde_json::to_string(recent_faults).expect("strings serialize");
        self.update(id, "enabled = 0, disabled_reason = ?, recent_faults = ?", &[&reason, &faults])
    }

    /// The manifest of the plugin's latest start.
    pub fn record_manifest(&self, id: &str, manifest: &Value) -> Result<(), RegistryError> {
        self.update(id, "manifest = ?", &[&manifest.to_string()])
    }

    /// Replaces the stored call counts (merged by [`crate::metrics`]).
    pub fn record_metrics(&self, id: &str, metrics: &Value) -> Result<(), RegistryError> {
        self.update(id, "metrics = ?", &[&metrics.to_string()])
    }

    /// Sets `assignments` (with `?` for each of `values`) on the plugin's row.
    fn update(&self, id: &str, assignments: &str, values: &[&dyn ToSql]) -> Result<(), RegistryError> {
        let now = now_micros();
        let mut bound = values.to_vec();
        bound.extend([&now as &dyn ToSql, &id]);
        let sql = format!("UPDATE plugins SET {assignments}, updated_at = ? WHERE id = ?");
        if self.lock().execute(&sql, bound.as_slice())? == 0 {
            return Err(RegistryError::NotRegistered(id.to_owned()));
        }
        Ok(())
    }
}

/// A `plugins` row before its JSON columns are read.
struct StoredRow {
    id: String,
    definition: String,
    enabled: bool,
    disabled_reason: Option<String>,
    recent_faults: String,
    manifest: Option<String>,
    metrics: String,
    revision: Revision,
    install: Option<String>,
}

impl StoredRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            definition: row.get(1)?,
            enabled: row.get(2)?,
            disabled_reason: row.get(3)?,
            recent_faults: row.get(4)?,
            manifest: row.get(5)?,
            metrics: row.get(6)?,
            revision: Revision { added_at: row.get(7)?, changes: row.get(8)? },
            install: row.get(9)?,
        })
    }

    fn decode(self) -> Result<PluginRecord, RegistryError> {
        let corrupt = |what, why: String| RegistryError::Corrupt { plugin: self.id.clone(), what, why };
        let id = PluginId::new(&self.id).map_err(|why| corrupt("id", why))?;
        let definition =
            serde_json::from_str(&self.definition).map_err(|error| corrupt("definition", error.to_string()))?;
        let recent_faults =
            serde_json::from_str(&self.recent_faults).map_err(|error| corrupt("faults", error.to_string()))?;
        let manifest = self.manifest.as_deref().map(serde_json::from_str).transpose();
        let manifest = manifest.map_err(|error| corrupt("manifest", error.to_string()))?;
        let metrics = serde_json::from_str(&self.metrics).map_err(|error| corrupt("metrics", error.to_string()))?;
        let install = self.install.as_deref().map(serde_json::from_str).transpose();
        let install = install.map_err(|error| corrupt("install record", error.to_string()))?;
        Ok(PluginRecord {
            id,
            definition,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            recent_faults,
            manifest,
            metrics,
            revision: self.revision,
            install,
        })
    }
}
