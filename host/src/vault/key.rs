//! The vault's keys: 32 random bytes, given base64-encoded in `CODEX_ENCRYPTION_KEY` or in
//! a key file, named by a key id derived from the key itself.

use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::path::Path;

use super::VaultError;

/// The environment variable that holds the key, as the reference host reads it.
pub const KEY_VARIABLE: &str = "CODEX_ENCRYPTION_KEY";

/// The most of a key file that is read: a key is 44 characters of base64.
pub const KEY_FILE_MAX_BYTES: u64 = 4096;

/// One AES-256-GCM key and its id (the first 8 bytes of its SHA-256, in hex): stored next
/// to every value it sealed, so a value always names the key that opens it.
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    pub(super) cipher: Aes256Gcm,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKey({})", self.id)
    }
}

impl EncryptionKey {
    /// A key from its base64 text (surrounding whitespace ignored); `origin` names where it
    /// came from, for the error.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, VaultError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|error| VaultError::MalformedKey {
            origin: origin.to_owned(),
            why: format!("not base64 ({error})"),
        })?;
        if bytes.len() != 32 {
            let why = format!("it decodes to {} bytes, and an AES-256 key is 32", bytes.len());
            return Err(VaultError::MalformedKey { origin: origin.to_owned(), why });
        }
        let digest = Sha256::digest(&bytes);
        let id = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        let cipher = Aes256Gcm::new_from_slice(&bytes).expect("32 bytes is an AES-256 key");
        Ok(Self { id, cipher })
    }

    /// The key in a file (its base64 text): a regular file that only its owner may read
    /// or write (mode 0600 or stricter), read up to [`KEY_FILE_MAX_BYTES`].
    pub fn from_file(path: &Path) -> Result<Self, VaultError> {
        use std::io::Read as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let origin = path.display().to_string();
        let malformed = |why: String| VaultError::MalformedKey { origin: origin.clone(), why };
        // Non-blocking: a FIFO given as the key file is refused below, not waited on.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(|error| malformed(format!("unreadable ({error})")))?;
        let metadata = file.metadata().map_err(|error| malformed(format!("unreadable ({error})")))?;
        if !metadata.is_file() {
            return Err(malformed("it is not a regular file".into()));
        }
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(malformed(format!(
                "its mode is {mode:04o}: other users may read or change it; `chmod 600 {origin}`"
            )));
        }
        let mut text = String::new();
        file.take(KEY_FILE_MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|error| malformed(format!("unreadable ({error})")))?;
        if text.len() as u64 > KEY_FILE_MAX_BYTES {
            return Err(malformed(format!("it is longer than {KEY_FILE_MAX_BYTES} bytes; a key is 44")));
        }
        Self::from_base64(&text, &origin)
    }

    /// The host's key: from `key_file` if given, else from `CODEX_ENCRYPTION_KEY`.
    pub fn from_environment(key_file: Option<&Path>) -> Result<Self, VaultError> {
        if let Some(path) = key_file {
            return Self::from_file(path);
        }
        match std::env::var(KEY_VARIABLE) {
            Ok(text) => Self::from_base64(&text, KEY_VARIABLE),
            Err(_) => Err(VaultError::MissingKey),
        }
    }

    /// A fresh random key, as base64 text: what `vault generate-key` prints.
    pub fn generate() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(&mut aes_gcm::aead::OsRng))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}
