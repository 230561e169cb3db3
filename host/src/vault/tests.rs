use super::*;

fn key(byte: u8) -> EncryptionKey {
    use base64::Engine as _;
    EncryptionKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]), "test").unwrap()
}

const ROW: RowBinding<'static> = RowBinding { plugin: "openlibrary", user: "alice", field: "api_key" };

#[test]
fn a_value_round_trips_with_a_fresh_nonce_each_time() {
    let vault = Vault::new(key(1));
    let first = vault.seal(ROW, &Secret::new("s3cret"));
    let second = vault.seal(ROW, &Secret::new("s3cret"));
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.ciphertext, second.ciphertext);
    assert_eq!(first.key_id, key(1).id());
    assert_eq!(vault.open(ROW, &first).unwrap().expose(), "s3cret");
    assert_eq!(vault.open(ROW, &second).unwrap().expose(), "s3cret");
}

#[test]
fn a_wrong_key_with_the_same_id_does_not_open() {
    let sealed = Vault::new(key(1)).seal(ROW, &Secret::new("s3cret"));
    let forged = Sealed { key_id: key(2).id().to_owned(), ..sealed.clone() };
    let error = Vault::new(key(2)).open(ROW, &forged).unwrap_err();
    assert!(matches!(error, VaultError::Undecryptable { .. }), "{error}");
    let error = Vault::new(key(2)).open(ROW, &sealed).unwrap_err();
    assert!(error.to_string().contains(&format!("sealed with key {}", key(1).id())), "{error}");
}

#[test]
fn tampered_ciphertext_or_nonce_does_not_open() {
    let vault = Vault::new(key(1));
    let sealed = vault.seal(ROW, &Secret::new("s3cret"));
    for index in 0..sealed.ciphertext.len() {
        let mut tampered = sealed.clone();
        tampered.ciphertext[index] ^= 0x01;
        assert!(vault.open(ROW, &tampered).is_err(), "byte {index}");
    }
    let mut tampered = sealed.clone();
    tampered.nonce[0] ^= 0x80;
    assert!(vault.open(ROW, &tampered).is_err());
    tampered.nonce.truncate(4);
    assert!(vault.open(ROW, &tampered).is_err());
}

#[test]
fn a_value_moved_to_another_row_does_not_open() {
    let vault = Vault::new(key(1));
    let sealed = vault.seal(ROW, &Secret::new("s3cret"));
    for other in [
        RowBinding { plugin: "anilist", ..ROW },
        RowBinding { user: "bob", ..ROW },
        RowBinding { user: "", ..ROW },
        RowBinding { field: "token", ..ROW },
        // The same bytes split differently between the fields.
        RowBinding { plugin: "openlibraryalice", user: "", field: "api_key" },
    ] {
        let error = vault.open(other, &sealed).unwrap_err();
        assert!(error.to_string().contains("moved from another row"), "{other:?}: {error}");
    }
}

#[test]
fn an_older_key_still_opens_what_it_sealed() {
    let old = Vault::new(key(1)).seal(ROW, &Secret::new("before"));
    let rotated = Vault::new(key(2)).with_older_key(key(1));
    assert_eq!(rotated.open(ROW, &old).unwrap().expose(), "before");
    assert_eq!(rotated.seal(ROW, &Secret::new("after")).key_id, key(2).id());
}

#[test]
fn malformed_keys_are_refused_with_the_reason() {
    let error = EncryptionKey::from_base64("not base64!", "CODEX_ENCRYPTION_KEY").unwrap_err();
    assert!(error.to_string().starts_with("the encryption key from CODEX_ENCRYPTION_KEY is not usable: not base64"));
    let error = EncryptionKey::from_base64("c2hvcnQ=", "key.txt").unwrap_err();
    assert!(error.to_string().contains("it decodes to 5 bytes, and an AES-256 key is 32"), "{error}");
    assert!(EncryptionKey::from_base64(&format!(" {}\n", EncryptionKey::generate()), "file").is_ok());
}

#[test]
fn secrets_print_redacted() {
    let secret = Secret::new("s3cret");
    assert_eq!(format!("{secret}"), "[REDACTED]");
    assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
    assert_eq!(format!("{:?}", Some(vec![secret])), "Some([Secret([REDACTED])])");
}

#[test]
fn a_key_file_must_be_private_regular_and_short() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vault.key");
    std::fs::write(&file, EncryptionKey::generate()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = EncryptionKey::from_file(&file).unwrap_err();
    assert!(error.to_string().contains("mode is 0644") && error.to_string().contains("chmod 600"), "{error}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(EncryptionKey::from_file(&file).is_ok());
    // An endless device is refused at once, not read without bound.
    let error = EncryptionKey::from_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    let long = dir.path().join("long.key");
    std::fs::write(&long, "A".repeat(10_000)).unwrap();
    std::fs::set_permissions(&long, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = EncryptionKey::from_file(&long).unwrap_err();
    assert!(error.to_string().contains("longer than 4096 bytes"), "{error}");
}
