//! A plugin's identity: the id its admin chose, never the manifest's `name`.

use sha2::{Digest, Sha256};
use std::fmt;

use crate::protocol::manifest::check_name;

/// A validated plugin id: 1-100 lowercase letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId(String);

impl PluginId {
    pub fn new(id: &str) -> Result<Self, String> {
        check_name(id).map_err(|rule| format!("invalid plugin id: {rule}"))?;
        Ok(Self(id.to_owned()))
    }

    /// A stable id for a plugin started ad hoc: a readable slug of the command line and a
    /// hash of all of it, so the same command line always finds the same storage.
    pub fn derived_from(command: &str, args: &[String]) -> Self {
        let subject = args.iter().find(|arg| !arg.starts_with('-')).map(String::as_str);
        let words = [Some(command), subject].into_iter().flatten().map(last_segment).collect::<Vec<_>>().join("-");
        let mut slug = slugify(&words);
        slug.truncate(60);
        let slug = slug.trim_end_matches('-');
        let mut hasher = Sha256::new();
        hasher.update(command.as_bytes());
        for arg in args {
            hasher.update([0]);
            hasher.update(arg.as_bytes());
        }
        let digest = hasher.finalize();
        let hash: String = digest[..4].iter().map(|byte| format!("{byte:02x}")).collect();
        let id = if slug.is_empty() { format!("plugin-{hash}") } else { format!("{slug}-{hash}") };
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn last_segment(text: &str) -> &str {
    text.trim_end_matches('/').rsplit('/').next().unwrap_or(text)
}

fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn derived_ids_are_readable_stable_and_valid() {
        let npx = PluginId::derived_from("npx", &args(&["-y", "@ashdev/codex-plugin-metadata-openlibrary@2.5.0"]));
        assert!(npx.as_str().starts_with("npx-codex-plugin-metadata-openlibrary-2-5-0-"), "{npx}");
        assert_eq!(
            npx,
            PluginId::derived_from("npx", &args(&["-y", "@ashdev/codex-plugin-metadata-openlibrary@2.5.0"]))
        );
        assert_ne!(
            npx,
            PluginId::derived_from("npx", &args(&["-y", "@ashdev/codex-plugin-metadata-openlibrary@2.4.0"]))
        );
        let node = PluginId::derived_from("/usr/bin/node", &args(&["tests/plugins/misbehaving.mjs", "junk"]));
        assert!(node.as_str().starts_with("node-misbehaving-mjs-"), "{node}");
        assert_ne!(node, PluginId::derived_from("/usr/bin/node", &args(&["tests/plugins/misbehaving.mjs", "flood"])));
        for id in [npx, node, PluginId::derived_from("///", &[]), PluginId::derived_from(&"Ä".repeat(300), &[])] {
            assert!(PluginId::new(id.as_str()).is_ok(), "{id}");
        }
    }

    #[test]
    fn chosen_ids_follow_the_name_rule() {
        assert!(PluginId::new("openlibrary").is_ok());
        assert!(PluginId::new("Open Library").unwrap_err().contains("invalid plugin id"));
        assert!(PluginId::new("-x").is_err());
    }
}
