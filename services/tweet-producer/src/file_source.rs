//! The file source: posts from a JSON-lines file, one `RawPost` per line.
//!
//! Why a file source: replaying a captured or hand-written data set is how a bug seen in
//! production is reproduced, and how a demo shows known data. Every line is checked with the
//! same parser the aggregator uses ([`trends_core::post::parse_post`]), so what is published
//! is valid by construction. A bad line is reported with its line number and skipped: one
//! broken line in a million must not stop a replay, but it must not go unnoticed either.
//!
//! Valid lines are published byte for byte (minus the line ending), not re-serialized, so
//! fields the contract does not know are passed on untouched. Blank lines are ignored.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use trends_core::post::{ParsedPost, PostError, parse_post};

/// One line of the file, classified.
#[derive(Debug)]
pub enum Line {
    /// A valid post: its bytes (what is published) and the parsed form.
    Post {
        number: u64,
        bytes: Vec<u8>,
        parsed: ParsedPost,
    },
    /// A line that is not a valid post, and why.
    Bad { number: u64, error: PostError },
    /// An empty or whitespace-only line.
    Blank { number: u64 },
}

/// Classifies one line (without its line ending). Line 1 may start with a UTF-8 byte order
/// mark, which is dropped.
pub fn classify(number: u64, line: &[u8]) -> Line {
    let line = if number == 1 {
        line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
    } else {
        line
    };
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank { number };
    }
    match parse_post(line) {
        Ok(parsed) => Line::Post {
            number,
            bytes: line.trim_ascii_end().to_vec(),
            parsed,
        },
        Err(error) => Line::Bad { number, error },
    }
}

/// Reads and classifies lines one at a time; memory use does not depend on the file's size.
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    number: u64,
    buffer: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> JsonLines<R> {
    pub fn new(reader: R) -> Self {
        JsonLines {
            reader,
            number: 0,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// The next line, or `None` at the end of the file. Bytes are read as they are: a line
    /// that is not UTF-8 is a [`Line::Bad`], not an I/O error.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buffer.clear();
        let n = self.reader.read_until(b'\n', &mut self.buffer).await?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let line = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(Some(classify(self.number, line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"a","text":"hello #rust","created_at":"2026-11-22T10:00:00.000Z"}"#;

    #[tokio::test]
    async fn lines_are_numbered_classified_and_published_as_written() {
        let input = format!(
            "\u{FEFF}{GOOD}\r\nnot json\n\n{{\"id\":\"b\",\"text\":\"x\",\"created_at\":\"later\"}}\n{GOOD}"
        );
        let mut lines = JsonLines::new(input.as_bytes());
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("in-memory read") {
            seen.push(line);
        }
        assert_eq!(seen.len(), 5);
        match &seen[0] {
            Line::Post {
                number,
                bytes,
                parsed,
            } => {
                assert_eq!(*number, 1);
                assert_eq!(bytes.as_slice(), GOOD.as_bytes(), "no BOM, no CR");
                assert_eq!(parsed.post.id, "a");
            }
            other => panic!("line 1: {other:?}"),
        }
        assert!(
            matches!(&seen[1], Line::Bad { number: 2, error } if error.code() == "invalid_json")
        );
        assert!(matches!(&seen[2], Line::Blank { number: 3 }));
        assert!(
            matches!(&seen[3], Line::Bad { number: 4, error } if error.code() == "bad_timestamp")
        );
        assert!(
            matches!(&seen[4], Line::Post { number: 5, .. }),
            "no final newline needed"
        );
    }

    #[test]
    fn non_utf8_is_a_bad_line_not_an_error() {
        assert!(
            matches!(classify(7, b"\xff\xfe{}"), Line::Bad { number: 7, error } if error.code() == "not_utf8")
        );
    }
}
