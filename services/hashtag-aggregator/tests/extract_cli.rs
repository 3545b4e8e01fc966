//! The `extract` subcommand as a user runs it: the real binary, stdin to stdout.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hashtag-aggregator"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn extract_prints_the_readme_example() {
    let (code, out, _) = run(
        "\"a #Rust and #日本語 post\"\n\"#one, #two #3\"\n",
        &["extract"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(out, "[\"Rust\",\"日本語\"]\n[\"one\",\"two\"]\n");
}

#[test]
fn extract_flags_bad_lines_and_exits_1() {
    let (code, out, err) = run("{\"text\":\"#x\"}\n\"#ok\"\n", &["extract"]);
    assert_eq!(code, Some(1));
    assert_eq!(out, "null\n[\"ok\"]\n");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn unknown_arguments_exit_2_with_usage() {
    let (code, _, err) = run("", &["extrakt"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("usage: hashtag-aggregator"), "{err}");
}
