//! Framing of chunked bodies ([`Decoder`]), and a bounded line splitter: X's stream is JSON
//! lines, and Server-Sent Events ([`super::sse`]) are lines too.
//!
//! Why bounded: a chunked body is an endless byte stream; a server (or a broken proxy) that
//! never sends a newline must not make the producer buffer without limit. A line longer than
//! the bound is reported once as [`Line::TooLong`] and its bytes are dropped up to the next
//! line end, so one bad line costs one malformed count, not the connection.

/// Splits a streaming body into frames: lines ([`LineSplitter`]) or Server-Sent Events
/// ([`super::sse::SseParser`]); read by [`super::http::Body`].
pub trait Decoder {
    type Frame;

    /// Feeds one chunk; the frames it completes are appended to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Self::Frame>);
}

/// Every frame of `chunks`, fed one after the other (tests of decoders).
#[cfg(test)]
pub fn decode_all<D: Decoder>(mut decoder: D, chunks: &[&[u8]]) -> Vec<D::Frame> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut out);
    }
    out
}

/// One line of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The bytes of a line, without its line end.
    Complete(Vec<u8>),
    /// A line longer than the bound: its bytes were dropped.
    TooLong,
}

/// Splits chunks into lines ended by `\n`, `\r\n` or `\r`, each at most `max` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    /// Dropping the rest of a line that was too long.
    discarding: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            buf: Vec::new(),
            after_cr: false,
            discarding: false,
        }
    }

    /// Adds `bytes` to the current line; `ends`: they end it.
    fn take(&mut self, bytes: &[u8], out: &mut Vec<Line>, ends: bool) {
        if !self.discarding {
            if self.buf.len() + bytes.len() > self.max {
                self.buf = Vec::new();
                self.discarding = true;
                out.push(Line::TooLong);
            } else {
                self.buf.extend_from_slice(bytes);
            }
        }
        if ends {
            if self.discarding {
                self.discarding = false;
            } else {
                out.push(Line::Complete(std::mem::take(&mut self.buf)));
            }
        }
    }
}

impl Decoder for LineSplitter {
    type Frame = Line;

    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.take(&chunk[..end], out, true);
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.take(chunk, out, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        decode_all(LineSplitter::new(max), chunks)
    }

    fn complete(s: &str) -> Line {
        Line::Complete(s.as_bytes().to_vec())
    }

    #[test]
    fn every_line_end_and_chunk_boundary() {
        assert_eq!(
            split(&[b"a\r\nb\nc\rd", b"e\r", b"\nf\r\n\r\n", b"g"], 100),
            [
                complete("a"),
                complete("b"),
                complete("c"),
                complete("de"),
                complete("f"),
                complete(""),
            ],
            "`g` has no line end yet"
        );
        assert_eq!(
            split(&[b"x\r", b"\r\n"], 100),
            [complete("x"), complete("")],
            "a CR, then a CRLF: two lines"
        );
    }

    #[test]
    fn a_line_over_the_bound_is_dropped_once_and_the_next_one_is_fine() {
        assert_eq!(
            split(&[b"12345", b"678", b"90\nok\n"], 6),
            [Line::TooLong, complete("ok")]
        );
        assert_eq!(split(&[b"123456\n"], 6), [complete("123456")]);
    }
}
