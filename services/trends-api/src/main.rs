//! `trends-api`: see the library docs. `main` only runs the service in the shared skeleton
//! ([`trends_common::service::run`]: settings from the environment, see the README; exit 0
//! after a clean stop, 1 on a failure, 2 for a configuration it refuses).

use std::process::ExitCode;

fn main() -> ExitCode {
    trends_common::service::run("trends-api", trends_api::run)
}
