//! A value that never shows itself in a log or an error.

use std::fmt;

/// A decrypted credential. `Debug` and `Display` print `[REDACTED]`; the value is read only
/// through [`Secret::expose`], at the one place it is delivered to a plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the `initialize` message or a process plugin's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for Secret {
    /// Overwrites this copy of the plaintext before its memory is freed. (The copies made
    /// to deliver it, into `initialize` or an environment, are ordinary strings.)
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, and the string is not used after this.
        unsafe { self.0.as_bytes_mut() }.iter_mut().for_each(|byte| unsafe { std::ptr::write_volatile(byte, 0) });
    }
}
