//! Settings of the API.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `http.addr` | `0.0.0.0:8080` | listen address |
//! | `http.request_timeout_ms` | `10000` | a request taking longer gets 408 |
//! | `api.snapshot_interval_ms` | `250` | at most this often, new counts are turned into the served snapshot |
//!
//! plus the shared `kafka`, `topics`, `log` and `windows` sections.

use std::net::SocketAddr;

use serde::Deserialize;
use trends_common::config::{self, ConfigError};
use trends_common::settings::{
    KafkaSettings, LogSettings, SHARED_DEFAULTS, TopicSettings, WindowSettings,
};
use trends_core::window::BucketLayout;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub log: LogSettings,
    pub windows: WindowSettings,
    pub http: HttpSettings,
    pub api: ApiSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub addr: String,
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub snapshot_interval_ms: u64,
}

const DEFAULTS: &str = r#"
[http]
addr = "0.0.0.0:8080"
request_timeout_ms = 10000

[api]
snapshot_interval_ms = 250
"#;

impl Settings {
    pub fn load() -> Result<Settings, ConfigError> {
        let settings: Settings = config::load(&format!("{SHARED_DEFAULTS}{DEFAULTS}"))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn load_from(
        vars: &std::collections::HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let settings: Settings = config::load_from(&format!("{SHARED_DEFAULTS}{DEFAULTS}"), vars)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.windows.layout()?;
        self.addr()?;
        if !(10..=60_000).contains(&self.api.snapshot_interval_ms) {
            return Err(ConfigError(
                "api.snapshot_interval_ms must be within 10..=60000".into(),
            ));
        }
        if self.http.request_timeout_ms == 0 {
            return Err(ConfigError(
                "http.request_timeout_ms must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http.addr.parse().map_err(|e| {
            ConfigError(format!(
                "http.addr {:?} is not a socket address: {e}",
                self.http.addr
            ))
        })
    }

    pub fn layout(&self) -> BucketLayout {
        self.windows.layout().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(&vars)
    }

    #[test]
    fn defaults_and_documented_overrides() {
        let s = load(&[]).expect("defaults");
        assert_eq!(s.http.addr, "0.0.0.0:8080");
        let s = load(&[
            ("TRENDS__HTTP__ADDR", "127.0.0.1:9000"),
            ("TRENDS__TOPICS__COUNTS", "c"),
        ])
        .expect("env");
        assert_eq!(s.addr().expect("addr").port(), 9000);
        assert_eq!(s.topics.counts, "c");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value, named) in [
            ("TRENDS__HTTP__ADDR", "localhost", "http.addr"),
            (
                "TRENDS__API__SNAPSHOT_INTERVAL_MS",
                "0",
                "api.snapshot_interval_ms",
            ),
            ("TRENDS__HTTP__PORT", "1", "port"),
        ] {
            let err = load(&[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }
}
