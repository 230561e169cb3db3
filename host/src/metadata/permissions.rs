//! What an admin lets a plugin do with the library (orchestration.md §1): the reference's
//! permission strings, every one grantable (the reference's API forgot
//! `metadata:write:external_ids`, `…:volume` and `…:chapter`), none granted by default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Every field a plugin may be allowed to write, by the name its permission uses.
pub const WRITE_FIELDS: [&str; 30] = [
    "title",
    "summary",
    "genres",
    "tags",
    "covers",
    "ratings",
    "links",
    "external_ids",
    "year",
    "status",
    "publisher",
    "age_rating",
    "language",
    "reading_direction",
    "total_volume_count",
    "total_chapter_count",
    "book_type",
    "subtitle",
    "authors",
    "translator",
    "edition",
    "original_title",
    "original_year",
    "series_position",
    "subjects",
    "awards",
    "custom_metadata",
    "isbn",
    "volume",
    "chapter",
];

/// One permission, as the reference spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Permission {
    /// `metadata:read`: library entries may be sent to the plugin.
    MetadataRead,
    /// `library:read`: the plugin may read the library (sync push, recommendation seeds).
    LibraryRead,
    /// `metadata:write:*`.
    WriteAll,
    /// `metadata:write:<field>`, one of [`WRITE_FIELDS`].
    Write(&'static str),
}

impl std::str::FromStr for Permission {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "metadata:read" => Ok(Self::MetadataRead),
            "library:read" => Ok(Self::LibraryRead),
            "metadata:write:*" => Ok(Self::WriteAll),
            other => other
                .strip_prefix("metadata:write:")
                .and_then(|field| WRITE_FIELDS.iter().find(|known| **known == field))
                .map(|field| Self::Write(field))
                .ok_or_else(|| format!("unknown permission {other:?}; the permissions are {}", all().join(", "))),
        }
    }
}

impl TryFrom<String> for Permission {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Permission> for String {
    fn from(permission: Permission) -> String {
        permission.to_string()
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MetadataRead => formatter.write_str("metadata:read"),
            Self::LibraryRead => formatter.write_str("library:read"),
            Self::WriteAll => formatter.write_str("metadata:write:*"),
            Self::Write(field) => write!(formatter, "metadata:write:{field}"),
        }
    }
}

/// Every permission string, in the order a person reads them.
pub fn all() -> Vec<String> {
    let mut names = vec!["metadata:read".to_owned(), "library:read".to_owned(), "metadata:write:*".to_owned()];
    names.extend(WRITE_FIELDS.iter().map(|field| format!("metadata:write:{field}")));
    names
}

/// What one plugin was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(pub BTreeSet<Permission>);

impl Grants {
    /// Whether the plugin may write `field` (a name of [`WRITE_FIELDS`]).
    pub fn may_write(&self, field: &str) -> bool {
        self.0.contains(&Permission::WriteAll)
            || self.0.iter().any(|granted| matches!(granted, Permission::Write(name) if *name == field))
    }

    /// Reads stored permission strings; one this host does not know is refused.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        names.iter().map(|name| name.parse()).collect::<Result<_, _>>().map(Self)
    }

    /// The permission strings, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(Permission::to_string).collect()
    }

    pub fn may_read_library(&self) -> bool {
        self.0.contains(&Permission::LibraryRead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_parses_and_prints_as_the_reference_spells_it() {
        for name in all() {
            let permission: Permission = name.parse().unwrap();
            assert_eq!(permission.to_string(), name);
        }
        for forgotten in ["metadata:write:external_ids", "metadata:write:volume", "metadata:write:chapter"] {
            assert!(forgotten.parse::<Permission>().is_ok(), "{forgotten} cannot be granted");
        }
        let error = "metadata:write:everything".parse::<Permission>().unwrap_err();
        assert!(error.contains("unknown permission") && error.contains("metadata:write:title"), "{error}");
        assert!("Metadata:Read".parse::<Permission>().is_err());
    }

    #[test]
    fn writes_need_their_field_or_the_wildcard() {
        let title = Grants(["metadata:write:title".parse().unwrap()].into());
        assert!(title.may_write("title") && !title.may_write("summary"));
        let all = Grants(["metadata:write:*".parse().unwrap()].into());
        assert!(WRITE_FIELDS.iter().all(|field| all.may_write(field)));
        assert!(!Grants::default().may_write("title"), "nothing is granted by default");
        assert!(!all.may_read_library(), "the write wildcard does not read the library");
    }
}
