//! `tweet-producer`: see the library docs. `main` only refuses arguments (it takes none but
//! `--help`) and runs the library in the shared skeleton ([`trends_common::service::run`]:
//! settings, logging, signals, runtime).
//!
//! Exit codes: 0 after a clean stop (end of source, SIGTERM or Ctrl-C, everything committed),
//! 1 when the service fails while running (any transaction error: a failed delivery or
//! commit, a fenced producer, a Kafka call that hung), 2 for a configuration error or
//! unexpected arguments.

use std::process::ExitCode;

use tweet_producer::settings::Settings;

const USAGE: &str = "\
usage: tweet-producer

Publishes social posts to the raw-posts Kafka topic. Takes no arguments: it is configured by
the TOML file named in TRENDS_CONFIG_FILE and by TRENDS__SECTION__KEY environment variables,
e.g. TRENDS__SOURCE__SYNTHETIC__RATE=500 or TRENDS__SOURCE__KIND=file.";

fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprintln!("error: unexpected argument {arg:?}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    trends_common::service::run(
        "tweet-producer",
        |settings: Settings, shutdown| async move {
            tweet_producer::run(settings, shutdown).await.map(|_| ())
        },
    )
}
