//! The manifest a plugin returns from `initialize`, and the rules it must follow.
//!
//! A plugin whose manifest breaks a rule is not started; [`ManifestError`] names the field
//! and the rule. The manifest's `name` is only a label: the plugin's identity is the id the
//! admin registered, so a plugin cannot claim another plugin's storage or permissions.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// A manifest that breaks a rule: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid manifest: `{field}` {rule}")]
pub struct ManifestError {
    pub field: String,
    pub rule: String,
}

impl ManifestError {
    fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self { field: field.into(), rule: rule.into() }
    }
}

/// What a plugin says it can do. Unknown capability keys are kept and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_provider: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_read_sync: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_recommendation_provider: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_source: Option<String>,
    /// Sync and recommendation entries carry the series' genres, tags, metadata and custom
    /// metadata, as the admin's `_codex` policy allows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wants_full_metadata: bool,
    /// Pushed sync entries carry `progress.readBooks`, one per book with progress.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wants_detailed_progress: bool,
    /// The plugin announces new chapters and volumes of tracked series (`releases/poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_source: Option<ReleaseSourceCapability>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What a release-source plugin announces, and what it needs of tracked series (Codex's
/// `ReleaseSourceCapability`; the two `canAnnounce…` default to true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSourceCapability {
    /// `rss-uploader`, `rss-series`, `api-feed`, `metadata-feed`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// It matches by title: tracked series are listed with their aliases.
    #[serde(default)]
    pub requires_aliases: bool,
    /// The external-id sources it matches by (`mangaupdates`, `mangadex`).
    #[serde(default)]
    pub requires_external_ids: Vec<String>,
    #[serde(default = "announces")]
    pub can_announce_chapters: bool,
    #[serde(default = "announces")]
    pub can_announce_volumes: bool,
}

fn announces() -> bool {
    true
}

/// The release source kinds Codex knows.
pub const RELEASE_SOURCE_KINDS: [&str; 4] = ["rss-uploader", "rss-series", "api-feed", "metadata-feed"];

impl Capabilities {
    pub fn provides_series(&self) -> bool {
        self.metadata_provider.iter().any(|kind| kind == "series")
    }

    pub fn provides_books(&self) -> bool {
        self.metadata_provider.iter().any(|kind| kind == "book")
    }
}

/// A secret the plugin asks the admin or user for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialField {
    pub key: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// OAuth 2.0 endpoints the host drives for the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthConfig {
    pub authorization_url: String,
    pub token_url: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default = "pkce_by_default")]
    pub pkce: bool,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn pkce_by_default() -> bool {
    true
}

/// The `initialize` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    pub protocol_version: String,
    pub capabilities: Capabilities,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_credentials: Vec<CredentialField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConfig>,
    /// Everything else (`configSchema`, setup instructions, `searchURITemplate` …), kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+(-[a-z0-9]+)*$").expect("valid regex"));
static PROTOCOL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^1\.[0-9]+$").expect("valid regex"));
static ID_SOURCE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^api:[A-Za-z0-9._-]+$").expect("valid regex"));
static HTTP_URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^https?://[^\s/?#@]+(/\S*)?$").expect("valid regex"));

/// Names and plugin ids: 1-100 lowercase letters, digits and single hyphens, no hyphen at
/// either end.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("must be 1-100 characters long, got {}", name.len()));
    }
    if !NAME.is_match(name) {
        return Err(format!(
            "must be lowercase letters, digits and single hyphens, with no hyphen at either end, got {name:?}"
        ));
    }
    Ok(())
}

impl Manifest {
    /// Reads and validates an `initialize` answer.
    pub fn parse(value: Value) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "manifest".to_owned() } else { path };
            ManifestError::new(field, format!("is malformed: {}", error.inner()))
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every rule; the first broken one is reported.
    pub fn validate(&self) -> Result<(), ManifestError> {
        match self.violations().into_iter().next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }

    /// Every rule the manifest breaks, in the order of its fields (a conformance check
    /// reports them all; a host refuses the plugin at the first).
    pub fn violations(&self) -> Vec<ManifestError> {
        let mut broken = Vec::new();
        let mut check = |result: Result<(), ManifestError>| broken.extend(result.err());
        check(check_name(&self.name).map_err(|rule| ManifestError::new("name", rule)));
        check(non_empty("displayName", &self.display_name));
        check(non_empty("description", &self.description));
        check(semver::Version::parse(&self.version).map(drop).map_err(|error| {
            ManifestError::new("version", format!("must be semver, got {:?}: {error}", self.version))
        }));
        if !PROTOCOL.is_match(&self.protocol_version) {
            check(Err(ManifestError::new(
                "protocolVersion",
                format!("must be \"1.x\" (this host speaks protocol 1), got {:?}", self.protocol_version),
            )));
        }
        self.capability_violations().into_iter().for_each(|violation| check(Err(violation)));
        for (index, credential) in self.required_credentials.iter().enumerate() {
            check(non_empty(&format!("requiredCredentials[{index}].key"), &credential.key));
            check(non_empty(&format!("requiredCredentials[{index}].label"), &credential.label));
        }
        if let Some(oauth) = &self.oauth {
            check(http_url("oauth.authorizationUrl", &oauth.authorization_url));
            check(http_url("oauth.tokenUrl", &oauth.token_url));
        }
        broken
    }

    fn capability_violations(&self) -> Vec<ManifestError> {
        let capabilities = &self.capabilities;
        let mut broken = Vec::new();
        for (index, kind) in capabilities.metadata_provider.iter().enumerate() {
            if kind != "series" && kind != "book" {
                broken.push(ManifestError::new(
                    format!("capabilities.metadataProvider[{index}]"),
                    format!("must be \"series\" or \"book\", got {kind:?}"),
                ));
            }
        }
        if let Some(release) = &capabilities.release_source {
            for (index, kind) in release.kinds.iter().enumerate() {
                if !RELEASE_SOURCE_KINDS.contains(&kind.as_str()) {
                    broken.push(ManifestError::new(
                        format!("capabilities.releaseSource.kinds[{index}]"),
                        format!("must be one of {RELEASE_SOURCE_KINDS:?}, got {kind:?}"),
                    ));
                }
            }
        }
        if let Some(source) = &capabilities.external_id_source
            && !ID_SOURCE.is_match(source)
        {
            broken.push(ManifestError::new(
                "capabilities.externalIdSource",
                format!("must look like \"api:<service>\", got {source:?}"),
            ));
        }
        broken
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), ManifestError> {
    if value.trim().is_empty() {
        return Err(ManifestError::new(field, "must be a non-empty string"));
    }
    Ok(())
}

fn http_url(field: &str, value: &str) -> Result<(), ManifestError> {
    if !HTTP_URL.is_match(value) {
        return Err(ManifestError::new(field, format!("must be an http(s) URL, got {value:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "name": "metadata-openlibrary",
            "displayName": "Open Library",
            "version": "2.5.0",
            "description": "Fetches book metadata",
            "protocolVersion": "1.0",
            "capabilities": {"metadataProvider": ["book"], "wantsFullMetadata": true},
            "configSchema": {"fields": []},
            "searchURITemplate": "https://openlibrary.org/search?q=<title>"
        })
    }

    fn broken(path: &[&str], value: Value) -> ManifestError {
        let mut manifest = valid();
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut manifest;
        for key in parents {
            target = &mut target[*key];
        }
        if value.is_null() {
            target.as_object_mut().unwrap().remove(*last);
        } else {
            target[*last] = value;
        }
        Manifest::parse(manifest).unwrap_err()
    }

    #[test]
    fn a_real_manifest_validates_and_keeps_unknown_keys() {
        let manifest = Manifest::parse(valid()).unwrap();
        assert!(manifest.capabilities.provides_books());
        assert!(!manifest.capabilities.provides_series());
        assert!(manifest.capabilities.wants_full_metadata);
        let release: Manifest = serde_json::from_value(json!({
            "name": "release-nyaa", "displayName": "Nyaa Releases", "version": "2.5.0",
            "description": "d", "protocolVersion": "1.0",
            "capabilities": {"releaseSource": {"kinds": ["rss-uploader"], "requiresAliases": true}}
        }))
        .unwrap();
        release.validate().unwrap();
        let capability = release.capabilities.release_source.unwrap();
        assert_eq!((capability.kinds, capability.requires_aliases), (vec!["rss-uploader".to_owned()], true));
        assert!(capability.can_announce_chapters && capability.can_announce_volumes, "Codex's defaults");
        let back = serde_json::to_value(&manifest).unwrap();
        assert_eq!(back["searchURITemplate"], valid()["searchURITemplate"]);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(&[&str], Value, &str)> = vec![
            (&["name"], json!("Open Library"), "name"),
            (&["name"], json!("-x"), "name"),
            (&["name"], json!("a--b"), "name"),
            (&["name"], json!(""), "name"),
            (&["name"], json!("a".repeat(101)), "name"),
            (&["name"], json!(5), "name"),
            (&["name"], Value::Null, "manifest"),
            (&["description"], Value::Null, "manifest"),
            (&["displayName"], json!(" "), "displayName"),
            (&["description"], json!(""), "description"),
            (&["version"], json!("2.5"), "version"),
            (&["protocolVersion"], json!("2.0"), "protocolVersion"),
            (&["protocolVersion"], json!("1"), "protocolVersion"),
            (&["capabilities", "metadataProvider"], json!(["comic"]), "capabilities.metadataProvider[0]"),
            (&["capabilities", "externalIdSource"], json!("anilist"), "capabilities.externalIdSource"),
            (&["capabilities", "userReadSync"], json!("yes"), "capabilities.userReadSync"),
            (&["capabilities", "wantsFullMetadata"], json!(1), "capabilities.wantsFullMetadata"),
            (&["capabilities", "releaseSource"], json!({"kinds": ["rss-feed"]}), "capabilities.releaseSource.kinds[0]"),
            (&["oauth"], json!({"authorizationUrl": "ftp://x", "tokenUrl": "https://t"}), "oauth.authorizationUrl"),
            (&["oauth"], json!({"authorizationUrl": "https://a", "tokenUrl": "javascript:x"}), "oauth.tokenUrl"),
            (&["requiredCredentials"], json!([{"key": "", "label": "Key"}]), "requiredCredentials[0].key"),
        ];
        for (path, value, field) in cases {
            let error = broken(path, value.clone());
            assert_eq!(error.field, field, "{path:?} = {value}: {error}");
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn every_broken_rule_is_listed_in_field_order_and_the_first_refuses() {
        let mut manifest = valid();
        manifest["name"] = json!("Open Library");
        manifest["version"] = json!("2");
        manifest["capabilities"]["metadataProvider"] = json!(["book", "comic", "manga"]);
        manifest["oauth"] = json!({"authorizationUrl": "ftp://a", "tokenUrl": "https://t"});
        let parsed: Manifest = serde_json::from_value(manifest.clone()).unwrap();
        let fields: Vec<String> = parsed.violations().into_iter().map(|violation| violation.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "version",
                "capabilities.metadataProvider[1]",
                "capabilities.metadataProvider[2]",
                "oauth.authorizationUrl"
            ]
        );
        assert_eq!(Manifest::parse(manifest).unwrap_err().field, "name");
        assert_eq!(Manifest::parse(valid()).map(|manifest| manifest.violations()), Ok(Vec::new()));
    }

    #[test]
    fn missing_fields_are_named() {
        let error = broken(&["capabilities"], Value::Null);
        assert!(error.rule.contains("capabilities"), "{error}");
    }

    #[test]
    fn protocol_minor_versions_are_accepted() {
        let mut manifest = valid();
        manifest["protocolVersion"] = json!("1.2");
        assert!(Manifest::parse(manifest).is_ok());
    }
}
