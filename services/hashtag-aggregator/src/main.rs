//! `hashtag-aggregator`: see the library docs. `main` only dispatches and runs.
//!
//! - `hashtag-aggregator` runs the service (settings from the environment, see the README)
//!   in the shared skeleton ([`trends_common::service::run`]: exit 0 after a clean stop, 1 on
//!   a failure, 2 for a configuration it refuses).
//! - `hashtag-aggregator extract` reads JSON strings from stdin and prints their hashtags.

use std::process::ExitCode;

const USAGE: &str = "usage: hashtag-aggregator [extract]

  (no argument)  run the aggregator; settings come from TRENDS__* environment variables
  extract        read JSON strings, one per line, from stdin; print each line's hashtags
                 as a JSON array (as written, without '#', in order of appearance)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serve(),
        ["extract"] => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::BufWriter::new(std::io::stdout().lock());
            match hashtag_aggregator::extract_command::run(stdin, stdout, std::io::stderr()) {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("error: unexpected arguments {args:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    trends_common::service::run("hashtag-aggregator", hashtag_aggregator::run)
}
