//! `trends-api`: see the library docs. `main` only loads settings and runs.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match trends_api::settings::Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    trends_common::telemetry::init(&settings.log);
    let token = tokio_util::sync::CancellationToken::new();
    trends_common::shutdown::cancel_on_signal(token.clone());
    match trends_api::run(settings, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "trends-api stopped");
            ExitCode::FAILURE
        }
    }
}
