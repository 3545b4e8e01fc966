//! twitter-text conformance: every hashtag case of its `conformance/extract.yml` must pass.
//!
//! The cases are not copied into this repository: they are read at test time from
//! `$TRENDS_CONFORMANCE_DIR/twitter-text-hashtags.yml` when that variable is set, else from
//! `<repo root>/../shared/conformance/twitter-text-hashtags.yml`. A missing file fails the test.

use std::path::PathBuf;

use serde::Deserialize;
use trends_core::hashtag::{extract_hashtags, for_each_hashtag};

const FILE_NAME: &str = "twitter-text-hashtags.yml";
const DIR_VAR: &str = "TRENDS_CONFORMANCE_DIR";
const EXPECTED_CASES: usize = 65;

#[derive(Debug, Deserialize)]
struct Suite {
    tests: Sections,
}

#[derive(Debug, Deserialize)]
struct Sections {
    hashtags: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    description: String,
    text: String,
    expected: Vec<String>,
}

fn suite_path() -> PathBuf {
    match std::env::var_os(DIR_VAR) {
        Some(dir) => PathBuf::from(dir).join(FILE_NAME),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance")
            .join(FILE_NAME),
    }
}

fn load_cases() -> Vec<Case> {
    let path = suite_path();
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the twitter-text conformance cases at {}: {e}\n\
             They are looked for in ${DIR_VAR}/{FILE_NAME} when {DIR_VAR} is set, else in \
             <repo root>/../shared/conformance/{FILE_NAME}. Set {DIR_VAR} to the directory that \
             holds {FILE_NAME} to point the test elsewhere.",
            path.display()
        )
    });
    let suite: Suite = serde_yaml::from_str(&yaml)
        .unwrap_or_else(|e| panic!("{} is not a conformance file: {e}", path.display()));
    suite.tests.hashtags
}

#[test]
fn every_twitter_text_hashtag_case_passes() {
    let cases = load_cases();
    assert_eq!(
        cases.len(),
        EXPECTED_CASES,
        "expected {EXPECTED_CASES} hashtag cases in {}",
        suite_path().display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let got = extract_hashtags(&case.text);
        let mut streamed = Vec::new();
        for_each_hashtag(&case.text, |tag| streamed.push(tag));
        if got != case.expected || streamed != got {
            failures.push(format!(
                "- {}\n    text:     {:?}\n    expected: {:?}\n    got:      {:?}",
                case.description, case.text, case.expected, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} twitter-text hashtag cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
