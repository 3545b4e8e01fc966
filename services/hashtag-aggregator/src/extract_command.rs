//! `hashtag-aggregator extract`: shows what the extractor does.
//!
//! Reads JSON strings, one per line, from stdin, and writes for each line a JSON array of the
//! hashtags found, as written in the text, without `#`, in order of appearance:
//!
//! ```text
//! $ echo '"a #Rust and #日本語 post"' | hashtag-aggregator extract
//! ["Rust","日本語"]
//! ```
//!
//! A line that is not a JSON string gets `null` on stdout (so output lines stay aligned with
//! input lines) and a message with its line number on stderr; the command then exits with 1.
//! Blank lines are echoed as blank lines.

use std::io::{BufRead, Write};

use trends_core::hashtag::extract_hashtags;

/// Runs the filter; returns the number of lines that were not JSON strings.
pub fn run(
    input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
) -> std::io::Result<u64> {
    let mut bad = 0;
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            writeln!(output)?;
            continue;
        }
        match serde_json::from_str::<String>(&line) {
            Ok(text) => {
                let tags = extract_hashtags(&text);
                serde_json::to_writer(&mut output, &tags)?;
                writeln!(output)?;
            }
            Err(e) => {
                bad += 1;
                writeln!(output, "null")?;
                writeln!(errors, "line {}: not a JSON string: {e}", index + 1)?;
            }
        }
    }
    output.flush()?;
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(input: &str) -> (String, String, u64) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let bad = run(input.as_bytes(), &mut out, &mut err).expect("in-memory I/O");
        (
            String::from_utf8(out).expect("utf8"),
            String::from_utf8(err).expect("utf8"),
            bad,
        )
    }

    #[test]
    fn documented_example() {
        let (out, err, bad) = extract("\"a #Rust and #日本語 post\"\n");
        assert_eq!(
            (out.as_str(), err.as_str(), bad),
            ("[\"Rust\",\"日本語\"]\n", "", 0)
        );
    }

    #[test]
    fn one_output_line_per_input_line_and_bad_lines_are_reported() {
        let (out, err, bad) = extract("\"#a\"\nnot json\n\n\"no tags\"\n42\n");
        assert_eq!(out, "[\"a\"]\nnull\n\n[]\nnull\n");
        assert_eq!(bad, 2);
        assert!(err.contains("line 2") && err.contains("line 5"), "{err}");
    }
}
