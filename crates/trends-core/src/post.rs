//! The raw post contract: the JSON value of every record on the `tweets` topic.
//!
//! ```json
//! {"id": "1850000000000000001", "text": "Loving #RustLang and #kafka",
//!  "created_at": "2026-11-22T10:00:00.123Z", "author_id": "42", "lang": "en",
//!  "source": "synthetic", "hashtags": ["RustLang", "kafka"]}
//! ```
//!
//! `id`, `text` and `created_at` (RFC 3339) are required; the rest is optional and unknown fields
//! are ignored, so any Kafka client can feed the pipeline. Parsing is strict about what it needs
//! and says precisely what is wrong: the reason ends up in a dead-letter header, where a human
//! reads it.
//!
//! **Two parsers, one contract.** [`parse_post`] builds an owned [`RawPost`] with serde_json; it
//! defines what a valid post is and what each error says. [`parse_post_ref`] is the hot path of
//! the aggregator: it returns a [`ParsedPostRef`] whose strings borrow from the record value
//! (a string is copied only when it holds a JSON escape, and the supplied `hashtags` are not
//! copied at all but decoded one by one as they are read), and it skips unknown fields without
//! allocating. Parsing JSON into owned strings was 70% of the aggregator's per-record work
//! (766 of 1,075 ns, seven allocations a post); see `benches/extract.rs` for the figures.
//!
//! Why not a second contract: the fast parser is *conservative*. It accepts only what it is
//! sure serde_json accepts, with the same values, and hands everything else (every invalid
//! record, and the rare valid oddity it does not handle: an escaped key, a post written as a
//! JSON array, unknown values nested more than 128 deep) to [`parse_post`], whose answer it
//! returns. So both functions give the same `Ok` or the same [`PostError`], reason included, for
//! every input: a property test and the fuzz targets check it on arbitrary bytes. A dead
//! letter costs a second parse; valid posts, almost all of the stream, pay for one fast pass.
//!
//! Why a reader of our own rather than a SIMD JSON library: measured on-CPU on the bench
//! corpus (474-byte posts in seven scripts; 2026-12-03), per post: `parse_post` 800 ns,
//! serde_json into borrowed `Cow` fields 747 ns, sonic-rs into the same 373 ns,
//! [`parse_post_ref`] 216 ns. And a library's errors and corner cases are its own: keeping
//! `parse_post`'s every reason would still need serde_json as the judge, and agreement with
//! it could only be hoped for, where this reader's subset is checked rule by rule (below).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// A social post as published on the raw-posts topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPost {
    /// Unique id of the post; also the Kafka record key.
    pub id: String,
    /// The post's text, where hashtags are extracted from when `hashtags` is absent.
    pub text: String,
    /// Creation time, RFC 3339 (e.g. `2026-11-22T10:00:00.123Z`). Event time for the windows.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Hashtags a source already extracted (without `#`). When present they are used instead of
    /// extracting from `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashtags: Option<Vec<String>>,
}

/// A post that passed validation, with its event time resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPost {
    pub post: RawPost,
    /// `created_at` as milliseconds since the epoch.
    pub event_time: EpochMillis,
}

/// Longest reason a [`PostError`] gives, in bytes. Reasons go into a dead-letter header and a
/// log line; a record can carry megabytes of garbage, and its reason must not.
pub const MAX_REASON_BYTES: usize = 512;

/// How much of an offending value (a `created_at` that is not a timestamp) a reason quotes.
const PREVIEW_BYTES: usize = 64;

/// Why a record is not a valid post. The `Display` text is the dead-letter reason; it is at
/// most [`MAX_REASON_BYTES`] bytes long, however large the record (quoted values are cut).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("value is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error("value is not a valid post: {0}")]
    InvalidJson(String),
    /// Holds a preview of the value, at most 64 bytes and an ellipsis.
    #[error("created_at is not an RFC 3339 timestamp: {0:?}")]
    BadTimestamp(String),
    #[error("record has no value")]
    Empty,
    #[error(
        "created_at {created_at} is more than {max_skew_secs} s ahead of the record's timestamp {ingest_time}"
    )]
    FutureTimestamp {
        created_at: String,
        ingest_time: String,
        max_skew_secs: i64,
    },
}

impl PostError {
    /// A short machine-readable code, used as the `dlq.error.code` header.
    pub fn code(&self) -> &'static str {
        match self {
            PostError::NotUtf8(_) => "not_utf8",
            PostError::InvalidJson(_) => "invalid_json",
            PostError::BadTimestamp(_) => "bad_timestamp",
            PostError::Empty => "empty",
            PostError::FutureTimestamp { .. } => "future_timestamp",
        }
    }
}

/// A detail of a reason, cut so that the whole reason stays within [`MAX_REASON_BYTES`].
fn detail(text: String) -> String {
    // The longest fixed part of a reason ("value is not a valid post: ") is under 64 bytes.
    match crate::truncate_utf8(&text, MAX_REASON_BYTES - 64) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

fn bad_timestamp(created_at: &str) -> PostError {
    PostError::BadTimestamp(crate::truncate_utf8(created_at, PREVIEW_BYTES).into_owned())
}

/// Parses a record value into a post, or says why it is not one.
pub fn parse_post(bytes: &[u8]) -> Result<ParsedPost, PostError> {
    if bytes.is_empty() {
        return Err(PostError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| PostError::NotUtf8(detail(e.to_string())))?;
    let post: RawPost =
        serde_json::from_str(text).map_err(|e| PostError::InvalidJson(detail(e.to_string())))?;
    let event_time =
        parse_rfc3339_millis(&post.created_at).ok_or_else(|| bad_timestamp(&post.created_at))?;
    Ok(ParsedPost { post, event_time })
}

/// A valid post whose strings borrow from the record value it was parsed from
/// ([`parse_post_ref`]). A string holding a JSON escape (`\n`, `\"`, `\u00e9`) is decoded
/// into an owned copy; every other string is a slice of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPostRef<'a> {
    pub id: Cow<'a, str>,
    pub text: Cow<'a, str>,
    pub created_at: Cow<'a, str>,
    pub author_id: Option<Cow<'a, str>>,
    pub lang: Option<Cow<'a, str>>,
    pub source: Option<Cow<'a, str>>,
    /// The supplied `hashtags`, decoded lazily as they are iterated.
    pub hashtags: Option<SuppliedHashtags<'a>>,
    /// `created_at` as milliseconds since the epoch.
    pub event_time: EpochMillis,
}

impl ParsedPostRef<'_> {
    /// The time the post counts at, given its ingest time: [`event_time_at_ingest`] for a
    /// borrowed post.
    pub fn event_time_at_ingest(
        &self,
        ingest: EpochMillis,
        max_skew_ms: i64,
    ) -> Result<EpochMillis, PostError> {
        at_ingest(self.event_time, &self.created_at, ingest, max_skew_ms)
    }

    /// The same post with owned strings: what [`parse_post`] returns for the same record.
    pub fn into_owned(self) -> ParsedPost {
        ParsedPost {
            post: RawPost {
                id: self.id.into_owned(),
                text: self.text.into_owned(),
                created_at: self.created_at.into_owned(),
                author_id: self.author_id.map(Cow::into_owned),
                lang: self.lang.map(Cow::into_owned),
                source: self.source.map(Cow::into_owned),
                hashtags: self
                    .hashtags
                    .map(|tags| tags.iter().map(Cow::into_owned).collect()),
            },
            event_time: self.event_time,
        }
    }
}

impl From<ParsedPost> for ParsedPostRef<'static> {
    fn from(parsed: ParsedPost) -> Self {
        let RawPost {
            id,
            text,
            created_at,
            author_id,
            lang,
            source,
            hashtags,
        } = parsed.post;
        ParsedPostRef {
            id: Cow::Owned(id),
            text: Cow::Owned(text),
            created_at: Cow::Owned(created_at),
            author_id: author_id.map(Cow::Owned),
            lang: lang.map(Cow::Owned),
            source: source.map(Cow::Owned),
            hashtags: hashtags.map(|tags| SuppliedHashtags {
                repr: HashtagsRepr::Owned(tags),
            }),
            event_time: parsed.event_time,
        }
    }
}

/// The `hashtags` array of a post. Parsed from a record it is the validated JSON array itself,
/// and [`iter`](Self::iter) decodes one string at a time (borrowed unless it holds an escape):
/// no allocation for the list, whatever its length.
#[derive(Debug, Clone)]
pub struct SuppliedHashtags<'a> {
    repr: HashtagsRepr<'a>,
}

#[derive(Debug, Clone)]
enum HashtagsRepr<'a> {
    /// What lies between the brackets of a JSON array of `len` strings that [`fast`] checked:
    /// every string is terminated and every escape decodes.
    Json {
        items: &'a str,
        len: usize,
    },
    Owned(Vec<String>),
}

impl<'a> SuppliedHashtags<'a> {
    /// How many strings the array holds.
    pub fn len(&self) -> usize {
        match &self.repr {
            HashtagsRepr::Json { len, .. } => *len,
            HashtagsRepr::Owned(tags) => tags.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings in order, JSON escapes decoded.
    pub fn iter(&self) -> SuppliedHashtagsIter<'_> {
        SuppliedHashtagsIter {
            repr: match &self.repr {
                HashtagsRepr::Json { items, .. } => IterRepr::Json { rest: items },
                HashtagsRepr::Owned(tags) => IterRepr::Owned(tags.iter()),
            },
        }
    }
}

impl PartialEq for SuppliedHashtags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SuppliedHashtags<'_> {}

/// Iterator over [`SuppliedHashtags`].
#[derive(Debug, Clone)]
pub struct SuppliedHashtagsIter<'s> {
    repr: IterRepr<'s>,
}

#[derive(Debug, Clone)]
enum IterRepr<'s> {
    Json { rest: &'s str },
    Owned(std::slice::Iter<'s, String>),
}

impl<'s> Iterator for SuppliedHashtagsIter<'s> {
    type Item = Cow<'s, str>;

    fn next(&mut self) -> Option<Cow<'s, str>> {
        match &mut self.repr {
            IterRepr::Owned(tags) => tags.next().map(|t| Cow::Borrowed(t.as_str())),
            IterRepr::Json { rest } => {
                // The array was validated: each item is `"…"`, separated by commas and
                // white space, and every escape decodes.
                let start = rest.find('"')? + 1;
                let content = rest.get(start..)?;
                let end = fast::string_end(content.as_bytes())?;
                let raw = content.get(..end)?;
                *rest = content.get(end + 1..)?;
                Some(if raw.contains('\\') {
                    // Cannot fail: the parser decoded it once already.
                    Cow::Owned(fast::unescape(raw).unwrap_or_default())
                } else {
                    Cow::Borrowed(raw)
                })
            }
        }
    }
}

/// Parses a record value into a post whose strings borrow from it, or says why it is not one.
///
/// The same contract as [`parse_post`]: for every input the same `Ok` (as
/// [`ParsedPostRef::into_owned`]) or the very same [`PostError`]. One pass over the record, no
/// allocation for a post without escapes (see the [module docs](self) for how).
pub fn parse_post_ref(bytes: &[u8]) -> Result<ParsedPostRef<'_>, PostError> {
    if bytes.is_empty() {
        return Err(PostError::Empty);
    }
    // SIMD validation: on multilingual posts std's `from_utf8` was half the parse. An invalid
    // record goes to `parse_post`, whose error says where (std's message).
    let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
        return parse_post(bytes).map(ParsedPostRef::from);
    };
    let Some(fields) = fast::parse(text) else {
        return parse_post(bytes).map(ParsedPostRef::from);
    };
    // serde_json accepts this record with these very values, so what `parse_post` would do
    // next is check `created_at`.
    let event_time = parse_rfc3339_millis(&fields.created_at)
        .ok_or_else(|| bad_timestamp(&fields.created_at))?;
    Ok(ParsedPostRef {
        id: fields.id,
        text: fields.text,
        created_at: fields.created_at,
        author_id: fields.author_id,
        lang: fields.lang,
        source: fields.source,
        hashtags: fields.hashtags.map(|(items, len)| SuppliedHashtags {
            repr: HashtagsRepr::Json { items, len },
        }),
        event_time,
    })
}

/// The fast, borrowing JSON reader of [`parse_post_ref`]: a strict subset of what serde_json
/// accepts for a [`RawPost`]. `None` means "not sure", never "invalid": the caller then asks
/// serde_json. The rules it mirrors, from serde_json 1.0's deserializer (`de.rs`, `read.rs`):
///
/// - white space is space, tab, line feed and carriage return; before and after the object,
///   around every token;
/// - the post is an object (serde_json also takes a `[…]` of the fields in order: not here);
///   keys are strings, and a key with an escape is left to serde_json (it matches field names
///   after decoding); a known field twice is an error (serde's derive), so not here either;
/// - `id`, `text`, `created_at` are strings; `author_id`, `lang`, `source` strings or `null`;
///   `hashtags` an array of strings or `null`;
/// - strings: no raw control character (below U+0020); escapes `\" \\ \/ \b \f \n \r \t`
///   and `\uXXXX`. In a string that is decoded (a known field) a `\u` surrogate must be a
///   leading one followed by `\u` and a trailing one; in a skipped string any four hex digits
///   pass;
/// - an unknown field's value is skipped with the same grammar (numbers as
///   `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, literals `null`, `true`, `false`, no
///   trailing commas); serde_json skips any depth, this reader up to 128 levels;
/// - nothing but white space after the object.
mod fast {
    use std::borrow::Cow;

    /// The fields of a post, as serde_json would deserialize them.
    pub(super) struct Fields<'a> {
        pub id: Cow<'a, str>,
        pub text: Cow<'a, str>,
        pub created_at: Cow<'a, str>,
        pub author_id: Option<Cow<'a, str>>,
        pub lang: Option<Cow<'a, str>>,
        pub source: Option<Cow<'a, str>>,
        /// The text between the brackets of the `hashtags` array, and its length.
        pub hashtags: Option<(&'a str, usize)>,
    }

    /// Deepest nesting of an unknown field's value this reader skips (a bit stack).
    const MAX_SKIP_DEPTH: u32 = 128;

    /// Index of the first `"`, `\` or control byte in `bytes`, or its length.
    ///
    /// Most strings of a post are short (keys, ids, times, languages): their first 32 bytes
    /// are scanned inline, eight at a time; a call to `memchr2` costs more than that. A long
    /// string (the text) goes on with `memchr2` for the quote and backslash, then one
    /// vectorized pass for control bytes over the span before them.
    #[inline(always)]
    pub(super) fn find_special(bytes: &[u8]) -> usize {
        const WORDS_INLINE: usize = 4;
        let mut at = 0;
        for _ in 0..WORDS_INLINE {
            let Some(word) = bytes
                .get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
            else {
                let rest = bytes.get(at..).unwrap_or_default();
                return at + rest.iter().position(|&b| special(b)).unwrap_or(rest.len());
            };
            let found = special_bytes(u64::from_le_bytes(word));
            if found != 0 {
                return at + (found.trailing_zeros() / 8) as usize;
            }
            at += 8;
        }
        let rest = bytes.get(at..).unwrap_or_default();
        let end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
        let span = rest.get(..end).unwrap_or_default();
        if span.iter().fold(0xFF, |m, &b| m.min(b)) < 0x20 {
            return at + span.iter().position(|&b| b < 0x20).unwrap_or(end);
        }
        at + end
    }

    #[inline(always)]
    fn special(b: u8) -> bool {
        b == b'"' || b == b'\\' || b < 0x20
    }

    /// The high bit of each byte of `word` (little-endian) that may be `"`, `\` or below
    /// 0x20; the lowest one set is exact (the classic "has a zero byte" trick: a borrow only
    /// ever flags bytes above a true match).
    #[inline(always)]
    fn special_bytes(word: u64) -> u64 {
        const ONES: u64 = u64::MAX / 255;
        let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
        let quote = zero_in(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        (quote | backslash | control) & (ONES << 7)
    }

    /// In the content of a string already validated, the index of its closing quote.
    pub(super) fn string_end(bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        loop {
            i += find_special(bytes.get(i..)?);
            match bytes.get(i)? {
                b'"' => return Some(i),
                // The escaped byte is never the closing quote; `\uXXXX`'s digits are not
                // special.
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    }

    fn hex4(digits: &[u8]) -> Option<u32> {
        let mut n = 0;
        for &d in digits.get(..4)? {
            n = n << 4 | char::from(d).to_digit(16)?;
        }
        Some(n)
    }

    /// Decodes the content of a JSON string that holds escapes, as serde_json does for a
    /// `String`; `None` where serde_json fails (a lone or unpaired surrogate).
    pub(super) fn unescape(raw: &str) -> Option<String> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('\\') {
            out.push_str(rest.get(..at)?);
            let b = rest.as_bytes();
            let (ch, used) = match b.get(at + 1)? {
                b'"' => ('"', 2),
                b'\\' => ('\\', 2),
                b'/' => ('/', 2),
                b'b' => ('\u{8}', 2),
                b'f' => ('\u{c}', 2),
                b'n' => ('\n', 2),
                b'r' => ('\r', 2),
                b't' => ('\t', 2),
                b'u' => {
                    let n = hex4(b.get(at + 2..)?)?;
                    match n {
                        0xD800..=0xDBFF => {
                            if b.get(at + 6..at + 8)? != b"\\u" {
                                return None;
                            }
                            let low = hex4(b.get(at + 8..)?)?;
                            if !(0xDC00..=0xDFFF).contains(&low) {
                                return None;
                            }
                            let c = 0x1_0000 + ((n - 0xD800) << 10) + (low - 0xDC00);
                            (char::from_u32(c)?, 12)
                        }
                        // A trailing surrogate first: serde_json refuses it.
                        0xDC00..=0xDFFF => return None,
                        _ => (char::from_u32(n)?, 6),
                    }
                }
                _ => return None,
            };
            out.push(ch);
            rest = rest.get(at + used..)?;
        }
        out.push_str(rest);
        Some(out)
    }

    struct Reader<'a> {
        s: &'a str,
        i: usize,
    }

    impl<'a> Reader<'a> {
        #[inline]
        fn peek(&self) -> Option<u8> {
            self.s.as_bytes().get(self.i).copied()
        }

        #[inline]
        fn ws(&mut self) {
            while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
                self.i += 1;
            }
        }

        #[inline]
        fn eat(&mut self, byte: u8) -> Option<()> {
            (self.peek() == Some(byte)).then(|| self.i += 1)
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            let rest = self.s.as_bytes().get(self.i..)?;
            rest.starts_with(word).then(|| self.i += word.len())
        }

        /// After an opening quote: the string's raw content and whether it holds escapes;
        /// checks what serde_json checks of a string it skips (no control character, escape
        /// letters, four hex digits after `\u`).
        fn string(&mut self) -> Option<(&'a str, bool)> {
            let bytes = self.s.as_bytes();
            let start = self.i;
            let mut escaped = false;
            loop {
                self.i += find_special(bytes.get(self.i..)?);
                match bytes.get(self.i)? {
                    b'"' => {
                        let content = self.s.get(start..self.i)?;
                        self.i += 1;
                        return Some((content, escaped));
                    }
                    b'\\' => {
                        escaped = true;
                        match bytes.get(self.i + 1)? {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                            b'u' => {
                                hex4(bytes.get(self.i + 2..)?)?;
                                self.i += 6;
                            }
                            _ => return None,
                        }
                    }
                    _ => return None,
                }
            }
        }

        /// A string value decoded, borrowed unless it holds escapes.
        fn string_value(&mut self) -> Option<Cow<'a, str>> {
            self.eat(b'"')?;
            let (raw, escaped) = self.string()?;
            if escaped {
                unescape(raw).map(Cow::Owned)
            } else {
                Some(Cow::Borrowed(raw))
            }
        }

        /// `null` or a string.
        fn optional_string(&mut self) -> Option<Option<Cow<'a, str>>> {
            if self.peek() == Some(b'n') {
                self.literal(b"null")?;
                return Some(None);
            }
            self.string_value().map(Some)
        }

        /// `null` or an array of strings: the text between its brackets and its length.
        fn optional_strings(&mut self) -> Option<Option<(&'a str, usize)>> {
            if self.peek() == Some(b'n') {
                self.literal(b"null")?;
                return Some(None);
            }
            self.eat(b'[')?;
            let start = self.i;
            self.ws();
            let mut len = 0;
            if self.peek() != Some(b']') {
                loop {
                    self.eat(b'"')?;
                    let (raw, escaped) = self.string()?;
                    if escaped {
                        unescape(raw)?;
                    }
                    len += 1;
                    self.ws();
                    if self.eat(b',').is_none() {
                        break;
                    }
                    self.ws();
                }
            }
            let items = self.s.get(start..self.i)?;
            self.eat(b']')?;
            Some(Some((items, len)))
        }

        fn number(&mut self) -> Option<()> {
            let digits = |r: &mut Self| {
                let from = r.i;
                while let Some(b'0'..=b'9') = r.peek() {
                    r.i += 1;
                }
                r.i > from
            };
            let _ = self.eat(b'-');
            match self.peek()? {
                b'0' => {
                    self.i += 1;
                    if let Some(b'0'..=b'9') = self.peek() {
                        return None;
                    }
                }
                b'1'..=b'9' => {
                    digits(self);
                }
                _ => return None,
            }
            if self.eat(b'.').is_some() && !digits(self) {
                return None;
            }
            if let Some(b'e' | b'E') = self.peek() {
                self.i += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.i += 1;
                }
                if !digits(self) {
                    return None;
                }
            }
            Some(())
        }

        /// A key and its colon, in an object being skipped.
        fn skipped_key(&mut self) -> Option<()> {
            self.eat(b'"')?;
            self.string()?;
            self.ws();
            self.eat(b':')?;
            Some(())
        }

        /// Skips any JSON value, allocating nothing: the open containers are a bit stack
        /// (1 = object).
        fn skip_value(&mut self) -> Option<()> {
            let mut stack: u128 = 0;
            let mut depth = 0u32;
            loop {
                // A value.
                self.ws();
                match self.peek()? {
                    b'"' => {
                        self.i += 1;
                        self.string()?;
                    }
                    b'n' => self.literal(b"null")?,
                    b't' => self.literal(b"true")?,
                    b'f' => self.literal(b"false")?,
                    b'-' | b'0'..=b'9' => self.number()?,
                    open @ (b'[' | b'{') => {
                        if depth == MAX_SKIP_DEPTH {
                            return None;
                        }
                        let object = open == b'{';
                        self.i += 1;
                        self.ws();
                        if self.eat(if object { b'}' } else { b']' }).is_none() {
                            stack = stack << 1 | u128::from(object);
                            depth += 1;
                            if object {
                                self.skipped_key()?;
                            }
                            continue;
                        }
                    }
                    _ => return None,
                }
                // After a value: close containers until a comma opens the next value.
                loop {
                    if depth == 0 {
                        return Some(());
                    }
                    self.ws();
                    let object = stack & 1 == 1;
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            if object {
                                self.ws();
                                self.skipped_key()?;
                            }
                            break;
                        }
                        b'}' if object => {}
                        b']' if !object => {}
                        _ => return None,
                    }
                    self.i += 1;
                    stack >>= 1;
                    depth -= 1;
                }
            }
        }
    }

    /// Sets a field seen for the first time; a second time is serde's "duplicate field".
    fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        Some(())
    }

    /// The post's fields if serde_json certainly accepts `s` as a [`super::RawPost`] and
    /// would give exactly these values; `None` when not sure.
    pub(super) fn parse(s: &str) -> Option<Fields<'_>> {
        let mut r = Reader { s, i: 0 };
        let mut id = None;
        let mut text = None;
        let mut created_at = None;
        let mut author_id = None;
        let mut lang = None;
        let mut source = None;
        let mut hashtags = None;
        r.ws();
        r.eat(b'{')?;
        r.ws();
        if r.eat(b'}').is_none() {
            loop {
                r.eat(b'"')?;
                let (key, escaped) = r.string()?;
                if escaped {
                    return None;
                }
                r.ws();
                r.eat(b':')?;
                r.ws();
                match key {
                    "id" => once(&mut id, r.string_value()?)?,
                    "text" => once(&mut text, r.string_value()?)?,
                    "created_at" => once(&mut created_at, r.string_value()?)?,
                    "author_id" => once(&mut author_id, r.optional_string()?)?,
                    "lang" => once(&mut lang, r.optional_string()?)?,
                    "source" => once(&mut source, r.optional_string()?)?,
                    "hashtags" => once(&mut hashtags, r.optional_strings()?)?,
                    _ => r.skip_value()?,
                }
                r.ws();
                match r.peek()? {
                    b',' => {
                        r.i += 1;
                        r.ws();
                    }
                    b'}' => {
                        r.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        r.ws();
        if r.i != s.len() {
            return None;
        }
        Some(Fields {
            id: id?,
            text: text?,
            created_at: created_at?,
            author_id: author_id.flatten(),
            lang: lang.flatten(),
            source: source.flatten(),
            hashtags: hashtags.flatten(),
        })
    }
}

/// The time a post counts at, given when it reached Kafka (`ingest`: the record's timestamp;
/// see the aggregator for which one), or why it is refused.
///
/// **Event time never runs ahead of ingest time.** A post cannot have been written after it
/// was stored, so a `created_at` later than `ingest` (a client's fast clock, or a post dated
/// ahead on purpose: Bluesky lets clients set `createdAt` freely) counts at `ingest`. One such
/// post can therefore not drag the watermark, and every window ending at it, into the
/// future. A `created_at` more than `max_skew_ms` ahead of `ingest` is refused outright
/// ([`PostError::FutureTimestamp`], dead-lettered): that is no clock drift but a bad date.
pub fn event_time_at_ingest(
    post: &ParsedPost,
    ingest: EpochMillis,
    max_skew_ms: i64,
) -> Result<EpochMillis, PostError> {
    at_ingest(post.event_time, &post.post.created_at, ingest, max_skew_ms)
}

fn at_ingest(
    event_time: EpochMillis,
    created_at: &str,
    ingest: EpochMillis,
    max_skew_ms: i64,
) -> Result<EpochMillis, PostError> {
    if event_time > ingest.saturating_add(max_skew_ms) {
        return Err(PostError::FutureTimestamp {
            created_at: crate::truncate_utf8(created_at, PREVIEW_BYTES).into_owned(),
            ingest_time: crate::format_rfc3339_millis(ingest),
            max_skew_secs: max_skew_ms / 1000,
        });
    }
    Ok(event_time.min(ingest))
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
///
/// What chrono's `DateTime::parse_from_rfc3339` accepts, with its result. The common shape,
/// `YYYY-MM-DDTHH:MM:SS[.fraction]` and `Z` or `±HH:MM`, is read by [`rfc3339_millis_fast`]
/// (a few nanoseconds, where chrono took ~25 of a post's ~600); anything else (a leap
/// second, more than nine fraction digits, an error) goes to chrono, so the two cannot differ
/// in what they accept.
pub fn parse_rfc3339_millis(s: &str) -> Option<EpochMillis> {
    rfc3339_millis_fast(s).or_else(|| rfc3339_millis_chrono(s))
}

fn rfc3339_millis_chrono(s: &str) -> Option<EpochMillis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.d{1,9}](Z|z|±HH:MM)`, a valid date, hour ≤ 23, minute and
/// second ≤ 59, offset hour ≤ 23 and minute ≤ 59, as epoch milliseconds (the fraction
/// truncated, as chrono's `timestamp_millis`); `None` when not of that shape (chrono then
/// decides). `tests::fast_rfc3339_agrees_with_chrono` checks it against chrono.
fn rfc3339_millis_fast(s: &str) -> Option<EpochMillis> {
    let b = s.as_bytes();
    let digit = |i: usize| -> Option<i64> {
        let d = b.get(i)?.wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let (month, day) = (two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|d| d.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        for k in 0..3 {
            millis = millis * 10 + if k < digits { digit(i + k)? } else { 0 };
        }
        i += digits;
    }
    let offset_minutes = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (two(i + 1)?, two(i + 4)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

#[inline]
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
#[inline]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let json = r#"{"id": "1850000000000000001", "text": "Loving #RustLang and #kafka", "created_at": "2026-11-22T10:00:00.123Z", "author_id": "42", "lang": "en", "source": "synthetic", "hashtags": ["RustLang", "kafka"]}"#;
        let parsed = parse_post(json.as_bytes()).expect("valid");
        assert_eq!(parsed.post.id, "1850000000000000001");
        assert_eq!(parsed.event_time, 1_795_341_600_123);
        assert_eq!(
            parsed.post.hashtags.as_deref(),
            Some(&["RustLang".to_string(), "kafka".to_string()][..])
        );
    }

    #[test]
    fn optional_fields_may_be_missing_and_unknown_fields_are_ignored() {
        let json =
            r#"{"id":"1","text":"x","created_at":"2026-11-22T10:00:00+01:00","extra":{"a":1}}"#;
        let parsed = parse_post(json.as_bytes()).expect("valid");
        assert_eq!(parsed.event_time, 1_795_338_000_000);
        assert_eq!(parsed.post.lang, None);
    }

    #[test]
    fn event_time_never_runs_ahead_of_ingest_time() {
        let ingest = 1_795_341_600_000; // 10:00:00
        let at = |created_at: &str| {
            let json = format!(r#"{{"id":"1","text":"a","created_at":"{created_at}"}}"#);
            parse_post(json.as_bytes()).expect("valid")
        };
        // Earlier than ingest: its own time.
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T09:59:00Z"), ingest, 300_000),
            Ok(ingest - 60_000)
        );
        // Ahead within the skew: counted at ingest time, not later.
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T10:04:50Z"), ingest, 300_000),
            Ok(ingest)
        );
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T10:05:00Z"), ingest, 300_000),
            Ok(ingest)
        );
        // Beyond it: refused, with both times in the reason.
        let err = event_time_at_ingest(&at("2026-11-22T10:05:00Z"), ingest, 299_999)
            .expect_err("too far ahead");
        assert_eq!(err.code(), "future_timestamp");
        let reason = err.to_string();
        assert!(reason.contains("2026-11-22T10:05:00Z"), "{reason}");
        assert!(reason.contains("2026-11-22T10:00:00.000Z"), "{reason}");
    }

    #[test]
    fn reasons_stay_short_whatever_the_record() {
        let huge = "9".repeat(600_000);
        let bad_time = format!(r#"{{"id":"1","text":"a","created_at":"{huge}"}}"#);
        let mistyped = format!(r#"{{"id":1,"text":"{huge}","created_at":"x"}}"#);
        let unknown_type = format!(r#"{{"id":"1","text":1,"created_at":"{huge}"}}"#);
        let wrong_string =
            format!(r#"{{"id":"1","text":"a","created_at":"x","hashtags":"{huge}"}}"#);
        for input in [bad_time, mistyped, unknown_type, wrong_string] {
            let err = parse_post(input.as_bytes()).expect_err("invalid");
            assert!(
                err.to_string().len() <= MAX_REASON_BYTES,
                "{} bytes: {}",
                err.to_string().len(),
                crate::truncate_utf8(&err.to_string(), 200)
            );
        }
        let mut not_utf8 = huge.into_bytes();
        not_utf8.push(0xff);
        let err = parse_post(&not_utf8).expect_err("invalid");
        assert!(err.to_string().len() <= MAX_REASON_BYTES, "{err}");
    }

    #[test]
    fn each_kind_of_malformed_record_has_its_reason() {
        assert_eq!(parse_post(b""), Err(PostError::Empty));
        assert_eq!(
            parse_post(b"\xff\xfe").map_err(|e| e.code()),
            Err("not_utf8")
        );
        assert_eq!(
            parse_post(b"not json").map_err(|e| e.code()),
            Err("invalid_json")
        );
        let missing = parse_post(br#"{"id":"1","created_at":"2026-11-22T10:00:00Z"}"#);
        let err = missing.expect_err("text is required");
        assert!(err.to_string().contains("missing field `text`"), "{err}");
        let mistyped = parse_post(br#"{"id":1,"text":"a","created_at":"2026-11-22T10:00:00Z"}"#);
        assert_eq!(mistyped.map_err(|e| e.code()), Err("invalid_json"));
        let bad_time = parse_post(br#"{"id":"1","text":"a","created_at":"yesterday"}"#);
        assert_eq!(bad_time, Err(PostError::BadTimestamp("yesterday".into())));
    }
}

/// The fast parser against serde_json: for every input the same `Ok` or the very same
/// [`PostError`] (code and reason), the same tags, the same time at ingest. Three sources of
/// input: arbitrary bytes; near-valid posts built token by token, where the two parsers could
/// part ways (escapes, surrogates, numbers, literals, nesting, duplicates, white space, wrong
/// types, then a random cut, insertion or deletion); and every [`RawPost`] as serde_json writes
/// it, compact and pretty.
#[cfg(test)]
mod agreement {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::tags::{TagExtractor, extract_post_ref_tags, extract_post_tags};

    std::thread_local! {
        /// One extractor for all the cases of a thread, as the aggregator keeps one: its
        /// buffers hold earlier posts' tags.
        static EXTRACTOR: std::cell::RefCell<TagExtractor> =
            std::cell::RefCell::new(TagExtractor::new());
    }

    /// Both parsers on `bytes`; `Err` describes the first disagreement.
    fn agree(bytes: &[u8], max_tags: usize, ingest: EpochMillis) -> Result<(), String> {
        let old = parse_post(bytes);
        let new = parse_post_ref(bytes);
        match (&old, &new) {
            (Ok(old), Ok(new)) => {
                if new.clone().into_owned() != *old {
                    return Err(format!("values differ: {old:?} / {new:?}"));
                }
                let (old_tags, new_tags) = (
                    extract_post_tags(&old.post, max_tags),
                    extract_post_ref_tags(new, max_tags),
                );
                if old_tags != new_tags {
                    return Err(format!("tags differ: {old_tags:?} / {new_tags:?}"));
                }
                let reused = EXTRACTOR.with(|e| e.borrow_mut().extract(new, max_tags).clone());
                if reused != new_tags {
                    return Err(format!("TagExtractor differs: {reused:?} / {new_tags:?}"));
                }
                for skew in [0, 300_000] {
                    let (a, b) = (
                        event_time_at_ingest(old, ingest, skew),
                        new.event_time_at_ingest(ingest, skew),
                    );
                    if a != b {
                        return Err(format!("time at ingest differs: {a:?} / {b:?}"));
                    }
                }
                Ok(())
            }
            (Err(a), Err(b))
                if a == b && a.code() == b.code() && a.to_string() == b.to_string() =>
            {
                Ok(())
            }
            _ => Err(format!("{old:?} / {new:?}")),
        }
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            600 => Just(""),
            200 => Just(" "),
            100 => Just("\n  "),
            50 => Just("\t\r\n "),
            // Not JSON white space.
            1 => Just("\u{a0}"),
            1 => Just("\u{c}"),
            1 => Just("\u{feff}"),
        ]
    }

    /// One piece of a string literal's content, as written in the JSON.
    fn string_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            80 => "[a-zA-Z0-9 #_.:-]{0,8}",
            24 => "[é日本語🔥＃#Ａｂ]{1,3}",
            1 => Just(r##"\n"##.to_string()),
            1 => Just(r##"\""##.to_string()),
            1 => Just(r##"\\"##.to_string()),
            1 => Just(r##"\/\b\f\r\t"##.to_string()),
            1 => Just(r##"\u00e9\u0023\u005A"##.to_string()),
            1 => Just(r##"\u0000\u001f\u007f"##.to_string()),
            1 => Just(r##"\uD83D\uDE00"##.to_string()),
            1 => Just(r##"\ud83d\ude00\uDBFF\uDFFF"##.to_string()),
            // Surrogates serde_json refuses in a decoded string, accepts in a skipped one.
            1 => Just(r##"\uD800"##.to_string()),
            1 => Just(r##"\uDC00\uD800"##.to_string()),
            1 => Just(r##"\uD800\u0041"##.to_string()),
            1 => Just(r##"\uD800\n"##.to_string()),
            1 => Just(r##"\uD800\uD800\uDC00"##.to_string()),
            // Bad escapes, raw control characters.
            1 => Just(r##"\x"##.to_string()),
            1 => Just(r##"\u12"##.to_string()),
            1 => Just(r##"\uZZZZ"##.to_string()),
            1 => Just("\u{1}".to_string()),
            1 => Just("\t".to_string()),
            1 => Just("\u{7f}".to_string()),
        ]
    }

    fn string_literal() -> impl Strategy<Value = String> {
        prop::collection::vec(string_piece(), 0..5)
            .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
    }

    /// A mostly valid string literal: what a post's string field usually holds.
    fn plain_string() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-zA-Z0-9 #é日🔥＃]{0,24}".prop_map(|s| format!("\"{s}\"")),
            2 => string_literal(),
        ]
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            1 => "[0-9]{25}",
            1 => prop::sample::select(vec!["01", "-", "1.", "1e", ".5", "+1", "1e+", "-0", "1E400", "--1", "0x1"])
                .prop_map(String::from),
        ]
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => plain_string(),
            6 => number(),
            4 => prop::sample::select(vec!["null", "true", "false"]).prop_map(String::from),
            1 => prop::sample::select(vec!["nul", "True", "nulll", "fals", "nan", "undefined"])
                .prop_map(String::from),
        ]
    }

    /// Any value: scalars, arrays and objects nested up to a few levels.
    fn value() -> impl Strategy<Value = String> {
        scalar().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                (
                    prop::collection::vec((ws(), inner.clone()), 0..4),
                    prop::bool::weighted(0.05)
                )
                    .prop_map(|(items, trailing)| {
                        let items: Vec<String> =
                            items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                        format!("[{}{}]", items.join(","), if trailing { "," } else { "" })
                    }),
                prop::collection::vec((key(), ws(), inner), 0..4).prop_map(|fields| {
                    let fields: Vec<String> = fields
                        .into_iter()
                        .map(|(k, w, v)| format!("{k}{w}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn timestamp() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u32..24, 0u32..60, 0u32..1000).prop_map(|(h, m, ms)| {
                format!("\"2026-11-22T{h:02}:{m:02}:00.{ms:03}Z\"")
            }),
            1 => prop::sample::select(vec![
                r##""2026-11-22T10:00:00+01:00""##,
                r##""2026-11-22T10:00:00\u005A""##,
                r##""2026-11-22 10:00:00Z""##,
                r##""yesterday""##,
                r##""""##,
                r##""9999-12-31T23:59:59.999Z""##,
                r##""2026-11-22T10:00:60Z""##,
            ])
            .prop_map(String::from),
            1 => string_literal(),
        ]
    }

    /// A key, as written: mostly a post's own fields, some unknown, a few escaped.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => prop::sample::select(vec![
                "id", "text", "created_at", "author_id", "lang", "source", "hashtags",
            ])
            .prop_map(|k| format!("\"{k}\"")),
            2 => prop::sample::select(vec!["extra", "x", "", "ID", "tags", "hashtag"])
                .prop_map(|k| format!("\"{k}\"")),
            1 => prop::sample::select(vec![
                r##""te\u0078t""##,
                r##""\u0069d""##,
                r##""hash\u0074ags""##,
                r##""\uD800""##,
                "\"id\u{1}\"",
            ])
            .prop_map(String::from),
            1 => string_literal(),
        ]
    }

    fn strings_array() -> impl Strategy<Value = String> {
        (prop::collection::vec((ws(), plain_string()), 0..5), ws()).prop_map(|(items, end)| {
            let items: Vec<String> = items.into_iter().map(|(w, s)| format!("{w}{s}")).collect();
            format!("[{}{end}]", items.join(","))
        })
    }

    /// The optional fields, each at most once, with a value of its type most of the time.
    fn optional_fields() -> impl Strategy<Value = Vec<(String, String)>> {
        let optional = |key: &'static str| {
            let value = if key == "hashtags" {
                prop_oneof![8 => strings_array(), 2 => Just("null".to_string()), 1 => value()]
                    .boxed()
            } else {
                prop_oneof![8 => plain_string(), 2 => Just("null".to_string()), 1 => value()]
                    .boxed()
            };
            prop::option::weighted(0.5, value)
                .prop_map(move |v| v.map(|v| (format!("\"{key}\""), v)))
        };
        (
            optional("author_id"),
            optional("lang"),
            optional("source"),
            optional("hashtags"),
        )
            .prop_map(|(a, b, c, d)| [a, b, c, d].into_iter().flatten().collect())
    }

    /// Fields a post does not know, or (rarely) any key: a repeat, an escaped key.
    fn other_fields() -> impl Strategy<Value = Vec<(String, String)>> {
        let unknown = prop::sample::select(vec!["\"extra\"", "\"x\"", "\"\"", "\"tags\""]);
        let field = prop_oneof![
            6 => (unknown.prop_map(String::from), value()),
            1 => (key(), value()),
            1 => (key(), plain_string()),
        ];
        prop::collection::vec(field, 0..3)
    }

    /// A near-valid post: usually the three required fields, some optional and unknown ones
    /// (repeats included), in any order, with white space anywhere, sometimes a trailing
    /// comma or trailing text, sometimes the fields as an array (which serde_json accepts).
    fn near_valid_post() -> impl Strategy<Value = String> {
        let object = (
            prop::option::weighted(0.9, plain_string()),
            prop::option::weighted(0.9, plain_string()),
            prop::option::weighted(0.9, timestamp()),
            optional_fields(),
            other_fields(),
            prop::collection::vec(ws(), 16),
            prop_oneof![8 => Just(""), 1 => Just(","), 1 => Just("}"), 1 => Just(" x")],
        )
            .prop_flat_map(|(id, text, created_at, optional, other, ws, tail)| {
                let mut fields: Vec<(String, String)> = Vec::new();
                for (k, v) in [
                    ("\"id\"", id),
                    ("\"text\"", text),
                    ("\"created_at\"", created_at),
                ] {
                    if let Some(v) = v {
                        fields.push((k.to_string(), v));
                    }
                }
                fields.extend(optional);
                fields.extend(other);
                (Just(fields).prop_shuffle(), Just(ws), Just(tail))
            })
            .prop_map(|(fields, ws, tail)| {
                let mut out = format!("{}{{{}", ws[0], ws[1]);
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&format!(",{}", ws[(2 + i) % 16]));
                    }
                    let (a, b, c) = (ws[(3 + i) % 16], ws[(5 + i) % 16], ws[(7 + i) % 16]);
                    out.push_str(&format!("{k}{a}:{b}{v}{c}"));
                }
                if tail == "," {
                    out.push(',');
                }
                out.push('}');
                if tail != "," {
                    out.push_str(tail);
                }
                out.push_str(ws[15]);
                out
            });
        let array = (plain_string(), plain_string(), timestamp())
            .prop_map(|(id, text, at)| format!("[{id},{text},{at}]"));
        prop_oneof![12 => object, 1 => array]
    }

    /// A cut, a deleted byte, an inserted or replaced one, or nothing.
    fn mutated(post: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        (
            post,
            prop_oneof![
                16 => Just(0u8),
                1 => Just(1),
                1 => Just(2),
                1 => Just(3),
                1 => Just(4),
            ],
            any::<prop::sample::Index>(),
            prop_oneof![
                prop::sample::select(b"\"\\{}[],: \x01\n0-eEnu".to_vec()),
                any::<u8>()
            ],
        )
            .prop_map(|(post, how, at, byte)| {
                let mut bytes = post.into_bytes();
                let i = at.index(bytes.len() + 1);
                match how {
                    1 => bytes.truncate(i),
                    2 if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    3 => bytes.insert(i, byte),
                    4 if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
                bytes
            })
    }

    fn raw_post() -> impl Strategy<Value = RawPost> {
        let text = || "(\\PC|[\u{0}-\u{1f}\"\\\\#])*";
        (
            text(),
            text(),
            prop_oneof![
                timestamp().prop_map(|t| t.trim_matches('"').to_string()),
                text()
            ],
            prop::option::of(text()),
            prop::option::of("[a-z]{2}"),
            prop::option::of(text()),
            prop::option::of(prop::collection::vec(text(), 0..4)),
        )
            .prop_map(
                |(id, text, created_at, author_id, lang, source, hashtags)| RawPost {
                    id,
                    text,
                    created_at,
                    author_id,
                    lang,
                    source,
                    hashtags,
                },
            )
    }

    const INGEST: EpochMillis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The word-at-a-time scan finds the first special byte, as a plain loop does.
        #[test]
        fn find_special_finds_the_first_special_byte(
            bytes in prop::collection::vec(
                prop_oneof![
                    8 => prop::sample::select(b"ab #\xc3\xa9\xff\x7f\x80 ".to_vec()),
                    1 => prop::sample::select(b"\"\\\x00\x1f\x20\x21\x5b\x5d".to_vec()),
                ],
                0..80,
            ),
        ) {
            let want = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len());
            prop_assert_eq!(fast::find_special(&bytes), want);
        }
    }

    /// Timestamps of the fast path's shape and just outside it: out-of-range fields, leap
    /// seconds, leap days, 0 to 12 fraction digits, every kind of offset, and a random byte
    /// replaced, inserted or cut.
    fn rfc3339_like() -> impl Strategy<Value = String> {
        let two = |hi: u32| (0..=hi).prop_map(|n| format!("{n:02}"));
        let offset = prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            Just(String::new()),
            Just("+0000".to_string()),
            Just("\u{2212}01:00".to_string()),
            (prop::sample::select(vec!['+', '-']), two(25), two(61))
                .prop_map(|(sign, h, m)| format!("{sign}{h}:{m}")),
        ];
        let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{0,12}",];
        let stamp = (
            prop_oneof![
                (0u32..=9999).prop_map(|y| format!("{y:04}")),
                Just("2024".into()),
                Just("1900".into()),
                Just("2000".into())
            ],
            two(13),
            two(32),
            prop::sample::select(vec!["T", "t", " ", "x"]),
            two(25),
            two(61),
            two(61),
            fraction,
            offset,
        )
            .prop_map(|(y, mo, d, sep, h, mi, s, f, o)| {
                format!("{y}-{mo}-{d}{sep}{h}:{mi}:{s}{f}{o}")
            });
        (stamp, any::<u8>(), any::<usize>(), 0u8..8).prop_map(|(s, byte, at, how)| {
            let mut bytes = s.into_bytes();
            let at = at % (bytes.len() + 1);
            match how {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 => bytes.truncate(at),
                _ => {}
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The fast RFC 3339 reader gives chrono's result whenever it gives one, and
        /// `parse_rfc3339_millis` always gives chrono's.
        #[test]
        fn fast_rfc3339_agrees_with_chrono(s in rfc3339_like()) {
            let chrono = rfc3339_millis_chrono(&s);
            if let Some(fast) = rfc3339_millis_fast(&s) {
                prop_assert_eq!(Some(fast), chrono, "{}", s);
            }
            prop_assert_eq!(parse_rfc3339_millis(&s), chrono, "{}", s);
        }
    }

    #[test]
    fn fast_rfc3339_takes_the_common_shapes() {
        for (s, millis) in [
            ("2026-11-22T10:00:00.123Z", 1_795_341_600_123),
            ("2026-11-22T10:00:00Z", 1_795_341_600_000),
            ("2026-11-22t10:00:00.123456789z", 1_795_341_600_123),
            ("2026-11-22T11:30:00.1+01:30", 1_795_341_600_100),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T00:00:00-00:00", 1_709_164_800_000),
        ] {
            assert_eq!(rfc3339_millis_fast(s), Some(millis), "{s}");
            assert_eq!(rfc3339_millis_chrono(s), Some(millis), "{s}");
        }
        // Left to chrono: a leap second, ten fraction digits; refused by both: 2023-02-29.
        assert_eq!(rfc3339_millis_fast("2016-12-31T23:59:60Z"), None);
        assert!(rfc3339_millis_chrono("2016-12-31T23:59:60Z").is_some());
        assert_eq!(rfc3339_millis_fast("2026-11-22T10:00:00.1234567891Z"), None);
        assert_eq!(parse_rfc3339_millis("2023-02-29T00:00:00Z"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn fast_and_serde_agree_on_arbitrary_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            max_tags in 1usize..40,
        ) {
            if let Err(why) = agree(&bytes, max_tags, INGEST) {
                return Err(TestCaseError::fail(why));
            }
        }

        #[test]
        fn fast_and_serde_agree_on_serialized_posts(
            post in raw_post(),
            pretty in any::<bool>(),
            max_tags in 1usize..40,
            ingest_offset in -100_000_000i64..100_000_000,
        ) {
            let json = if pretty {
                serde_json::to_vec_pretty(&post)
            } else {
                serde_json::to_vec(&post)
            };
            let json = json.map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Err(why) = agree(&json, max_tags, INGEST + ingest_offset) {
                return Err(TestCaseError::fail(why));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        #[test]
        fn fast_and_serde_agree_on_near_valid_posts(
            bytes in mutated(near_valid_post()),
            max_tags in 1usize..40,
            ingest_offset in -100_000_000i64..100_000_000,
        ) {
            if let Err(why) = agree(&bytes, max_tags, INGEST + ingest_offset) {
                return Err(TestCaseError::fail(why));
            }
        }
    }

    /// The generator is not vacuous: it reaches the fast reader's success and its every way
    /// of giving up, and serde_json's every verdict.
    #[test]
    fn near_valid_posts_exercise_both_parsers() {
        let mut runner = TestRunner::deterministic();
        let strategy = mutated(near_valid_post());
        let (mut fast_ok, mut fast_unsure_but_valid, mut codes) = (0, 0, Vec::new());
        let samples = 4000;
        for _ in 0..samples {
            let bytes = strategy
                .new_tree(&mut runner)
                .map_err(|e| e.to_string())
                .expect("a value")
                .current();
            let fast = std::str::from_utf8(&bytes).ok().and_then(fast::parse);
            let old = parse_post(&bytes);
            match (&fast, &old) {
                (Some(_), _) => fast_ok += 1,
                (None, Ok(_)) => fast_unsure_but_valid += 1,
                _ => {}
            }
            if let Err(e) = old {
                codes.push(e.code());
            }
        }
        eprintln!(
            "{samples} near-valid posts: the fast reader took {fast_ok}, left {fast_unsure_but_valid} \
             valid ones to serde_json; errors: {}",
            ["invalid_json", "bad_timestamp", "not_utf8", "empty"]
                .map(|code| format!("{code} {}", codes.iter().filter(|c| **c == code).count()))
                .join(", ")
        );
        assert!(
            fast_ok > samples / 8,
            "fast reader accepted {fast_ok} of {samples}"
        );
        assert!(
            fast_unsure_but_valid > 10,
            "fallback of valid posts: {fast_unsure_but_valid}"
        );
        for code in ["invalid_json", "bad_timestamp", "not_utf8"] {
            let n = codes.iter().filter(|c| **c == code).count();
            assert!(n > 10, "{code}: {n} of {samples}");
        }
    }

    /// Cases worth naming: each goes through the fast reader (so it is the one compared) or is
    /// one the reader leaves to serde_json on purpose.
    #[test]
    fn named_cases_agree() {
        let fast_cases: &[&str] = &[
            r##"{"id":"1","text":"a #b","created_at":"2026-11-22T10:00:00Z"}"##,
            r##" { "id" : "1" , "text" : "caf\u00e9 \ud83d\ude00 #x\n" , "created_at" : "2026-11-22T10:00:00\u005A" } "##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","lang":null,"author_id":null,"source":null,"hashtags":null}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","hashtags":[ "a" , "\u0062", "#c\"" ]}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","x":{"y":[1,-0.5e+3,true,false,null,"\uD800",{}],"z":[]},"x":1}"##,
            r##"{"id":"1","text":"a","created_at":"yesterday"}"##,
        ];
        for case in fast_cases {
            assert!(fast::parse(case).is_some(), "fast reader gave up on {case}");
            agree(case.as_bytes(), 30, INGEST).expect(case);
        }
        let left_to_serde: &[&str] = &[
            r##"{"te\u0078t":"a","id":"1","created_at":"2026-11-22T10:00:00Z"}"##,
            r##"["1","a","2026-11-22T10:00:00Z"]"##,
            r##"{"id":"1","id":"2","text":"a","created_at":"2026-11-22T10:00:00Z"}"##,
            r##"{"id":"1","text":"\uD800","created_at":"2026-11-22T10:00:00Z"}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z",}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","x":01}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","hashtags":["a",]}"##,
            r##"{"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z","hashtags":["a",1]}"##,
            "{\"id\":\"1\",\"text\":\"a\tb\",\"created_at\":\"2026-11-22T10:00:00Z\"}",
            r##"{"id":"1","text":"a"}"##,
        ];
        for case in left_to_serde {
            assert!(fast::parse(case).is_none(), "fast reader took {case}");
            agree(case.as_bytes(), 30, INGEST).expect(case);
        }
        // Nesting: the reader skips 128 levels itself, serde_json any depth.
        for depth in [1, 127, 128, 129, 5000] {
            let json = format!(
                r##"{{"x":{}1{},"id":"1","text":"a","created_at":"2026-11-22T10:00:00Z"}}"##,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert_eq!(fast::parse(&json).is_some(), depth <= 128, "depth {depth}");
            agree(json.as_bytes(), 30, INGEST).expect("nested");
        }
    }
}
