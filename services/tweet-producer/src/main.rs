//! `tweet-producer`: see the library docs. `main` only parses the (absent) arguments, loads
//! settings, installs logging and signal handling, and runs.
//!
//! Exit codes: 0 after a clean stop (end of source, SIGTERM or Ctrl-C, everything flushed),
//! 1 when the service fails while running (e.g. a delivery fails), 2 for a configuration
//! error or unexpected arguments.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use tweet_producer::settings::Settings;

const USAGE: &str = "\
usage: tweet-producer

Publishes social posts to the raw-posts Kafka topic. Takes no arguments: it is configured by
the TOML file named in TRENDS_CONFIG_FILE and by TRENDS__SECTION__KEY environment variables,
e.g. TRENDS__SOURCE__SYNTHETIC__RATE=500 or TRENDS__SOURCE__KIND=file.";

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprintln!("error: unexpected argument {arg:?}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    trends_common::telemetry::init(&settings.log);
    let shutdown = CancellationToken::new();
    trends_common::shutdown::cancel_on_signal(shutdown.clone());
    match tweet_producer::run(settings, shutdown).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tweet-producer failed");
            ExitCode::FAILURE
        }
    }
}
