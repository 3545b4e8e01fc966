//! Logging set-up. Call [`init`] once at the start of `main`.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global `tracing` subscriber: human-readable or JSON lines on stderr, filtered
/// by `RUST_LOG` if set, else by the configured filter. Text lines are coloured only when
/// stderr is a terminal and `NO_COLOR` is not set ([`ansi_colour`]): a container's or a
/// service manager's log gets no escape codes.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = ansi_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second init (e.g. in tests) keeps the first subscriber; that is fine.
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether log lines carry ANSI colour codes: only when the log goes to a terminal, and never
/// when `NO_COLOR` is set to anything but the empty string (<https://no-color.org>).
pub fn ansi_colour(log_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    log_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = |v: &'static str| Some(OsStr::new(v));
        assert!(ansi_colour(true, None), "a terminal");
        assert!(
            !ansi_colour(false, None),
            "a pipe, a file, a container's log"
        );
        assert!(!ansi_colour(true, set("1")), "NO_COLOR=1");
        assert!(!ansi_colour(true, set("0")), "NO_COLOR=0 is set too");
        assert!(ansi_colour(true, set("")), "an empty NO_COLOR is not set");
        assert!(!ansi_colour(false, set("1")));
    }
}
