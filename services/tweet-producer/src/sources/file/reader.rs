//! The file source's reader: a JSON-lines file, one `RawPost` per line, classified line by
//! line ([`Line`]).
//!
//! Every line is checked with the same parser the aggregator uses
//! ([`trends_core::post::parse_post`]), so what is published is valid by construction. Valid
//! lines keep their bytes (minus the line ending) to be published as written. Blank lines are
//! [`Line::Blank`].
//!
//! Lines are bounded (`source.max_post_bytes`): a longer line is read through to its newline
//! and discarded as it goes, never buffered whole, and reported as [`Line::TooLong`]; one
//! multi-megabyte line (or a file without newlines) costs one malformed count, not the memory.
//!
//! The reader knows the byte offset of the next line ([`JsonLines::offset`]): that is the
//! file source's resume position, and a restart opens the file there
//! ([`JsonLines::resuming`]).

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
    /// A line longer than the limit (`length` bytes without its line end), discarded.
    TooLong { number: u64, length: u64 },
}

impl Line {
    /// The line's number (1-based).
    pub fn number(&self) -> u64 {
        match self {
            Line::Post { number, .. }
            | Line::Bad { number, .. }
            | Line::Blank { number }
            | Line::TooLong { number, .. } => *number,
        }
    }
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

/// Reads and classifies lines one at a time; memory use depends on neither the file's size nor
/// its longest line (at most `max` bytes plus the line end are buffered).
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    max: usize,
    /// The number of the last line read.
    number: u64,
    /// The byte offset of the next line.
    offset: u64,
    buffer: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> JsonLines<R> {
    /// Reads from the start of a file; lines over `max` bytes are [`Line::TooLong`].
    pub fn new(reader: R, max: usize) -> Self {
        Self::resuming(reader, max, 0, 1)
    }

    /// Reads from a reader already at byte `offset`, the start of line `line`.
    pub fn resuming(reader: R, max: usize, offset: u64, line: u64) -> Self {
        JsonLines {
            reader,
            max,
            number: line.saturating_sub(1),
            offset,
            buffer: Vec::with_capacity(4096.min(max + 2)),
        }
    }

    /// The byte offset of the next line: where a restart resumes.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next line, or `None` at the end of the file. Bytes are read as they are: a line
    /// that is not UTF-8 is a [`Line::Bad`], not an I/O error.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buffer.clear();
        // Room for the line and its `\r\n`; past that the line is too long and is dropped.
        let keep = self.max.saturating_add(2);
        let mut total = 0u64;
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                break;
            }
            let (take, ends) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if self.buffer.len() + take > keep {
                    too_long = true;
                    self.buffer = Vec::new();
                } else {
                    self.buffer.extend_from_slice(&available[..take]);
                }
            }
            total += take as u64;
            self.reader.consume(take);
            if ends {
                break;
            }
        }
        if total == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.offset += total;
        if too_long {
            // Without its line end, which is one or two of the bytes counted.
            return Ok(Some(Line::TooLong {
                number: self.number,
                length: total,
            }));
        }
        let line = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            return Ok(Some(Line::TooLong {
                number: self.number,
                length: line.len() as u64,
            }));
        }
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
        let mut lines = JsonLines::new(input.as_bytes(), 1024);
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

    #[tokio::test]
    async fn a_line_of_megabytes_is_discarded_without_buffering_it_and_replay_goes_on() {
        let max = 64 * 1024;
        let huge = format!(
            r#"{{"id":"huge","text":"{}","created_at":"2026-11-22T10:00:00.000Z"}}"#,
            "#tag ".repeat(1_000_000)
        );
        let input = format!("{GOOD}\n{huge}\r\n{GOOD}\n{}", "x".repeat(3 * 1024 * 1024));
        // A small read buffer, as a file would give: the line arrives in many pieces.
        let reader = tokio::io::BufReader::with_capacity(8192, input.as_bytes());
        let mut lines = JsonLines::new(reader, max);
        let mut offsets = Vec::new();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("in-memory read") {
            assert!(
                lines.buffer.capacity() <= 2 * (max + 2),
                "buffered {} bytes",
                lines.buffer.capacity()
            );
            offsets.push(lines.offset());
            seen.push(line);
        }
        assert_eq!(seen.len(), 4);
        assert!(matches!(&seen[0], Line::Post { number: 1, .. }));
        assert!(
            matches!(&seen[1], Line::TooLong { number: 2, length } if *length >= huge.len() as u64),
            "{:?}",
            seen[1]
        );
        assert!(matches!(&seen[2], Line::Post { number: 3, .. }));
        assert!(
            matches!(
                &seen[3],
                Line::TooLong {
                    number: 4,
                    length: 3_145_728
                }
            ),
            "a last line without a newline: {:?}",
            seen[3]
        );
        let first = GOOD.len() as u64 + 1;
        let second = first + huge.len() as u64 + 2;
        assert_eq!(
            offsets,
            [
                first,
                second,
                second + GOOD.len() as u64 + 1,
                input.len() as u64
            ],
            "each offset is the start of the next line"
        );
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_kept() {
        let line = format!(
            r#"{{"id":"a","text":"{}","created_at":"2026-11-22T10:00:00Z"}}"#,
            "y".repeat(100)
        );
        for (max, long) in [(line.len(), false), (line.len() - 1, true)] {
            let input = format!("{line}\r\n");
            let mut lines = JsonLines::new(input.as_bytes(), max);
            let read = lines.next_line().await.expect("read").expect("a line");
            assert_eq!(matches!(read, Line::TooLong { .. }), long, "max {max}");
            assert_eq!(read.number(), 1);
        }
    }

    #[tokio::test]
    async fn reading_resumes_at_an_offset_with_its_line_number() {
        let input = format!("{GOOD}\nnot json\n{GOOD}\n");
        let offset = GOOD.len() as u64 + 1;
        let mut lines = JsonLines::resuming(&input.as_bytes()[GOOD.len() + 1..], 1024, offset, 2);
        let bad = lines.next_line().await.expect("read").expect("line 2");
        assert!(matches!(bad, Line::Bad { number: 2, .. }));
        assert_eq!(lines.offset(), offset + 9);
        let post = lines.next_line().await.expect("read").expect("line 3");
        assert_eq!(post.number(), 3);
        assert!(lines.next_line().await.expect("read").is_none());
        assert_eq!(lines.offset(), input.len() as u64);
    }

    #[test]
    fn non_utf8_is_a_bad_line_not_an_error() {
        assert!(
            matches!(classify(7, b"\xff\xfe{}"), Line::Bad { number: 7, error } if error.code() == "not_utf8")
        );
    }
}
