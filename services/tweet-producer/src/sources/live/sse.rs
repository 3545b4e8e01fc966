//! A Server-Sent Events parser over a chunked byte stream (the wire format of Mastodon's
//! streaming API over HTTP).
//!
//! Why hand-written: the format is a dozen lines of the WHATWG spec ("event stream
//! interpretation"), and the crates that implement it either own the HTTP request (so they
//! would hide status codes and headers that the back-off needs) or pull in a second HTTP
//! stack. What is implemented: lines end with `\n`, `\r\n` or `\r`; a line starting with `:`
//! is a comment (Mastodon's `:thump` heartbeat) and is ignored; `field: value` with one leading
//! space stripped from the value; `event` sets the type, `data` lines are joined with `\n`;
//! a blank line dispatches the event if it has data (type `message` when none was given);
//! `id` and `retry` are accepted and ignored (Mastodon's streams cannot be resumed anyway).
//!
//! Bounded: a line or an event larger than `max` bytes is reported as [`Sse::Malformed`] and
//! dropped, and so is an event that is not UTF-8; the parser carries on with the next event.

use super::lines::{Decoder, Line, LineSplitter};

/// What the parser produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    Event {
        event: String,
        data: String,
    },
    /// An event that could not be read (why).
    Malformed(&'static str),
}

/// Parses an event stream chunk by chunk.
#[derive(Debug)]
pub struct SseParser {
    lines: LineSplitter,
    max: usize,
    event: String,
    data: String,
    has_data: bool,
    /// Why the event being read is broken (reported at its end).
    broken: Option<&'static str>,
    scratch: Vec<Line>,
}

impl SseParser {
    /// A parser for events of at most `max` bytes.
    pub fn new(max: usize) -> SseParser {
        SseParser {
            lines: LineSplitter::new(max),
            max,
            event: String::new(),
            data: String::new(),
            has_data: false,
            broken: None,
            scratch: Vec::new(),
        }
    }

    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return; // a comment: the heartbeat
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    self.broken = Some("an event over the size limit");
                    return;
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry, unknown fields
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Sse>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let has_data = std::mem::replace(&mut self.has_data, false);
        if let Some(reason) = self.broken.take() {
            out.push(Sse::Malformed(reason));
        } else if has_data {
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            out.push(Sse::Event { event, data });
        }
    }
}

impl Decoder for SseParser {
    type Frame = Sse;

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Sse>) {
        let mut lines = std::mem::take(&mut self.scratch);
        self.lines.feed(chunk, &mut lines);
        for line in lines.drain(..) {
            match line {
                Line::TooLong => self.broken = Some("an event line over the size limit"),
                Line::Complete(bytes) if bytes.is_empty() => self.dispatch(out),
                Line::Complete(bytes) => match std::str::from_utf8(&bytes) {
                    Ok(line) => self.field(line),
                    Err(_) => self.broken = Some("an event that is not UTF-8"),
                },
            }
        }
        self.scratch = lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::live::lines::decode_all;

    fn parse(chunks: &[&[u8]], max: usize) -> Vec<Sse> {
        decode_all(SseParser::new(max), chunks)
    }

    fn event(event: &str, data: &str) -> Sse {
        Sse::Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_heartbeats_and_chunk_boundaries() {
        let stream: &[&[u8]] = &[
            b":thump\n",
            b"event: update\ndata: {\"id\":",
            b"\"1\"}\n",
            b"\n:thump\nevent: delete\r\ndata: 107214471804101576\r\n\r",
            b"\n",
            b"data:first\ndata: second\n\n",
            b"event: filters_changed\n\n",
            b"event:update\ndata:  two spaces\nid: 7\nretry: 10\n\n",
        ];
        assert_eq!(
            parse(stream, 1024),
            [
                event("update", "{\"id\":\"1\"}"),
                event("delete", "107214471804101576"),
                event("message", "first\nsecond"),
                event("update", " two spaces"),
            ],
            "an event without data is not dispatched"
        );
    }

    #[test]
    fn oversized_and_non_utf8_events_are_malformed_and_the_next_one_is_fine() {
        let long = format!("event: update\ndata: {}\n\n", "x".repeat(100));
        let stream: &[&[u8]] = &[
            long.as_bytes(),
            b"event: update\ndata: \xff\xfe\n\n",
            b"event: update\ndata: ok\n\n",
        ];
        assert_eq!(
            parse(stream, 64),
            [
                Sse::Malformed("an event line over the size limit"),
                Sse::Malformed("an event that is not UTF-8"),
                event("update", "ok"),
            ]
        );
        let many_lines = "data: 0123456789\n".repeat(10) + "\n";
        assert_eq!(
            parse(&[many_lines.as_bytes()], 64),
            [Sse::Malformed("an event over the size limit")]
        );
    }
}
