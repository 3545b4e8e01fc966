//! The skeleton every service's `main` runs: load settings → telemetry → signals → run →
//! exit code.
//!
//! Exit codes, the same for the three services: 0 after a clean stop (SIGTERM, Ctrl-C, or the
//! work ended), 1 when the service failed while running (the error is logged), 2 for a
//! configuration the service refuses (printed to stderr before logging is set up, with the
//! key that is wrong), and 2 too when the Kafka cluster refuses its credentials or TLS at
//! start (naming the settings to check): retrying would fail the same way.
//!
//! The runtime is shut down with a deadline rather than dropped: a blocking call that never
//! returned (librdkafka on the blocking pool) must not keep a failed process from exiting.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Load;

/// How long the start waits for the Kafka cluster to accept or refuse the service's
/// credentials ([`crate::kafka::check_access`]).
const KAFKA_ACCESS_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the runtime's blocking threads get to finish after `run` returned.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

/// Loads `S` from the environment, sets up logging and signal handling, and runs `run` on a
/// multi-threaded runtime with a token that SIGTERM or Ctrl-C cancels. `name` names the
/// service in the final error log line.
pub fn run<S, F, Fut>(name: &'static str, run: F) -> ExitCode
where
    S: Load,
    F: FnOnce(S, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = match S::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match crate::telemetry::init(settings.log(), name) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::kafka::check_access(settings.kafka(), KAFKA_ACCESS_TIMEOUT) {
        tracing::error!(error = %e, "{name} cannot start");
        eprintln!("error: {e}");
        telemetry.shutdown();
        return ExitCode::from(2);
    }
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
    let code = runtime.block_on(async {
        let token = CancellationToken::new();
        crate::shutdown::cancel_on_signal(token.clone());
        match run(settings, token).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "{name} stopped");
                ExitCode::FAILURE
            }
        }
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    // After the runtime: the exporter's blocking HTTP client must not run inside it.
    telemetry.shutdown();
    code
}
