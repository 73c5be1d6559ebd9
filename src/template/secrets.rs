//! Secret values met while rendering, and a string wrapper that hides itself in Debug.

use std::collections::BTreeSet;
use std::fmt;

/// Text printed in place of a secret in Debug output and masked reports.
pub const MASK: &str = "***";

/// A string that must not appear in logs: Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// The set of secret strings a rendered configuration contains: values of block fields
/// listed in the block schema's `secret_fields`, and every value of a `secret` block.
/// An env value that contains one of them goes into `secureValue`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(BTreeSet<String>);

impl SecretValues {
    /// Records one secret. Empty strings are ignored, since every text contains them.
    pub fn insert(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.insert(value);
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &SecretValues) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Returns true when `text` contains any recorded secret.
    pub fn appears_in(&self, text: &str) -> bool {
        self.0.iter().any(|secret| text.contains(secret.as_str()))
    }

    /// Returns the number of recorded secrets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns true when no secret was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValues({} hidden)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_debug_is_masked() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn secret_values_match_substrings() {
        let mut secrets = SecretValues::default();
        secrets.insert("");
        secrets.insert("s3cr3t");
        assert_eq!(secrets.len(), 1);
        assert!(secrets.appears_in("token=s3cr3t;"));
        assert!(!secrets.appears_in("token=other"));
        assert!(!format!("{secrets:?}").contains("s3cr3t"));
    }
}
