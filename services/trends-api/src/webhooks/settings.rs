//! `[webhooks]`: where trend alerts go and how hard delivery tries.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `webhooks.urls` | `[]` | receivers (`http://` or `https://`, at most 16, no repeats); empty = webhooks off. In an environment variable: comma-separated |
//! | `webhooks.secret.env` / `webhooks.secret.file` | — | the HMAC-SHA256 signing key (a variable's name or a file's path); required when `urls` is set |
//! | `webhooks.queue_capacity` | `1000` | undelivered events held per URL; when full, the oldest is dropped (and counted) |
//! | `webhooks.dedup_capacity` | `10000` | ids delivered to a URL remembered so they are never sent to it again |
//! | `webhooks.timeout_ms` | `5000` | one attempt (connect, send, response head) may take this long; then it counts as failed and is retried |
//! | `webhooks.initial_backoff_ms` | `500` | the wait before the first retry; it doubles with each further one (jitter: ×0.5..1) |
//! | `webhooks.max_backoff_ms` | `60000` | the longest wait between attempts, `Retry-After` included |
//! | `webhooks.max_attempts` | `8` | attempts per event and URL, the first included; then the event is given up (logged, counted) |
//!
//! With the defaults an event is tried for about 1–2 minutes (0.5 + 1 + 2 + 4 + 8 + 16 + 32 s
//! of back-off, each ×0.5..1, plus up to 8 × 5 s of timeouts) before it is given up, which
//! rides out a receiver's restart without letting one dead receiver hold its queue for long.
//! URLs are never logged whole (a webhook URL often carries its own secret in the path): logs
//! and errors name `webhooks.urls[i]` and the URL's origin only.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_with::{DurationMilliSeconds, serde_as};
use trends_common::config::ConfigError;
use trends_common::secret::SecretRef;

/// The most receivers.
pub const MAX_URLS: usize = 16;

/// `[webhooks]`. Every key has a default ([`WebhookSettings::default`]); [`validate`] checks
/// what the types cannot.
///
/// [`validate`]: WebhookSettings::validate
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    #[serde(deserialize_with = "url_list")]
    pub urls: Vec<String>,
    pub secret: SecretRef,
    pub queue_capacity: usize,
    pub dedup_capacity: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "timeout_ms")]
    pub timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "initial_backoff_ms")]
    pub initial_backoff: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "max_backoff_ms")]
    pub max_backoff: Duration,
    pub max_attempts: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            urls: Vec::new(),
            secret: SecretRef::default(),
            queue_capacity: 1000,
            dedup_capacity: 10_000,
            timeout: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

/// A TOML list, or a comma-separated string (what an environment variable can hold).
#[derive(Deserialize)]
#[serde(untagged)]
enum UrlList {
    List(Vec<String>),
    String(String),
}

fn url_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let urls = match UrlList::deserialize(deserializer)? {
        UrlList::List(list) => list,
        UrlList::String(s) => s.split(',').map(String::from).collect(),
    };
    Ok(urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect())
}

/// `scheme://host[:port]` of a URL: what logs show of a receiver.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl WebhookSettings {
    /// Whether any URL is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }

    /// The URLs, parsed, with their index in `webhooks.urls`.
    pub fn parsed_urls(&self) -> Result<Vec<Url>, ConfigError> {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let url = Url::parse(text).map_err(|e| {
                    ConfigError(format!(
                        "webhooks.urls[{i}] is not an absolute http:// or https:// URL ({e})"
                    ))
                })?;
                if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                    return Err(ConfigError(format!(
                        "webhooks.urls[{i}] must be an http:// or https:// URL with a host \
                         (scheme {:?})",
                        url.scheme()
                    )));
                }
                Ok(url)
            })
            .collect()
    }

    /// Reads the signing key when webhooks are on (`None` when off): the service does not
    /// start if it cannot be read. The error names the key and the variable or file, never the
    /// value.
    pub fn load_secret(
        &self,
        vars: &HashMap<String, String>,
    ) -> Result<Option<SecretString>, ConfigError> {
        if !self.enabled() {
            return Ok(None);
        }
        self.secret.load("webhooks.secret", vars).map(Some)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.urls.len() > MAX_URLS {
            return Err(ConfigError(format!(
                "webhooks.urls has {} entries, at most {MAX_URLS} are allowed",
                self.urls.len()
            )));
        }
        let urls = self.parsed_urls()?;
        for (i, url) in urls.iter().enumerate() {
            if let Some(j) = urls[..i].iter().position(|u| u == url) {
                return Err(ConfigError(format!(
                    "webhooks.urls[{i}] repeats webhooks.urls[{j}]"
                )));
            }
        }
        if self.enabled() {
            let (env, file) = (self.secret.env.trim(), self.secret.file.trim());
            if env.is_empty() == file.is_empty() {
                return Err(ConfigError(
                    "webhooks.secret: set exactly one of webhooks.secret.env (a variable name) \
                     or webhooks.secret.file (a path): deliveries are signed"
                        .into(),
                ));
            }
        }
        if !(1..=1_000_000).contains(&self.queue_capacity) {
            return Err(ConfigError(
                "webhooks.queue_capacity must be within 1..=1000000".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.dedup_capacity) {
            return Err(ConfigError(
                "webhooks.dedup_capacity must be within 1..=1000000".into(),
            ));
        }
        if !(Duration::from_millis(50)..=Duration::from_secs(300)).contains(&self.timeout) {
            return Err(ConfigError(
                "webhooks.timeout_ms must be within 50..=300000".into(),
            ));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(3600)).contains(&self.max_backoff) {
            return Err(ConfigError(
                "webhooks.max_backoff_ms must be within 1..=3600000".into(),
            ));
        }
        if !(Duration::from_millis(1)..=self.max_backoff).contains(&self.initial_backoff) {
            return Err(ConfigError(
                "webhooks.initial_backoff_ms must be within 1..=webhooks.max_backoff_ms".into(),
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError(
                "webhooks.max_attempts must be within 1..=100".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn on() -> WebhookSettings {
        WebhookSettings {
            urls: vec!["https://hooks.example.org/t/abc".into()],
            secret: SecretRef {
                env: "HOOK_KEY".into(),
                file: String::new(),
            },
            ..WebhookSettings::default()
        }
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let settings = WebhookSettings::default();
        assert!(!settings.enabled());
        settings.validate().expect("valid");
        assert!(
            settings
                .load_secret(&HashMap::new())
                .expect("off")
                .is_none()
        );
        on().validate().expect("valid");
    }

    #[test]
    fn reads_from_toml_with_defaults_and_a_comma_separated_string() {
        let settings: WebhookSettings = serde_json::from_value(serde_json::json!({
            "urls": "http://a.example:8080/x, https://b.example/y",
            "secret": {"file": "/run/secrets/hook"},
            "timeout_ms": 250,
        }))
        .expect("parses");
        assert_eq!(
            settings.urls,
            ["http://a.example:8080/x", "https://b.example/y"]
        );
        assert_eq!(settings.timeout, Duration::from_millis(250));
        assert_eq!(settings.max_attempts, 8);
        settings.validate().expect("valid");
        let unknown = serde_json::from_value::<WebhookSettings>(serde_json::json!({"url": []}));
        assert!(unknown.is_err());
    }

    #[test]
    fn every_bad_value_is_refused_naming_its_key() {
        let cases: Vec<(WebhookSettings, &str)> = vec![
            (
                WebhookSettings {
                    urls: vec!["ftp://x.example/".into()],
                    ..on()
                },
                "webhooks.urls[0]",
            ),
            (
                WebhookSettings {
                    urls: vec!["https://ok.example/".into(), "not a url".into()],
                    ..on()
                },
                "webhooks.urls[1]",
            ),
            (
                WebhookSettings {
                    urls: vec!["https://a.example/".into(), "https://a.example/".into()],
                    ..on()
                },
                "webhooks.urls[1] repeats",
            ),
            (
                WebhookSettings {
                    urls: (0..=MAX_URLS)
                        .map(|i| format!("https://h{i}.example/"))
                        .collect(),
                    ..on()
                },
                "webhooks.urls",
            ),
            (
                WebhookSettings {
                    secret: SecretRef::default(),
                    ..on()
                },
                "webhooks.secret",
            ),
            (
                WebhookSettings {
                    queue_capacity: 0,
                    ..on()
                },
                "webhooks.queue_capacity",
            ),
            (
                WebhookSettings {
                    dedup_capacity: 0,
                    ..on()
                },
                "webhooks.dedup_capacity",
            ),
            (
                WebhookSettings {
                    timeout: Duration::ZERO,
                    ..on()
                },
                "webhooks.timeout_ms",
            ),
            (
                WebhookSettings {
                    initial_backoff: Duration::from_secs(61),
                    ..on()
                },
                "webhooks.initial_backoff_ms",
            ),
            (
                WebhookSettings {
                    max_backoff: Duration::from_secs(7200),
                    ..on()
                },
                "webhooks.max_backoff_ms",
            ),
            (
                WebhookSettings {
                    max_attempts: 0,
                    ..on()
                },
                "webhooks.max_attempts",
            ),
        ];
        for (settings, key) in cases {
            let message = settings.validate().expect_err(key).0;
            assert!(message.contains(key), "{key}: {message}");
            assert!(
                !message.contains("/t/abc"),
                "a URL's path leaked: {message}"
            );
        }
    }

    #[test]
    fn loads_through_the_layered_config_from_environment_variables() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Root {
            #[serde(default)]
            webhooks: WebhookSettings,
        }
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let off: Root = trends_common::config::load_from("", &HashMap::new()).expect("loads");
        assert_eq!(off.webhooks, WebhookSettings::default());
        let root: Root = trends_common::config::load_from(
            "",
            &vars(&[
                (
                    "TRENDS__WEBHOOKS__URLS",
                    "http://a.example/h,https://b.example/h",
                ),
                ("TRENDS__WEBHOOKS__SECRET__ENV", "HOOK_KEY"),
                ("TRENDS__WEBHOOKS__MAX_ATTEMPTS", "3"),
                ("TRENDS__WEBHOOKS__TIMEOUT_MS", "1500"),
            ]),
        )
        .expect("loads");
        let expected = WebhookSettings {
            urls: vec!["http://a.example/h".into(), "https://b.example/h".into()],
            secret: SecretRef {
                env: "HOOK_KEY".into(),
                file: String::new(),
            },
            max_attempts: 3,
            timeout: Duration::from_millis(1500),
            ..WebhookSettings::default()
        };
        assert_eq!(root.webhooks, expected);
        root.webhooks.validate().expect("valid");
        let typo = trends_common::config::load_from::<Root>(
            "",
            &vars(&[("TRENDS__WEBHOOKS__MAX_ATTEMPT", "3")]),
        );
        assert!(typo.expect_err("unknown key").0.contains("max_attempt"));
    }

    #[test]
    fn the_secret_is_read_only_when_on() {
        let vars = HashMap::from([("HOOK_KEY".to_owned(), "k3y".to_owned())]);
        let secret = on().load_secret(&vars).expect("set").expect("on");
        assert_eq!(secret.expose_secret(), "k3y");
        let message = on().load_secret(&HashMap::new()).expect_err("unset").0;
        assert!(message.contains("webhooks.secret") && message.contains("HOOK_KEY"));
    }
}
