//! Layered configuration.
//!
//! Every service describes its settings as a `serde` struct with `deny_unknown_fields` and its
//! defaults as a TOML string compiled into the binary. [`load`] then layers, from weakest to
//! strongest:
//! 1. the built-in defaults;
//! 2. the TOML file named by the `TRENDS_CONFIG_FILE` environment variable, if set;
//! 3. environment variables `TRENDS__SECTION__KEY` (double underscores separate levels), e.g.
//!    `TRENDS__KAFKA__BOOTSTRAP_SERVERS=broker:9092` sets `kafka.bootstrap_servers`.
//!
//! A typo or a bad value stops the service at start with a message naming the key, because a
//! setting that is silently ignored is worse than a service that refuses to start.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

/// Environment variable prefix for settings.
pub const ENV_PREFIX: &str = "TRENDS";
/// Environment variable naming an optional TOML config file.
pub const CONFIG_FILE_ENV: &str = "TRENDS_CONFIG_FILE";

pub use crate::config_error::ConfigError;

/// A service's settings: their defaults, their checks, and how they load.
///
/// Each service implements it once for its `Settings`; `Settings::load()` and
/// `Settings::load_from(&vars)` then layer [`crate::settings::SHARED_DEFAULTS`] and the
/// service's [`Load::DEFAULTS`], the optional file and the environment, deserialize (unknown keys
/// refused) and [`Load::validate`].
pub trait Load: DeserializeOwned {
    /// The service's own defaults, as TOML (appended to the shared sections' defaults).
    const DEFAULTS: &'static str;

    /// Checks what the types cannot say; the error names the key.
    fn validate(&self) -> Result<(), ConfigError>;

    /// The `[log]` section, for the service skeleton ([`crate::service::run`]).
    fn log(&self) -> &crate::settings::LogSettings;

    /// The `[kafka]` section: the skeleton checks at start that the cluster lets the service
    /// in ([`crate::kafka::check_access`]), and the loader reads its secrets.
    fn kafka(&self) -> &crate::settings::KafkaSettings;

    /// The `[kafka]` section, to read its secrets into at load time.
    fn kafka_mut(&mut self) -> &mut crate::settings::KafkaSettings;

    /// Loads and validates settings from the process environment.
    fn load() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// [`Load::load_from`] an environment given as `(name, value)` pairs (tests).
    fn load_from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::load_from(&vars)
    }

    /// Loads and validates settings from an explicit environment (tests, config checks).
    fn load_from(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let defaults = format!("{}{}", crate::settings::SHARED_DEFAULTS, Self::DEFAULTS);
        let mut settings: Self = load_from(&defaults, vars)?;
        settings.validate()?;
        settings.kafka_mut().resolve_secrets(vars)?;
        Ok(settings)
    }
}

/// Reads a unit-variant enum by its name: `#[serde(deserialize_with = "by_name")]` on a field
/// whose enum derives `Deserialize` (with `rename_all`/`rename`). A wrong name then gets
/// serde's own message, which lists every accepted one (``unknown variant `slow`, expected
/// `fast` or `original` for key `source.file.pace` ``); read directly from the layered config,
/// an enum's error names neither the accepted values nor the serde names.
pub fn by_name<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize as _;
    use serde::de::{Error as _, IntoDeserializer as _, value};
    let name = String::deserialize(deserializer)?;
    T::deserialize(name.into_deserializer()).map_err(|e: value::Error| D::Error::custom(e))
}

/// Loads settings from the process environment.
pub fn load<T: DeserializeOwned>(defaults_toml: &str) -> Result<T, ConfigError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    load_from(defaults_toml, &vars)
}

/// Loads settings from the given environment (a map, so tests need not touch the process's).
pub fn load_from<T: DeserializeOwned>(
    defaults_toml: &str,
    vars: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        defaults_toml,
        config::FileFormat::Toml,
    ));
    if let Some(path) = vars.get(CONFIG_FILE_ENV) {
        builder = builder.add_source(config::File::new(path, config::FileFormat::Toml));
    }
    let env: HashMap<String, String> = vars
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    let built = builder.build().map_err(|e| ConfigError(e.to_string()))?;
    serde_path_to_error_like(built)
}

/// Deserializes, rewording serde's unknown-field errors so they name the full key.
fn serde_path_to_error_like<T: DeserializeOwned>(built: config::Config) -> Result<T, ConfigError> {
    built.try_deserialize::<T>().map_err(|e| {
        let message = e.to_string();
        ConfigError(match message.find("unknown field") {
            Some(_) => format!(
                "{message} (set through {CONFIG_FILE_ENV} or a {ENV_PREFIX}__SECTION__KEY environment variable)"
            ),
            None => message,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        kafka: Kafka,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Kafka {
        bootstrap_servers: String,
        partitions: u32,
    }

    const DEFAULTS: &str = "[kafka]\nbootstrap_servers = \"localhost:9092\"\npartitions = 12\n";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_and_environment_overrides() {
        let s: Settings = load_from(DEFAULTS, &env(&[])).expect("defaults");
        assert_eq!(s.kafka.bootstrap_servers, "localhost:9092");
        let s: Settings = load_from(
            DEFAULTS,
            &env(&[
                ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", "kafka:9092"),
                ("TRENDS__KAFKA__PARTITIONS", "3"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("env");
        assert_eq!(s.kafka.bootstrap_servers, "kafka:9092");
        assert_eq!(s.kafka.partitions, 3);
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let err = load_from::<Settings>(DEFAULTS, &env(&[("TRENDS__KAFKA__PARTITIONS", "many")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("kafka.partitions"), "{err}");
    }

    #[test]
    fn an_unknown_key_names_the_key() {
        let err =
            load_from::<Settings>(DEFAULTS, &env(&[("TRENDS__KAFKA__BOOTSTRAP_SERVERZ", "x")]))
                .expect_err("typo");
        assert!(err.to_string().contains("bootstrap_serverz"), "{err}");
        let err =
            load_from::<Settings>(DEFAULTS, &env(&[("TRENDS__KAFKAA__X", "x")])).expect_err("typo");
        assert!(err.to_string().contains("kafkaa"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = load_from::<Settings>(DEFAULTS, &env(&[(CONFIG_FILE_ENV, "/nonexistent.toml")]))
            .expect_err("missing file");
        assert!(err.to_string().contains("nonexistent"), "{err}");
    }

    #[test]
    fn an_enum_read_by_name_lists_its_names_and_the_key() {
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Pace {
            Fast,
            Original,
        }
        #[derive(Debug, Deserialize)]
        struct Replay {
            #[serde(deserialize_with = "by_name")]
            pace: Pace,
        }
        #[derive(Debug, Deserialize)]
        struct Settings {
            replay: Replay,
        }
        let defaults = "[replay]\npace = \"fast\"\n";
        let s: Settings =
            load_from(defaults, &env(&[("TRENDS__REPLAY__PACE", "original")])).expect("a name");
        assert_eq!(s.replay.pace, Pace::Original);
        let err = load_from::<Settings>(defaults, &env(&[("TRENDS__REPLAY__PACE", "slow")]))
            .expect_err("not a name");
        let err = err.to_string();
        for part in ["replay.pace", "`slow`", "`fast` or `original`"] {
            assert!(err.contains(part), "{part} in {err}");
        }
    }
}
