//! Sources: where posts come from. One folder per source, one registry line each.
//!
//! - [`contract`]: what every source is given and must provide: [`SourceEvent`]s into a
//!   bounded channel through a [`SourceContext`], and the [`Source`] trait (checks, secrets,
//!   the key of its position, start), resume positions included ([`position`]).
//! - [`live`]: what the network sources share: the reconnect loop under a back-off policy,
//!   HTTP requests and streaming bodies, line and Server-Sent Events framing, supplied tags.
//! - one folder per source, owning its settings section (`[source.<name>]`: struct, defaults,
//!   checks, docs) and its code: [`synthetic`], [`file`](mod@file), [`bluesky`],
//!   [`mastodon`], [`x`].
//! - this file: the registry, and [`SourceSettings`], the `[source]` section (`source.kind`,
//!   what the pipeline reads of it, and one field per source).
//!
//! **Adding a source** is a folder `sources/<name>/` whose `mod.rs` has `pub const DEFAULTS`
//! (its TOML section) and a settings type implementing [`Source`], plus one line in the
//! registry below. Its name is everything at once: the module, the `[source.<name>]` section,
//! the `source.kind` value, the metric label and the start of its offsets key.
//!
//! **Dependencies run one way** (ARCHITECTURE.md, invariants): a source's folder uses
//! [`contract`], [`position`], [`live`] and [`crate::secret`], never another source, never
//! `crate::settings`, the pipeline, the publisher or the crate root; within a folder, `mod.rs`
//! (the section and its [`Source`] impl) uses the folder's files and they never use it. This
//! file is the only one that names every source, and nothing under `sources/` names its items.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.kind` | `synthetic` | where posts come from: `synthetic` (generated), `file` (a JSON-lines file), `bluesky` (Jetstream, live), `mastodon` (a server's streaming API, live), `x` (X API v2 filtered stream, live) |
//! | `source.buffer` | `1024` | posts a source may have read ahead of the publisher (a bounded channel: a slow broker slows the source down, memory stays bounded) |
//! | `source.keywords` | `""` | comma-separated; when set, only posts whose text contains one of them (any of, case-insensitive) are published |
//! | `source.languages` | `""` | comma-separated language codes; when set, only posts in one of them (`en` also takes `en-US`) are published; posts without a language are dropped |
//! | `source.dedup_capacity` | `100000` | how many recent post ids are remembered to drop re-delivered posts (a bounded horizon; 0 disables) |
//! | `source.max_post_bytes` | `524288` | the largest post record (key + value) published, 1024 to 991,808 (`MESSAGE_MAX_BYTES` − 8 KiB); a larger post, Jetstream frame or file line is skipped and counted |
//! | `source.reconnect.min_ms` | `500` | first reconnect delay of `bluesky` and `mastodon`; doubles per failed attempt, with jitter (`x` follows X's documented policy, `source.x.backoff`) |
//! | `source.reconnect.max_ms` | `30000` | longest reconnect delay |
//!
//! Each source documents its own section.

pub mod contract;
pub mod live;
pub mod position;

use std::collections::HashMap;

use serde::Deserialize;
use trends_common::config::{ConfigError, by_name};

use contract::split_list;
pub use contract::{
    ReconnectSettings, Source, SourceContext, SourceEvent, SourcePost, SourceTask, Start,
};
pub use position::{Mark, Position};

/// The registry. From one line per source, `name: Variant => settings type`, it declares the
/// module, the [`SourceKind`] variant with its name, the field of [`SourceSettings`], the
/// dispatch to that field ([`SourceSettings::section`]) and its defaults.
macro_rules! registry {
    ($($name:ident: $kind:ident => $section:ty),+ $(,)?) => {
        $(pub mod $name;)+

        /// Which source runs (`source.kind`). Its serde names (lowercase) are the module
        /// names; a test checks they agree with [`SourceKind::name`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum SourceKind {
            $($kind),+
        }

        impl SourceKind {
            /// Every source, in registry order.
            pub const ALL: &[SourceKind] = &[$(SourceKind::$kind),+];

            /// The name used in config, logs, metric labels and offsets keys.
            pub fn name(self) -> &'static str {
                match self {
                    $(SourceKind::$kind => stringify!($name)),+
                }
            }
        }

        /// `[source]`: which source runs, what the pipeline reads of it, and every source's
        /// section (all of them are loaded, so that a typo in an unused one still stops the
        /// service).
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SourceSettings {
            #[serde(deserialize_with = "by_name")]
            pub kind: SourceKind,
            pub buffer: usize,
            /// Comma-separated keywords (any of); empty = no keyword filter.
            pub keywords: String,
            /// Comma-separated language codes; empty = no language filter.
            pub languages: String,
            pub dedup_capacity: usize,
            /// The largest post record (key + value) published.
            pub max_post_bytes: usize,
            pub reconnect: ReconnectSettings,
            $(pub $name: $section,)+
        }

        impl SourceSettings {
            /// The section of `kind`.
            pub fn section(&self, kind: SourceKind) -> &dyn Source {
                match kind {
                    $(SourceKind::$kind => &self.$name),+
                }
            }

            fn section_mut(&mut self, kind: SourceKind) -> &mut dyn Source {
                match kind {
                    $(SourceKind::$kind => &mut self.$name),+
                }
            }
        }

        /// Every source's section defaults, in registry order.
        const SECTION_DEFAULTS: &[&str] = &[$($name::DEFAULTS),+];
    };
}

registry! {
    synthetic: Synthetic => synthetic::SyntheticSettings,
    file: File => file::FileSettings,
    bluesky: Bluesky => bluesky::BlueskySettings,
    mastodon: Mastodon => mastodon::MastodonSettings,
    x: X => x::XSettings,
}

/// The smallest `source.max_post_bytes` accepted.
pub const MIN_POST_BYTES: usize = 1024;
/// The largest `source.max_post_bytes` accepted: the client's record limit less room for the
/// record's framing.
pub const MAX_POST_BYTES: usize = trends_common::kafka::MESSAGE_MAX_BYTES - 8 * 1024;

/// The defaults of `[source]` itself and `[source.reconnect]`.
const DEFAULTS: &str = r#"
[source]
kind = "synthetic"
buffer = 1024
keywords = ""
languages = ""
dedup_capacity = 100000
max_post_bytes = 524288

[source.reconnect]
min_ms = 500
max_ms = 30000
"#;

impl SourceSettings {
    /// The defaults of `[source]`, `[source.reconnect]` and every source's section, as TOML.
    pub fn defaults() -> String {
        let mut defaults = DEFAULTS.to_owned();
        for section in SECTION_DEFAULTS {
            defaults.push_str(section);
        }
        defaults
    }

    /// The section of the source that runs.
    pub fn selected(&self) -> &dyn Source {
        self.section(self.kind)
    }

    /// The keywords, trimmed, without empty entries.
    pub fn keyword_list(&self) -> Vec<String> {
        split_list(&self.keywords)
    }

    /// The language codes, trimmed, without empty entries.
    pub fn language_list(&self) -> Vec<String> {
        split_list(&self.languages)
    }

    /// Checks `[source]` and every source's section; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_POST_BYTES..=MAX_POST_BYTES).contains(&self.max_post_bytes) {
            return Err(ConfigError(format!(
                "source.max_post_bytes must be within {MIN_POST_BYTES}..={MAX_POST_BYTES}, got {}",
                self.max_post_bytes
            )));
        }
        if self.buffer < 1 {
            return Err(ConfigError("source.buffer must be at least 1".to_owned()));
        }
        self.reconnect.validate()?;
        for kind in SourceKind::ALL {
            self.section(*kind).validate(*kind == self.kind)?;
        }
        Ok(())
    }

    /// Reads the secrets of the source that runs (a token), from `vars`.
    pub fn resolve_secrets(&mut self, vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        self.section_mut(self.kind).resolve_secrets(vars)
    }

    /// Prepares the source that runs, from the committed position `position`, sending into
    /// `ctx`. The task returns the number of malformed inputs it skipped.
    pub fn start(
        &self,
        position: Option<&Position>,
        ctx: SourceContext,
    ) -> anyhow::Result<futures_util::future::BoxFuture<'static, anyhow::Result<u64>>> {
        let from = Start {
            position,
            max_post_bytes: self.max_post_bytes,
            reconnect: &self.reconnect,
        };
        // This clone only reads the count: it goes with the task, so the channel still closes
        // when the source ends.
        let counted = ctx.clone();
        let task = self.selected().start(&from, ctx)?;
        Ok(Box::pin(async move {
            task.await?;
            Ok(counted.skipped())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_read_by_its_name() {
        for kind in SourceKind::ALL {
            let read: Result<SourceKind, serde::de::value::Error> = SourceKind::deserialize(
                serde::de::IntoDeserializer::into_deserializer(kind.name()),
            );
            assert_eq!(read, Ok(*kind), "{}", kind.name());
        }
    }
}
