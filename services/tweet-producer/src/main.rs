//! `tweet-producer`: see the library docs. `main` only parses the (absent) arguments, loads
//! settings, installs logging and signal handling, and runs.
//!
//! Exit codes: 0 after a clean stop (end of source, SIGTERM or Ctrl-C, everything committed),
//! 1 when the service fails while running (any transaction error: a failed delivery or
//! commit, a fenced producer, a Kafka call that hung), 2 for a configuration error or
//! unexpected arguments.
//!
//! The runtime is shut down with a deadline rather than dropped: a librdkafka call that never
//! returned (on the blocking pool) must not keep a failed process from exiting.

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tweet_producer::settings::Settings;

const USAGE: &str = "\
usage: tweet-producer

Publishes social posts to the raw-posts Kafka topic. Takes no arguments: it is configured by
the TOML file named in TRENDS_CONFIG_FILE and by TRENDS__SECTION__KEY environment variables,
e.g. TRENDS__SOURCE__SYNTHETIC__RATE=500 or TRENDS__SOURCE__KIND=file.";

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

async fn run() -> ExitCode {
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
