//! `trends-api`: see the library docs. `main` only runs the service in the shared skeleton
//! ([`trends_common::service::run`]: settings from the environment, see the README; exit 0
//! after a clean stop, 1 on a failure, 2 for a configuration it refuses).
//!
//! `trends-api healthcheck [PORT | HOST:PORT]` instead asks a running server's `/healthz` and
//! exits 0 or 1 ([`trends_api::healthcheck`]): the image's healthcheck, without curl.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "healthcheck") {
        let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        return trends_api::healthcheck::main(&rest);
    }
    trends_common::service::run("trends-api", trends_api::run)
}
