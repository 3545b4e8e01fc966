//! `hashtag-aggregator`: see the library docs. `main` only loads settings and runs.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match hashtag_aggregator::settings::Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    trends_common::telemetry::init(&settings.log);
    let token = tokio_util::sync::CancellationToken::new();
    trends_common::shutdown::cancel_on_signal(token.clone());
    match hashtag_aggregator::run(settings, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "hashtag-aggregator stopped");
            ExitCode::FAILURE
        }
    }
}
