//! The API tokens' records in the host's database: made (the token itself shown once, its
//! digest kept), looked up by digest, listed, revoked.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Principal, digest, looks_like_token, new_token};

/// A token's record: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    #[serde(flatten)]
    pub principal: Principal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token records could not be used: {0}")]
    Store(String),
    #[error("a user's token needs the user: a name of 1 to 128 characters, without control characters")]
    BadUser,
    #[error("no token `{0}`; `token list` shows them")]
    Unknown(String),
}

fn failed(error: impl std::fmt::Display) -> TokenError {
    TokenError::Store(error.to_string())
}

/// The records, on one connection to the host's database.
pub struct TokenStore(Mutex<Connection>);

impl TokenStore {
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        Ok(Self(Mutex::new(crate::database::open(path).map_err(failed)?)))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a token for `principal`: its record, and the token itself, which is not kept
    /// and cannot be shown again.
    pub fn create(&self, principal: &Principal, label: Option<&str>) -> Result<(TokenRecord, String), TokenError> {
        let user = match principal {
            Principal::Admin => None,
            Principal::User(user) => {
                let fits = (1..=128).contains(&user.chars().count()) && !user.chars().any(char::is_control);
                if !fits {
                    return Err(TokenError::BadUser);
                }
                Some(user.as_str())
            }
        };
        let token = new_token();
        let record = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            principal: principal.clone(),
            label: label.map(str::to_owned),
            created_at: chrono::Utc::now().timestamp_micros(),
            revoked_at: None,
        };
        let role = if principal.is_admin() { "admin" } else { "user" };
        self.lock()
            .execute(
                "INSERT INTO api_tokens (id, digest, role, user_id, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.id, digest(&token).as_slice(), role, user, record.label, record.created_at],
            )
            .map_err(failed)?;
        Ok((record, token))
    }

    /// Who `token` stands for, if it is a live token of this host: one indexed read of
    /// the database's write-ahead log, never waiting for a writer, so that a server checks
    /// each request's token on the request's own task.
    pub fn principal(&self, token: &str) -> Result<Option<Principal>, TokenError> {
        if !looks_like_token(token) {
            return Ok(None);
        }
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached("SELECT role, user_id FROM api_tokens WHERE digest = ? AND revoked_at IS NULL")
            .map_err(failed)?;
        let found: Option<(String, Option<String>)> = statement
            .query_row([digest(token).as_slice()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(failed)?;
        Ok(found.and_then(|(role, user)| stored_principal(&role, user)))
    }

    /// Every token's record, oldest first.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT id, role, user_id, label, created_at, revoked_at FROM api_tokens ORDER BY created_at, id")
            .map_err(failed)?;
        let rows = statement
            .query_map([], |row| {
                let (role, user): (String, Option<String>) = (row.get(1)?, row.get(2)?);
                let id: String = row.get(0)?;
                let principal = stored_principal(&role, user).ok_or_else(|| {
                    rusqlite::Error::InvalidColumnType(
                        1,
                        format!("role {role:?} of token {id}"),
                        rusqlite::types::Type::Text,
                    )
                })?;
                Ok(TokenRecord { id, principal, label: row.get(3)?, created_at: row.get(4)?, revoked_at: row.get(5)? })
            })
            .map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)
    }

    /// Revokes a token: it opens nothing from now on. Revoking it again changes nothing.
    pub fn revoke(&self, id: &str) -> Result<(), TokenError> {
        let now = chrono::Utc::now().timestamp_micros();
        let connection = self.lock();
        let changed = connection
            .execute("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1", params![id, now])
            .map_err(failed)?;
        if changed == 0 {
            return Err(TokenError::Unknown(id.to_owned()));
        }
        Ok(())
    }
}

/// The principal of a stored row; a row of any other shape opens nothing (the table's
/// checks forbid one, and a token never becomes an admin's by accident).
fn stored_principal(role: &str, user: Option<String>) -> Option<Principal> {
    match (role, user) {
        ("admin", None) => Some(Principal::Admin),
        ("user", Some(user)) => Some(Principal::User(user)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(&dir.path().join("host.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_token_opens_as_its_principal_until_it_is_revoked() {
        let (dir, store) = store();
        let (admin, admin_token) = store.create(&Principal::Admin, Some("ops")).unwrap();
        let (ann, ann_token) = store.create(&Principal::User("ann".into()), None).unwrap();
        assert_eq!(store.principal(&admin_token).unwrap(), Some(Principal::Admin));
        assert_eq!(store.principal(&ann_token).unwrap(), Some(Principal::User("ann".into())));
        assert_eq!(store.principal(&crate::access::new_token()).unwrap(), None, "not one of ours");
        assert_eq!(store.principal("cph_garbage").unwrap(), None);
        store.revoke(&ann.id).unwrap();
        store.revoke(&ann.id).unwrap();
        assert_eq!(store.principal(&ann_token).unwrap(), None);
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!((listed[0].id.as_str(), listed[0].label.as_deref()), (admin.id.as_str(), Some("ops")));
        assert!(listed[1].revoked_at.is_some());
        for file in ["host.sqlite3", "host.sqlite3-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            let stored = bytes.windows(admin_token.len()).any(|window| window == admin_token.as_bytes());
            assert!(!stored, "only digests are kept, in {file} too");
        }
        let wal = std::fs::read(dir.path().join("host.sqlite3-wal")).unwrap();
        assert!(wal.windows(32).any(|window| window == digest(&admin_token)), "the digest is what was written");
        assert!(matches!(store.revoke("nope"), Err(TokenError::Unknown(_))));
    }

    #[test]
    fn a_row_of_another_shape_opens_nothing() {
        assert_eq!(stored_principal("admin", None), Some(Principal::Admin));
        assert_eq!(stored_principal("user", Some("ann".into())), Some(Principal::User("ann".into())));
        assert_eq!(stored_principal("admin", Some("ann".into())), None);
        assert_eq!(stored_principal("user", None), None);
        assert_eq!(stored_principal("root", None), None);
    }

    #[test]
    fn a_users_token_needs_a_sensible_user() {
        let (_dir, store) = store();
        for user in ["", "a\nb", &"u".repeat(129)] {
            assert!(matches!(store.create(&Principal::User(user.into()), None), Err(TokenError::BadUser)), "{user:?}");
        }
        assert!(store.list().unwrap().is_empty(), "nothing written");
    }
}
