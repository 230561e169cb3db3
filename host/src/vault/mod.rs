//! The credential vault: AES-256-GCM with a fresh 96-bit nonce per value, each value bound
//! to its row (plugin, user, field) by additional authenticated data, and each naming the
//! key that sealed it, so keys can be rotated without losing a value.

mod key;
mod secret;

pub use key::{EncryptionKey, KEY_VARIABLE};
pub use secret::Secret;

use aes_gcm::aead::{Aead, AeadCore, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// Where a sealed value belongs. It is authenticated with the value: a ciphertext copied
/// to another plugin, user or field does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowBinding<'a> {
    pub plugin: &'a str,
    /// Empty for a plugin-wide credential.
    pub user: &'a str,
    pub field: &'a str,
}

impl RowBinding<'_> {
    /// Length-prefixed fields under a version tag: no two bindings share their bytes.
    fn associated_data(&self) -> Vec<u8> {
        let mut data = b"codex-plugin-host/credential/v1".to_vec();
        for part in [self.plugin, self.user, self.field] {
            data.extend((part.len() as u32).to_be_bytes());
            data.extend(part.as_bytes());
        }
        data
    }
}

/// A value as stored: the key id, the nonce, and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "no encryption key: set {KEY_VARIABLE} to the base64 of 32 random bytes (`codex-plugin-host vault generate-key` makes one), or give a key file"
    )]
    MissingKey,
    #[error("the encryption key from {origin} is not usable: {why}")]
    MalformedKey { origin: String, why: String },
    #[error(
        "the {field} credential of plugin {plugin}{} was sealed with key {key_id}, which this host does not have",
        user_suffix(user)
    )]
    UnknownKey { plugin: String, user: String, field: String, key_id: String },
    #[error(
        "the {field} credential of plugin {plugin}{} does not open: wrong key, altered data, or a value moved from another row",
        user_suffix(user)
    )]
    Undecryptable { plugin: String, user: String, field: String },
}

fn user_suffix(user: &str) -> String {
    if user.is_empty() { String::new() } else { format!(" for user {user}") }
}

/// The keys of a host: the current one seals; it and any older ones still open.
#[derive(Debug, Clone)]
pub struct Vault {
    current: EncryptionKey,
    older: Vec<EncryptionKey>,
}

impl Vault {
    pub fn new(current: EncryptionKey) -> Self {
        Self { current, older: Vec::new() }
    }

    /// Also opens values sealed with `older` keys (during and after a rotation).
    pub fn with_older_key(mut self, older: EncryptionKey) -> Self {
        if older.id() != self.current.id() {
            self.older.push(older);
        }
        self
    }

    pub fn current_key_id(&self) -> &str {
        self.current.id()
    }

    /// Whether one of the vault's keys has this id.
    pub fn holds(&self, key_id: &str) -> bool {
        std::iter::once(&self.current).chain(&self.older).any(|key| key.id() == key_id)
    }

    /// The ids of the older keys it still opens with.
    pub fn older_key_ids(&self) -> Vec<String> {
        self.older.iter().map(|key| key.id().to_owned()).collect()
    }

    /// Seals `value` for its row under the current key, with a fresh random nonce.
    pub fn seal(&self, row: RowBinding<'_>, value: &Secret) -> Sealed {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload { msg: value.expose().as_bytes(), aad: &row.associated_data() };
        let ciphertext = self.current.cipher.encrypt(&nonce, payload).expect("AES-GCM seals any value under 64 GiB");
        Sealed { key_id: self.current.id().to_owned(), nonce: nonce.to_vec(), ciphertext }
    }

    /// Opens a value sealed for `row`, with whichever of the vault's keys sealed it.
    pub fn open(&self, row: RowBinding<'_>, sealed: &Sealed) -> Result<Secret, VaultError> {
        let owned = |row: RowBinding<'_>| (row.plugin.to_owned(), row.user.to_owned(), row.field.to_owned());
        let key = std::iter::once(&self.current).chain(&self.older).find(|key| key.id() == sealed.key_id);
        let Some(key) = key else {
            let (plugin, user, field) = owned(row);
            return Err(VaultError::UnknownKey { plugin, user, field, key_id: sealed.key_id.clone() });
        };
        let undecryptable = || {
            let (plugin, user, field) = owned(row);
            VaultError::Undecryptable { plugin, user, field }
        };
        if sealed.nonce.len() != 12 {
            return Err(undecryptable());
        }
        let payload = Payload { msg: &sealed.ciphertext, aad: &row.associated_data() };
        let plaintext = key.cipher.decrypt(Nonce::from_slice(&sealed.nonce), payload).map_err(|_| undecryptable())?;
        String::from_utf8(plaintext).map(Secret::new).map_err(|_| undecryptable())
    }
}

#[cfg(test)]
mod tests;
