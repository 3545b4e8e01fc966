//! The `x` source: the X API v2 filtered stream ([`stream`]), with its rules managed from
//! config ([`rules`]), X's documented reconnect policy ([`backoff`]) and an app bearer token
//! ([`api`]).
//!
//! No resume position: the stream cannot be resumed without recovery features not every plan
//! has, so after a restart it starts live. Posts made while the producer was down are missed;
//! none is published twice (what the killed run had not committed is discarded by Kafka).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.x.base_url` | `https://api.x.com` | the X API |
//! | `source.x.rules` | `""` | comma-separated filtered-stream rule values; at start the server's rules are made exactly these; required for `kind = "x"` |
//! | `source.x.tag` | `hashtag-trends` | the tag given to every rule (X echoes it in `matching_rules`); empty = no tag |
//! | `source.x.token.env` / `.file` | `""` | where the app's bearer token is (as for Mastodon); required for `kind = "x"` |
//!
//! and `source.x.backoff.*` ([`backoff`]).

pub mod api;
pub mod backoff;
pub mod rules;
pub mod stream;

use std::collections::HashMap;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;
use trends_common::config::ConfigError;

pub use self::api::TOKEN_KEY;
use self::api::XConfig;
use self::backoff::{Backoff, XBackoffSettings};
use self::stream::FilteredStream;
use super::contract::{Source, SourceContext, SourceTask, Start, split_list};
use super::live::http::{self, check_http_url, host_or_url};
use super::live;
use super::position::Position;
use crate::secret::SecretRef;

/// The defaults of `[source.x]`, its token and its back-off.
pub const DEFAULTS: &str = r#"
[source.x]
base_url = "https://api.x.com"
rules = ""
tag = "hashtag-trends"

[source.x.token]
env = ""
file = ""

[source.x.backoff]
network_step_ms = 250
network_max_ms = 16000
http_min_ms = 5000
http_max_ms = 320000
rate_limit_min_ms = 60000
rate_limit_max_ms = 900000
"#;

/// `[source.x]`: the X API v2 filtered stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XSettings {
    pub base_url: String,
    /// Comma-separated rule values.
    pub rules: String,
    pub tag: String,
    pub token: SecretRef,
    pub backoff: XBackoffSettings,
    /// The bearer token, read at load when `source.kind = "x"`.
    #[serde(skip)]
    pub resolved_token: Option<SecretString>,
}

impl XSettings {
    /// The rule values, trimmed, without empty entries, once each.
    pub fn rule_list(&self) -> Vec<String> {
        let mut rules: Vec<String> = Vec::new();
        for rule in split_list(&self.rules) {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        rules
    }
}

impl Source for XSettings {
    fn validate(&self, selected: bool) -> Result<(), ConfigError> {
        if !selected {
            return Ok(());
        }
        check_http_url("source.x.base_url", &self.base_url, false)?;
        if self.rule_list().is_empty() {
            return Err(ConfigError(
                "source.x.rules must list at least one filtered-stream rule (comma-separated) when source.kind = \"x\""
                    .to_owned(),
            ));
        }
        self.backoff.validate()
    }

    fn resolve_secrets(&mut self, vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        self.resolved_token = Some(self.token.load(TOKEN_KEY, vars)?);
        Ok(())
    }

    /// `x:<API host>`.
    fn origin(&self) -> String {
        format!("x:{}", host_or_url(&self.base_url))
    }

    fn log_start(&self, topic: &str, _source_key: &str, _start: Option<&Position>) {
        tracing::info!(
            topic,
            base_url = %self.base_url,
            rules = ?self.rule_list(),
            "publishing live posts from the X filtered stream"
        );
    }

    fn start(&self, _from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask> {
        let config = XConfig {
            base_url: self.base_url.trim().trim_end_matches('/').to_owned(),
            rules: self.rule_list(),
            tag: Some(self.tag.trim().to_owned()).filter(|t| !t.is_empty()),
            token: self
                .resolved_token
                .clone()
                .with_context(|| format!("{TOKEN_KEY} was not read"))?,
            policy: self.backoff,
        };
        Ok(Box::pin(async move {
            let client = http::client(&config.token, TOKEN_KEY)?;
            let backoff = Backoff::new(config.policy);
            let mut stream = FilteredStream::new(config, client);
            live::run(&mut stream, backoff, &ctx, "reconnecting to the X filtered stream").await
        }))
    }
}
