//! Settings of moderation: `[admin]` (the admin API's token) and `[moderation]` (the
//! blocklist topic and its bounds).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `admin.token.env` / `admin.token.file` | unset | where the admin API's bearer token is read from: an environment variable's name, or a file (trimmed); unset = the admin API is off (its routes answer 404) |
//! | `moderation.topic` | `hashtag-blocklist` | the compacted topic holding the blocklist (1 partition, created if missing) |
//! | `moderation.max_entries` | `10000` | entries (exact tags and patterns) the blocklist holds at most |
//! | `moderation.max_patterns` | `1000` | of which patterns (entries with `*`) at most; each costs a scan of a tag in `is_blocked` |
//! | `moderation.max_import_bytes` | `4194304` | largest bulk-import body (4 MiB); its lines are also at most `max_entries` |
//! | `moderation.write_timeout_ms` | `5000` | a write (PUT, DELETE, import) answers 503 if it is not acknowledged by Kafka and applied by this replica within this |
//!
//! Why these bounds: 10,000 entries are ~3 MB at their largest (140-character entries, 200-
//! character reasons), read from Kafka in well under a second at start. Patterns are checked
//! one after the other for every tag asked about (each check is linear in the tag, see
//! [`super::glob`]), so they get their own, smaller bound: 1,000 patterns over a 140-character
//! tag are at most ~150,000 byte comparisons. The write timeout stays below the default
//! `http.request_timeout_ms` (10 s), so a slow write gets this module's 503, not a bare 408.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};
use trends_common::config::ConfigError;
use trends_common::secret::SecretRef;

/// The defaults of both sections as TOML, to append to the API's `Settings::DEFAULTS`.
pub const DEFAULTS: &str = r#"
[moderation]
topic = "hashtag-blocklist"
max_entries = 10000
max_patterns = 1000
max_import_bytes = 4194304
write_timeout_ms = 5000
"#;

/// The largest `moderation.max_entries`.
pub const MAX_MAX_ENTRIES: usize = 1_000_000;
/// The largest `moderation.max_import_bytes` (64 MiB).
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

/// `[admin]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Where the bearer token of the admin API is; `None` turns the admin API off.
    pub token: Option<SecretRef>,
}

impl AdminSettings {
    /// The token, read from its variable (looked up in `vars`) or file; `None` when
    /// `admin.token` is not set. The error names the key and the variable or file, never the
    /// token.
    pub fn load_token(
        &self,
        vars: &HashMap<String, String>,
    ) -> Result<Option<SecretString>, ConfigError> {
        match &self.token {
            None => Ok(None),
            Some(secret) => secret.load("admin.token", vars).map(Some),
        }
    }

    /// Checks what can be checked without reading the secret: exactly one of `env` and `file`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.token {
            Some(secret) if secret.env.trim().is_empty() == secret.file.trim().is_empty() => {
                Err(ConfigError(
                    "admin.token: set exactly one of admin.token.env (a variable name) or \
                     admin.token.file (a path)"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// `[moderation]`.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModerationSettings {
    pub topic: String,
    pub max_entries: usize,
    pub max_patterns: usize,
    pub max_import_bytes: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "write_timeout_ms")]
    pub write_timeout: Duration,
}

impl Default for ModerationSettings {
    fn default() -> Self {
        ModerationSettings {
            topic: "hashtag-blocklist".into(),
            max_entries: 10_000,
            max_patterns: 1_000,
            max_import_bytes: 4 << 20,
            write_timeout: Duration::from_secs(5),
        }
    }
}

impl ModerationSettings {
    /// Every value in range; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let topic = &self.topic;
        let valid_topic = !topic.is_empty()
            && topic.len() <= 249
            && topic != "."
            && topic != ".."
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_topic {
            return Err(ConfigError(format!(
                "moderation.topic {topic:?} is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
            )));
        }
        if !(1..=MAX_MAX_ENTRIES).contains(&self.max_entries) {
            return Err(ConfigError(format!(
                "moderation.max_entries must be within 1..={MAX_MAX_ENTRIES}"
            )));
        }
        if self.max_patterns > self.max_entries {
            return Err(ConfigError(
                "moderation.max_patterns must be at most moderation.max_entries".into(),
            ));
        }
        if !(1024..=MAX_IMPORT_BYTES).contains(&self.max_import_bytes) {
            return Err(ConfigError(format!(
                "moderation.max_import_bytes must be within 1024..={MAX_IMPORT_BYTES}"
            )));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.write_timeout) {
            return Err(ConfigError(
                "moderation.write_timeout_ms must be within 100..=60000".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    /// The two sections as the API's settings hold them.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Both {
        #[serde(default)]
        admin: AdminSettings,
        #[serde(default)]
        moderation: ModerationSettings,
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Both, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let both: Both = trends_common::config::load_from(DEFAULTS, &vars)?;
        both.admin.validate()?;
        both.moderation.validate()?;
        Ok(both)
    }

    #[test]
    fn defaults_agree_and_the_admin_api_is_off() {
        let both = load(&[]).expect("defaults");
        assert_eq!(both.moderation, ModerationSettings::default());
        assert_eq!(both.admin, AdminSettings::default());
        assert!(
            both.admin
                .load_token(&HashMap::new())
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn overrides_are_read_and_the_token_comes_from_its_variable() {
        let both = load(&[
            ("TRENDS__MODERATION__TOPIC", "blocked"),
            ("TRENDS__MODERATION__MAX_ENTRIES", "50"),
            ("TRENDS__MODERATION__MAX_PATTERNS", "5"),
            ("TRENDS__MODERATION__WRITE_TIMEOUT_MS", "700"),
            ("TRENDS__ADMIN__TOKEN__ENV", "ADMIN_TOKEN"),
        ])
        .expect("env");
        assert_eq!(
            (
                both.moderation.topic.as_str(),
                both.moderation.max_entries,
                both.moderation.max_patterns,
                both.moderation.write_timeout
            ),
            ("blocked", 50, 5, Duration::from_millis(700))
        );
        let vars = HashMap::from([("ADMIN_TOKEN".to_string(), "t0ken-value".to_string())]);
        let token = both.admin.load_token(&vars).expect("set").expect("some");
        assert_eq!(token.expose_secret(), "t0ken-value");
        // Unset variable: the error names the key and the variable, never a value.
        let err = both.admin.load_token(&HashMap::new()).expect_err("unset");
        assert!(err.to_string().contains("admin.token"), "{err}");
        assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value, named) in [
            ("TRENDS__MODERATION__TOPIC", "a b", "moderation.topic"),
            (
                "TRENDS__MODERATION__MAX_ENTRIES",
                "0",
                "moderation.max_entries",
            ),
            ("TRENDS__MODERATION__MAX_ENTRIES", "many", "max_entries"),
            (
                "TRENDS__MODERATION__MAX_PATTERNS",
                "20000",
                "moderation.max_patterns",
            ),
            (
                "TRENDS__MODERATION__MAX_IMPORT_BYTES",
                "10",
                "moderation.max_import_bytes",
            ),
            (
                "TRENDS__MODERATION__WRITE_TIMEOUT_MS",
                "0",
                "moderation.write_timeout_ms",
            ),
            ("TRENDS__MODERATION__COLOUR", "red", "colour"),
        ] {
            let err = load(&[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
        let both_set = load(&[
            ("TRENDS__ADMIN__TOKEN__ENV", "A"),
            ("TRENDS__ADMIN__TOKEN__FILE", "/run/secrets/admin"),
        ])
        .expect_err("both");
        assert!(both_set.to_string().contains("admin.token"), "{both_set}");
    }
}
