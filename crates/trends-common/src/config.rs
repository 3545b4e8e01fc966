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
//!
//! **One environment for all services.** A service loads through [`load_service`]: every key
//! must be one that *some* service reads ([`crate::settings::SECTIONS`]), else it is refused
//! with the nearest key that exists (`unknown setting aggregator.metrics_adr
//! (TRENDS__AGGREGATOR__METRICS_ADR): no service reads it; the nearest is
//! aggregator.metrics_addr (TRENDS__AGGREGATOR__METRICS_ADDR)`); then the sections other
//! services read are dropped and the rest is deserialized as before. So one `.env` file or
//! Kubernetes ConfigMap can hold the settings of all three services.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

/// Environment variable prefix for settings.
pub const ENV_PREFIX: &str = "TRENDS";
/// Environment variable naming an optional TOML config file.
pub const CONFIG_FILE_ENV: &str = "TRENDS_CONFIG_FILE";

pub use crate::config_error::ConfigError;
pub use crate::settings::Service;

/// A service's settings: their defaults, their checks, and how they load.
///
/// Each service implements it once for its `Settings`; `Settings::load()` and
/// `Settings::load_from(&vars)` then layer [`crate::settings::SHARED_DEFAULTS`] and the
/// service's [`Load::DEFAULTS`], the optional file and the environment, deserialize (unknown keys
/// refused) and [`Load::validate`].
pub trait Load: DeserializeOwned {
    /// Which service this is: the sections it reads ([`crate::settings::SECTIONS`]).
    const SERVICE: Service;

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
        let mut settings: Self = load_service(Self::SERVICE, &defaults, vars)?;
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
/// Every key must be one `T` has (no shared environment: see [`load_service`]).
pub fn load_from<T: DeserializeOwned>(
    defaults_toml: &str,
    vars: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    serde_path_to_error_like(layered(defaults_toml, vars)?)
}

/// Loads `service`'s settings from a shared environment: defaults, file and variables layered
/// as by [`load_from`]; every key must be one some service reads, or the error names the
/// nearest that exists; the sections only other services read are then dropped.
pub fn load_service<T: DeserializeOwned>(
    service: Service,
    defaults_toml: &str,
    vars: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    use config::Source as _;
    let built = layered(defaults_toml, vars)?;
    let mut table = built.collect().map_err(|e| ConfigError(e.to_string()))?;
    check_keys(&table)?;
    table.retain(|name, _| {
        crate::settings::section(name).is_some_and(|s| s.read_by.contains(&service))
    });
    serde_path_to_error_like(config::Value::new(None, config::ValueKind::Table(table)))
}

/// Refuses the first key (in name order) that no service reads, naming the nearest one that
/// exists; a removed key gets what replaced it.
fn check_keys(table: &config::Map<String, config::Value>) -> Result<(), ConfigError> {
    let mut leaves = Vec::new();
    for (name, value) in table {
        collect_leaves(name, value, &mut leaves);
    }
    leaves.sort();
    for key in leaves {
        let known = key.split_once('.').is_some_and(|(section, rest)| {
            crate::settings::section(section).is_some_and(|s| s.has(rest))
        });
        if known {
            continue;
        }
        if let Some((_, message)) = crate::settings::REMOVED_KEYS
            .iter()
            .find(|(removed, _)| *removed == key)
        {
            return Err(ConfigError((*message).to_owned()));
        }
        let env = crate::settings::env_var(&key);
        return Err(ConfigError(match nearest_key(&key) {
            Some(near) => format!(
                "unknown setting {key} ({env}): no service reads it; the nearest is {near} ({})",
                crate::settings::env_var(&near)
            ),
            None => format!("unknown setting {key} ({env}): no service reads it"),
        }));
    }
    Ok(())
}

/// Every leaf key below `prefix` (`kafka.sasl.username`); an array is a leaf.
fn collect_leaves(prefix: &str, value: &config::Value, out: &mut Vec<String>) {
    match &value.kind {
        config::ValueKind::Table(table) => {
            for (name, value) in table {
                collect_leaves(&format!("{prefix}.{name}"), value, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// The known key closest to `key` (edit distance; the first of equals in catalogue order).
pub fn nearest_key(key: &str) -> Option<String> {
    crate::settings::all_keys().min_by_key(|known| edit_distance(key, known))
}

/// How the catalogue ([`crate::settings::SECTIONS`]) and service `T` disagree, for `T`'s tests
/// (empty when they agree): every key of `defaults_toml` (`T`'s full defaults) must be listed
/// in a section `T` reads, and every listed key of those sections must be one `T`'s types know
/// (set alone to `1`, it may be refused as a bad value, never as an unknown field).
pub fn catalogue_mismatches<T: Load>(defaults_toml: &str) -> Vec<String> {
    use config::Source as _;
    let mut mismatches = Vec::new();
    let reads =
        |name: &str| crate::settings::section(name).filter(|s| s.read_by.contains(&T::SERVICE));
    match layered(defaults_toml, &HashMap::new())
        .and_then(|built| built.collect().map_err(|e| ConfigError(e.to_string())))
    {
        Ok(table) => {
            let mut leaves = Vec::new();
            for (name, value) in &table {
                collect_leaves(name, value, &mut leaves);
            }
            for key in leaves {
                let listed = key
                    .split_once('.')
                    .is_some_and(|(section, rest)| reads(section).is_some_and(|s| s.has(rest)));
                if !listed {
                    mismatches.push(format!("{key} has a default but is not listed"));
                }
            }
        }
        Err(e) => mismatches.push(format!("the defaults do not load: {e}")),
    }
    for section in crate::settings::SECTIONS
        .iter()
        .filter(|s| s.read_by.contains(&T::SERVICE))
    {
        for key in section.keys {
            let key = format!("{}.{}", section.name, key.replace('*', "client_rack"));
            let variable = crate::settings::env_var(&key);
            if let Err(e) = T::load_from_pairs(&[(&variable, "1")]) {
                if e.0.contains("unknown field") || e.0.contains("unknown setting") {
                    mismatches.push(format!(
                        "{key} is listed but {:?} does not know it: {e}",
                        T::SERVICE
                    ));
                }
            }
        }
    }
    mismatches
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Defaults ← the optional file ← the `TRENDS__*` variables.
fn layered(
    defaults_toml: &str,
    vars: &HashMap<String, String>,
) -> Result<config::Config, ConfigError> {
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
    builder.build().map_err(|e| ConfigError(e.to_string()))
}

/// Deserializes, rewording serde's unknown-field errors so they name the full key.
fn serde_path_to_error_like<T, D>(built: D) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    D: serde::Deserializer<'static, Error = config::ConfigError>,
{
    T::deserialize(built).map_err(|e| {
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Aggregator {
        aggregator: AggregatorSection,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AggregatorSection {
        group_id: String,
    }

    fn aggregator(pairs: &[(&str, &str)]) -> Result<Aggregator, ConfigError> {
        load_service(
            Service::Aggregator,
            "[aggregator]\ngroup_id = \"g\"\n",
            &env(pairs),
        )
    }

    #[test]
    fn a_service_passes_over_the_sections_other_services_read() {
        let s = aggregator(&[
            ("TRENDS__AGGREGATOR__GROUP_ID", "counting"),
            ("TRENDS__HTTP__ADDR", "127.0.0.1:8080"),
            ("TRENDS__SOURCE__KIND", "file"),
            ("TRENDS__SOURCE__X__BACKOFF__HTTP_MIN_MS", "1"),
            ("TRENDS__PRODUCER__METRICS_ADDR", "not even an address"),
            ("TRENDS__WEBHOOKS__SECRET__ENV", "HOOK_KEY"),
        ])
        .expect("the API's and the producer's sections are theirs");
        assert_eq!(s.aggregator.group_id, "counting");
        // Its own sections are still read strictly.
        let err = aggregator(&[("TRENDS__KAFKA__BOOTSTRAP_SERVERS", "k:9092")])
            .expect_err("this test's struct has no [kafka]");
        assert!(err.to_string().contains("kafka"), "{err}");
    }

    #[test]
    fn a_key_no_service_reads_is_refused_with_the_nearest_that_exists() {
        for (variable, named, nearest) in [
            (
                "TRENDS__AGGREGATOR__METRICS_ADR",
                "aggregator.metrics_adr (TRENDS__AGGREGATOR__METRICS_ADR)",
                "the nearest is aggregator.metrics_addr (TRENDS__AGGREGATOR__METRICS_ADDR)",
            ),
            (
                "TRENDS__HTTP__ADR",
                "http.adr",
                "the nearest is http.addr (TRENDS__HTTP__ADDR)",
            ),
            (
                "TRENDS__HTPP__ADDR",
                "htpp.addr",
                "the nearest is http.addr (TRENDS__HTTP__ADDR)",
            ),
            (
                "TRENDS__SOURCE__SYNTHETIC__RATES",
                "source.synthetic.rates",
                "the nearest is source.synthetic.rate (TRENDS__SOURCE__SYNTHETIC__RATE)",
            ),
            (
                "TRENDS__KAFKA__SASL__PASWORD__FILE",
                "kafka.sasl.pasword.file",
                "the nearest is kafka.sasl.password.file",
            ),
        ] {
            let err = aggregator(&[(variable, "1")]).expect_err(variable);
            let err = err.to_string();
            for part in [named, "no service reads it", nearest] {
                assert!(err.contains(part), "{variable}: {part} in {err}");
            }
        }
    }

    #[test]
    fn any_librdkafka_property_is_a_key_and_a_removed_key_says_what_replaced_it() {
        let mut table = config::Map::new();
        let mut properties = config::Map::new();
        properties.insert(
            "client_rack".to_owned(),
            config::Value::new(None, "use1-az1"),
        );
        let mut kafka = config::Map::new();
        kafka.insert(
            "properties".to_owned(),
            config::Value::new(None, config::ValueKind::Table(properties)),
        );
        table.insert(
            "kafka".to_owned(),
            config::Value::new(None, config::ValueKind::Table(kafka)),
        );
        check_keys(&table).expect("kafka.properties.* is open");
        let err =
            aggregator(&[("TRENDS__SOURCE__BLUESKY__CURSOR_FILE", "/tmp/c")]).expect_err("removed");
        assert!(err.to_string().contains("topics.source_offsets"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("addr", "addr"), 0);
        assert_eq!(edit_distance("adr", "addr"), 1);
        assert_eq!(edit_distance("metrics_addr", "metircs_addr"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("日本", "日本語"), 1);
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
