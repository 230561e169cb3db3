//! The manifest check: every rule of the contract (protocol.md §4) that the plugin's
//! `initialize` answer breaks, all of them and not only the first, as failures; and what
//! the seeds advise, as warnings: schema fields without a description or (optional ones)
//! a default, credentials not marked sensitive, OAuth without PKCE, an older protocol.

use serde_json::Value;

use super::Finding;
use crate::config_schema::ConfigSchema;
use crate::protocol::manifest::Manifest;

/// The protocol version this host speaks.
pub const HOST_PROTOCOL_VERSION: (u64, u64) = (1, 0);

/// What is wrong with an `initialize` answer.
pub fn findings(answer: &Value) -> Vec<Finding> {
    let manifest: Manifest = match serde_path_to_error::deserialize(answer) {
        Ok(manifest) => manifest,
        Err(error) => {
            let path = error.path().to_string();
            let subject = if path == "." { "manifest".to_owned() } else { path };
            return vec![Finding::fail(
                subject,
                format!("the manifest does not read: {}", error.inner()),
                "return the manifest the SDK's types describe: name, displayName, version, description, protocolVersion and capabilities are required",
            )];
        }
    };
    let mut found: Vec<Finding> = manifest
        .violations()
        .into_iter()
        .map(|violation| {
            let fix = format!("fix `{}`: until then a host refuses to start the plugin", violation.field);
            Finding::fail(violation.field, violation.rule, fix)
        })
        .collect();
    for schema_key in ["configSchema", "userConfigSchema"] {
        if let Some(schema) = manifest.other.get(schema_key).and_then(ConfigSchema::read) {
            found.extend(schema_advice(schema_key, &schema));
        }
    }
    for (index, credential) in manifest.required_credentials.iter().enumerate() {
        if !credential.sensitive {
            found.push(Finding::warn(
                format!("requiredCredentials[{index}].sensitive"),
                format!("the credential `{}` is not marked sensitive", credential.key),
                "set `\"sensitive\": true`: Codex then masks it in its forms and never shows it back",
            ));
        }
    }
    if manifest.oauth.as_ref().is_some_and(|oauth| !oauth.pkce) {
        found.push(Finding::warn(
            "oauth.pkce",
            "OAuth without PKCE (`\"pkce\": false`)",
            "leave `pkce` at its default (true) unless the provider refuses PKCE: without it an intercepted code can be exchanged by anyone",
        ));
    }
    if let Some((major, minor)) = version_of(&manifest.protocol_version)
        && (major, minor) < HOST_PROTOCOL_VERSION
    {
        let (host_major, host_minor) = HOST_PROTOCOL_VERSION;
        found.push(Finding::warn(
            "protocolVersion",
            format!("the plugin speaks protocol {major}.{minor}, older than this host's {host_major}.{host_minor}"),
            "update the plugin's SDK and declare the protocol version it speaks",
        ));
    }
    found
}

fn schema_advice(schema_key: &str, schema: &ConfigSchema) -> Vec<Finding> {
    let mut found = Vec::new();
    for field in &schema.fields {
        let subject = format!("{schema_key}.fields[{}]", field.key);
        if field.description.as_deref().is_none_or(|text| text.trim().is_empty()) {
            found.push(Finding::warn(
                subject.clone(),
                format!("the field `{}` has no description", field.key),
                "add a `description`: it is the only help an admin or a user gets in the form",
            ));
        }
        if !field.required && field.default.is_none() {
            found.push(Finding::warn(
                subject,
                format!("the optional field `{}` has no default", field.key),
                "add a `default` (the value the plugin uses when it is left empty), or make the field `required`",
            ));
        }
    }
    found
}

/// `"1.2"` → (1, 2).
fn version_of(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::super::{Verdict, verdict_of};
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "name": "metadata-echo", "displayName": "Echo", "version": "1.0.0", "description": "Echoes",
            "protocolVersion": "1.0", "capabilities": {"metadataProvider": ["series"]},
            "configSchema": {"fields": [
                {"key": "maxResults", "label": "Max", "type": "number", "description": "How many", "default": 10},
                {"key": "apiKey", "label": "Key", "type": "string", "description": "Yours", "required": true}
            ]},
            "requiredCredentials": [{"key": "api_key", "label": "API key", "sensitive": true}],
            "oauth": {"authorizationUrl": "https://a.example/authorize", "tokenUrl": "https://a.example/token"}
        })
    }

    fn subjects(found: &[Finding], verdict: Verdict) -> Vec<&str> {
        found.iter().filter(|finding| finding.verdict == verdict).map(|finding| finding.subject.as_str()).collect()
    }

    #[test]
    fn a_manifest_as_the_seeds_advise_passes() {
        let found = findings(&valid());
        assert_eq!(found, Vec::new());
        assert_eq!(verdict_of(&found), Verdict::Pass);
    }

    #[test]
    fn every_broken_rule_fails_with_its_field_and_a_fix() {
        let mut manifest = valid();
        manifest["name"] = json!("Echo Plugin");
        manifest["protocolVersion"] = json!("2.0");
        manifest["capabilities"]["metadataProvider"] = json!(["series", "comic"]);
        let found = findings(&manifest);
        assert_eq!(subjects(&found, Verdict::Fail), ["name", "protocolVersion", "capabilities.metadataProvider[1]"]);
        assert!(found.iter().all(|finding| finding.fix.contains(&finding.subject)), "{found:#?}");
        assert_eq!(verdict_of(&found), Verdict::Fail);
    }

    #[test]
    fn a_manifest_that_does_not_read_fails_at_its_path() {
        let mut manifest = valid();
        manifest["capabilities"]["userReadSync"] = json!("yes");
        let found = findings(&manifest);
        assert_eq!(subjects(&found, Verdict::Fail), ["capabilities.userReadSync"]);
        assert_eq!(subjects(&findings(&json!("pong")), Verdict::Fail), ["manifest"]);
    }

    #[test]
    fn what_the_seeds_advise_is_a_warning() {
        let mut manifest = valid();
        manifest["configSchema"]["fields"] = json!([
            {"key": "maxResults", "label": "Max", "type": "number"},
            {"key": "apiKey", "label": "Key", "required": true, "description": " "},
            {"key": "region", "label": "Region", "description": "Where", "default": "eu"}
        ]);
        manifest["userConfigSchema"] = json!({"fields": [{"key": "syncMode", "label": "Mode", "description": "How"}]});
        manifest["requiredCredentials"][0]["sensitive"] = json!(false);
        manifest["oauth"]["pkce"] = json!(false);
        manifest["protocolVersion"] = json!("0.9");
        let found = findings(&manifest);
        // 0.9 is also not 1.x: refused, and older.
        assert_eq!(subjects(&found, Verdict::Fail), ["protocolVersion"]);
        assert_eq!(
            subjects(&found, Verdict::Warn),
            [
                "configSchema.fields[maxResults]",
                "configSchema.fields[maxResults]",
                "configSchema.fields[apiKey]",
                "userConfigSchema.fields[syncMode]",
                "requiredCredentials[0].sensitive",
                "oauth.pkce",
                "protocolVersion"
            ]
        );
    }
}
