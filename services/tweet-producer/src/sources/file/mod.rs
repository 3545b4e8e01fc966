//! The `file` source: posts from a JSON-lines file ([`reader`]), replayed as fast as possible or
//! with its original timing, resumed where the last transaction ended.
//!
//! Why a file source: replaying a captured or hand-written data set is how a bug seen in
//! production is reproduced, and how a demo shows known data. A bad line is reported with its
//! line number and skipped: one broken line in a million must not stop a replay, but it must
//! not go unnoticed either. Valid lines are published byte for byte (minus the line ending),
//! not re-serialized, so fields the contract does not know are passed on untouched.
//!
//! Resume: every line, good or bad, moves the position ([`Mark::FileLine`]: the byte offset of
//! the next line and its number), so a restart re-reads none of them; it opens the file at the
//! committed offset, and refuses a file shorter than that (replaced or truncated).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.file.path` | `""` | the JSON-lines file of posts (one `RawPost` per line); required when `source.kind = "file"` |
//! | `source.file.pace` | `fast` | `fast`: publish as fast as possible; `original`: wait between posts as long as their `created_at` differ, at most 5 s per gap |

pub mod reader;

use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use tokio::io::{AsyncSeekExt, BufReader};
use trends_common::config::{ConfigError, by_name};
use trends_core::EpochMillis;

use self::reader::{JsonLines, Line};
use super::contract::{Source, SourceContext, SourceEvent, SourcePost, SourceTask, Start};
use super::position::{Mark, Position};

/// The defaults of `[source.file]`.
pub const DEFAULTS: &str = r#"
[source.file]
path = ""
pace = "fast"
"#;

/// A replayed file (`pace = "original"`) never waits longer than this between two posts.
pub const MAX_REPLAY_GAP: Duration = Duration::from_secs(5);

/// `[source.file]`: a JSON-lines file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub path: String,
    #[serde(deserialize_with = "by_name")]
    pub pace: Pace,
}

/// How fast a file is replayed (`source.file.pace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// As fast as possible.
    Fast,
    /// Sleep the gap between consecutive `created_at`, capped per gap.
    Original,
}

impl Source for FileSettings {
    fn resumes(&self) -> bool {
        true
    }

    fn validate(&self, selected: bool) -> Result<(), ConfigError> {
        if selected && self.path.trim().is_empty() {
            return Err(ConfigError(
                "source.file.path must name a JSON-lines file when source.kind = \"file\""
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// `file:<path>`, the path made absolute when the file exists.
    fn origin(&self) -> String {
        let path = self.path.trim();
        let path = std::fs::canonicalize(path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.to_owned());
        format!("file:{path}")
    }

    fn log_start(&self, topic: &str, source_key: &str, start: Option<&Position>) {
        tracing::info!(
            topic,
            path = %self.path,
            pace = ?self.pace,
            source_key,
            position = ?start,
            "publishing posts from a file"
        );
    }

    fn start(&self, from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask> {
        let config = FileConfig {
            settings: self.clone(),
            max_line_bytes: from.max_post_bytes,
            start: from.resume("file", Position::file_line)?,
        };
        Ok(Box::pin(async move { run(&config, &ctx).await }))
    }
}

/// A file source: its settings, the line limit, and where to resume (byte offset, line number).
#[derive(Debug, Clone)]
struct FileConfig {
    settings: FileSettings,
    max_line_bytes: usize,
    start: Option<(u64, u64)>,
}

/// Every valid line until EOF or shutdown, from the resume position if there is one; bad lines
/// (and lines over the limit) are skipped, logged with their number and counted as malformed.
/// Every line moves the position, so a restart re-reads none of them.
async fn run(config: &FileConfig, ctx: &SourceContext) -> anyhow::Result<()> {
    let settings = &config.settings;
    let path = settings.path.as_str();
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {path:?} (source.file.path)"))?;
    let (offset, line) = config.start.unwrap_or((0, 1));
    if offset > 0 {
        let length = file
            .metadata()
            .await
            .with_context(|| format!("cannot read {path:?} (source.file.path)"))?
            .len();
        if length < offset {
            anyhow::bail!(
                "{path:?} has {length} bytes, fewer than the position committed for it (byte {offset}, line {line}): the file was replaced or truncated; replay it under another path, or reset its position in the offsets topic"
            );
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .with_context(|| format!("cannot seek in {path:?} (source.file.path)"))?;
        tracing::info!(
            path,
            offset,
            line,
            "resuming the file where the last run committed"
        );
    }
    let mut lines = JsonLines::resuming(
        BufReader::with_capacity(256 * 1024, file),
        config.max_line_bytes,
        offset,
        line,
    );
    let mut previous: Option<EpochMillis> = None;
    while !ctx.shutdown.is_cancelled() {
        let line = lines
            .next_line()
            .await
            .with_context(|| format!("cannot read {path:?} (source.file.path)"))?;
        let Some(line) = line else {
            tracing::info!(path, skipped = ctx.skipped(), "end of file");
            break;
        };
        let mark = Mark::FileLine {
            next_offset: lines.offset(),
            number: line.number(),
        };
        let post = match line {
            Line::Post { bytes, parsed, .. } => Some((bytes, parsed)),
            Line::Blank { .. } => None,
            Line::Bad { number, error } => {
                ctx.malformed();
                tracing::warn!(path, line = number, error = %error, "skipping a line that is not a valid post");
                None
            }
            Line::TooLong { number, length } => {
                ctx.malformed();
                tracing::warn!(
                    path,
                    line = number,
                    bytes = length,
                    limit = config.max_line_bytes,
                    "skipping a line over the size limit (source.max_post_bytes)"
                );
                None
            }
        };
        let Some((bytes, parsed)) = post else {
            // Nothing to publish: only the position moves past the line.
            if !ctx.emit(SourceEvent::Position(mark)).await {
                break;
            }
            continue;
        };
        if settings.pace == Pace::Original {
            let gap = replay_gap(previous, parsed.event_time, MAX_REPLAY_GAP);
            previous = Some(parsed.event_time);
            if !gap.is_zero()
                && ctx
                    .shutdown
                    .run_until_cancelled(tokio::time::sleep(gap))
                    .await
                    .is_none()
            {
                break;
            }
        }
        let event = SourceEvent::Post(Box::new(SourcePost {
            post: parsed.post,
            event_time: parsed.event_time,
            payload: Some(bytes),
            position: Some(mark),
        }));
        if !ctx.emit(event).await {
            break;
        }
    }
    Ok(())
}

/// How long to wait before publishing a replayed post created at `current` when the previous
/// one was created at `previous`: the gap, at most `cap`; nothing for the first post or when
/// time goes backwards.
pub fn replay_gap(previous: Option<EpochMillis>, current: EpochMillis, cap: Duration) -> Duration {
    match previous {
        Some(previous) if current > previous => {
            let gap = Duration::from_millis(current.abs_diff(previous));
            gap.min(cap)
        }
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn replay_gaps_are_capped_and_never_negative() {
        let cap = Duration::from_secs(5);
        assert_eq!(replay_gap(None, 1_000, cap), Duration::ZERO);
        assert_eq!(replay_gap(Some(1_000), 1_250, cap), ms(250));
        assert_eq!(replay_gap(Some(1_000), 60_000, cap), cap);
        assert_eq!(replay_gap(Some(2_000), 1_000, cap), Duration::ZERO);
    }
}
