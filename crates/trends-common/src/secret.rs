//! Secrets (API tokens) as a secret type, read from an environment variable or a file.
//!
//! Why a type: a token that is a `String` ends up in a `{:?}` of the settings, a log line or an
//! error message sooner or later. [`secrecy::SecretString`] prints as `[REDACTED]`, is zeroed
//! when dropped, and is read only through an explicit `expose_secret()` at the one place that
//! sends it. The config names *where* the secret is ([`SecretRef`]: a variable name or a file
//! path, both safe to log), never the secret itself, so settings files can be committed and
//! Docker/Kubernetes secrets (files) work as they are. Errors name the variable or the file,
//! never the content.
//!
//! Users: the producer's token-based sources (`mastodon`, `x`; `bluesky` is public) and the
//! API's admin token and webhook signing key.

use std::collections::HashMap;

use crate::config::ConfigError;
use secrecy::SecretString;
use serde::Deserialize;

/// Where a secret is read from: `env` (an environment variable's name) or `file` (a path whose
/// content, trimmed of surrounding whitespace, is the secret). Exactly one must be set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretRef {
    pub env: String,
    pub file: String,
}

/// Why a secret could not be read. Names the config key and the variable or file, never the
/// value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{key}: set exactly one of {key}.env (a variable name) or {key}.file (a path)")]
    NotExactlyOne { key: String },
    #[error("{key}: environment variable {var} is not set or empty")]
    MissingVar { key: String, var: String },
    #[error("{key}: cannot read the secret file {path}: {reason}")]
    Unreadable {
        key: String,
        path: String,
        reason: String,
    },
    #[error("{key}: the secret file {path} is empty")]
    EmptyFile { key: String, path: String },
}

impl SecretRef {
    /// [`SecretRef::resolve`], failing as a configuration error (the service does not start).
    pub fn load(
        &self,
        key: &str,
        vars: &HashMap<String, String>,
    ) -> Result<SecretString, ConfigError> {
        self.resolve(key, vars)
            .map_err(|e| ConfigError(e.to_string()))
    }

    /// Reads the secret named by this reference (`key` is its config key, for errors), looking
    /// variables up in `vars`.
    pub fn resolve(
        &self,
        key: &str,
        vars: &HashMap<String, String>,
    ) -> Result<SecretString, SecretError> {
        let env = self.env.trim();
        let file = self.file.trim();
        match (env.is_empty(), file.is_empty()) {
            (false, true) => match vars.get(env).map(|v| v.trim()) {
                Some(value) if !value.is_empty() => Ok(SecretString::from(value.to_owned())),
                _ => Err(SecretError::MissingVar {
                    key: key.to_owned(),
                    var: env.to_owned(),
                }),
            },
            (true, false) => {
                let content =
                    std::fs::read_to_string(file).map_err(|e| SecretError::Unreadable {
                        key: key.to_owned(),
                        path: file.to_owned(),
                        reason: e.kind().to_string(),
                    })?;
                let value = content.trim();
                if value.is_empty() {
                    return Err(SecretError::EmptyFile {
                        key: key.to_owned(),
                        path: file.to_owned(),
                    });
                }
                Ok(SecretString::from(value.to_owned()))
            }
            _ => Err(SecretError::NotExactlyOne {
                key: key.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const TOKEN: &str = "s3cr3t-token-value";

    fn vars() -> HashMap<String, String> {
        HashMap::from([("MY_TOKEN".to_owned(), format!("  {TOKEN}\n"))])
    }

    #[test]
    fn reads_from_a_variable_or_a_file_and_never_prints_it() {
        let from_env = SecretRef {
            env: "MY_TOKEN".into(),
            file: String::new(),
        }
        .resolve("source.x.token", &vars())
        .expect("set");
        assert_eq!(from_env.expose_secret(), TOKEN);
        assert!(!format!("{from_env:?}").contains(TOKEN));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).expect("write");
        let from_file = SecretRef {
            env: String::new(),
            file: path.display().to_string(),
        }
        .resolve("source.x.token", &HashMap::new())
        .expect("readable");
        assert_eq!(from_file.expose_secret(), TOKEN);
    }

    #[test]
    fn errors_name_the_key_and_place_never_the_value() {
        let both = SecretRef {
            env: "MY_TOKEN".into(),
            file: "/x".into(),
        };
        let unset = SecretRef {
            env: "UNSET".into(),
            file: String::new(),
        };
        let missing = SecretRef {
            env: String::new(),
            file: "/nonexistent/token".into(),
        };
        for (secret, expect) in [
            (SecretRef::default(), "source.x.token.env"),
            (both, "exactly one"),
            (unset, "UNSET"),
            (missing, "/nonexistent/token"),
        ] {
            let message = secret
                .resolve("source.x.token", &vars())
                .expect_err("rejected")
                .to_string();
            assert!(message.contains(expect), "{message}");
            assert!(!message.contains(TOKEN), "{message}");
        }
    }
}
