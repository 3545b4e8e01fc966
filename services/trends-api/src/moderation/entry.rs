//! Blocklist entries: how one is read from the admin API or a record, checked against the
//! bounds, and written as a record of the blocklist topic.
//!
//! An entry is a tag's counting form (normalized like `/api/v1/hashtags/{tag}` normalizes its
//! parameter: one leading `#` dropped, NFKC, lowercase) or a pattern: the same with `*`s,
//! which match any run of characters (hashtags never contain `*`). Runs of `*` collapse to
//! one, so every pattern has one spelling, which is its record's key.
//!
//! Record: key = the entry (UTF-8), value = [`Entry`] as JSON
//! (`{"entry":…,"kind":"exact"|"pattern","reason":…|null,"added_at":"RFC 3339"}`), no value (a
//! tombstone) = removed. A record is untrusted input like any other: [`decode_record`]
//! refuses one whose key or value breaks a bound, does not parse, or is not in the form this
//! module writes (its entry not normalized, its key not its entry, its kind wrong), with an
//! error quoting at most a short preview.

use serde::{Deserialize, Serialize};
use trends_core::hashtag::normalize;
use trends_core::post::parse_rfc3339_millis;
use trends_core::tags::MAX_TAG_CHARS;
use trends_core::{EpochMillis, format_rfc3339_millis, truncate_utf8};
use utoipa::ToSchema;

/// The longest entry, in characters (`*`s included): a tag's limit.
pub const MAX_ENTRY_CHARS: usize = MAX_TAG_CHARS;
/// The longest entry as given, before normalization (a path parameter, an import line's
/// `entry`), in bytes.
pub const MAX_RAW_ENTRY_BYTES: usize = 1024;
/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// The longest record key read: [`MAX_ENTRY_CHARS`] characters of at most 4 bytes.
pub const MAX_KEY_BYTES: usize = MAX_ENTRY_CHARS * 4;
/// The longest record value read (an entry and a reason at their longest, escaped, fit).
pub const MAX_VALUE_BYTES: usize = 8192;

/// Errors quote at most this many bytes of what they refuse.
const PREVIEW_BYTES: usize = 64;

/// An exact tag or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Exact,
    Pattern,
}

/// A blocklist entry: a hashtag's counting form, or a pattern in which `*` matches any run of
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The normalized tag or pattern; also the record's key.
    #[schema(example = "crypto*", max_length = 140)]
    pub entry: String,
    pub kind: Kind,
    /// Why it is blocked (free text, at most [`MAX_REASON_CHARS`] characters), or `null`.
    #[schema(required = true, max_length = 200, example = "scam campaign")]
    pub reason: Option<String>,
    /// When it was added, RFC 3339 in UTC with milliseconds.
    #[schema(format = DateTime, example = "2026-11-23T12:00:00.000Z")]
    pub added_at: String,
}

/// What one record of the topic does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Entry),
    /// A tombstone: the entry with this key is removed.
    Remove(String),
}

/// A short preview of untrusted text for an error message.
fn preview(text: &str) -> String {
    format!("{:?}", truncate_utf8(text, PREVIEW_BYTES))
}

/// The normalized form of an entry as given, and its kind; the error says what is wrong.
pub fn normalize_entry(raw: &str) -> Result<(String, Kind), String> {
    if raw.len() > MAX_RAW_ENTRY_BYTES {
        return Err(format!("entry longer than {MAX_RAW_ENTRY_BYTES} bytes"));
    }
    let mut entry = normalize(raw.trim());
    if entry.contains("**") {
        let mut collapsed = String::with_capacity(entry.len());
        for c in entry.chars() {
            if !(c == '*' && collapsed.ends_with('*')) {
                collapsed.push(c);
            }
        }
        entry = collapsed;
    }
    if entry.is_empty() {
        return Err("entry is empty".into());
    }
    if entry.starts_with(['#', '＃']) {
        return Err(format!(
            "entry {} starts with # once normalized",
            preview(&entry)
        ));
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "entry {} contains whitespace or a control character",
            preview(&entry)
        ));
    }
    if entry.chars().count() > MAX_ENTRY_CHARS {
        return Err(format!(
            "entry longer than {MAX_ENTRY_CHARS} characters once normalized"
        ));
    }
    if !entry.contains('*') {
        return Ok((entry, Kind::Exact));
    }
    if entry.chars().all(|c| c == '*') {
        return Err("a pattern needs a character besides * (it would block every tag)".into());
    }
    Ok((entry, Kind::Pattern))
}

/// A reason as given: trimmed, `None` if empty; refused if too long or with control characters.
pub fn check_reason(reason: Option<String>) -> Result<Option<String>, String> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reason = reason.trim();
    if reason.is_empty() {
        return Ok(None);
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(format!("reason longer than {MAX_REASON_CHARS} characters"));
    }
    if reason.chars().any(char::is_control) {
        return Err("reason contains a control character".into());
    }
    Ok(Some(reason.to_owned()))
}

impl Entry {
    /// An entry from what an admin gave: the raw tag or pattern, a reason, when.
    pub fn new(raw: &str, reason: Option<String>, added_at: EpochMillis) -> Result<Entry, String> {
        let (entry, kind) = normalize_entry(raw)?;
        Ok(Entry {
            entry,
            kind,
            reason: check_reason(reason)?,
            added_at: format_rfc3339_millis(added_at),
        })
    }

    /// The record value.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Whether this is exactly what [`Entry::new`] makes, with `key` as its key.
    fn check_stored(&self, key: &str) -> Result<(), String> {
        if self.entry != key {
            return Err(format!(
                "key {} is not the value's entry {}",
                preview(key),
                preview(&self.entry)
            ));
        }
        let (normalized, kind) = normalize_entry(&self.entry)?;
        if normalized != self.entry {
            return Err(format!("entry {} is not normalized", preview(&self.entry)));
        }
        if kind != self.kind {
            return Err(format!("entry {} has the wrong kind", preview(&self.entry)));
        }
        if check_reason(self.reason.clone())? != self.reason {
            return Err("reason is not trimmed".into());
        }
        if parse_rfc3339_millis(&self.added_at).is_none() {
            return Err(format!(
                "added_at {} is not an RFC 3339 time",
                preview(&self.added_at)
            ));
        }
        Ok(())
    }
}

/// One record of the topic, checked.
pub fn decode_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Change, String> {
    let key = key.ok_or("record without a key")?;
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "key of {} bytes, longer than {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_string())?;
    let Some(value) = value else {
        return Ok(Change::Remove(key.to_owned()));
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "value of {} bytes, longer than {MAX_VALUE_BYTES}",
            value.len()
        ));
    }
    let entry: Entry = serde_json::from_slice(value).map_err(|e| {
        format!(
            "value is not an entry: {}",
            truncate_utf8(&e.to_string(), 2 * PREVIEW_BYTES)
        )
    })?;
    entry.check_stored(key)?;
    Ok(Change::Put(entry))
}

/// One line of a bulk import: an exported line, or less (`kind`, `reason` and `added_at` may
/// be left out; `entry` may be in any spelling).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    entry: String,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    added_at: Option<String>,
}

/// An import line as an entry (`now` when it has no `added_at`); the error says why not.
pub fn parse_import_line(line: &str, now: EpochMillis) -> Result<Entry, String> {
    let line: ImportLine = serde_json::from_str(line).map_err(|e| {
        format!(
            "not a JSON entry: {}",
            truncate_utf8(&e.to_string(), 2 * PREVIEW_BYTES)
        )
    })?;
    let added_at = match &line.added_at {
        None => now,
        Some(text) => parse_rfc3339_millis(text)
            .ok_or_else(|| format!("added_at {} is not an RFC 3339 time", preview(text)))?,
    };
    let entry = Entry::new(&line.entry, line.reason, added_at)?;
    if line.kind.is_some_and(|kind| kind != entry.kind) {
        return Err(format!(
            "kind does not fit entry {} (a pattern is an entry with *)",
            preview(&entry.entry)
        ));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: EpochMillis = 1_795_435_200_000;

    #[test]
    fn entries_are_normalized_like_tags_and_patterns_have_one_spelling() {
        for (raw, entry, kind) in [
            ("Rust", "rust", Kind::Exact),
            ("#RUST", "rust", Kind::Exact),
            ("  ＃Ｒｕｓｔ ", "rust", Kind::Exact),
            ("*Porn*", "*porn*", Kind::Pattern),
            ("#crypto***", "crypto*", Kind::Pattern),
            ("**a**b", "*a*b", Kind::Pattern),
            ("日本", "日本", Kind::Exact),
        ] {
            assert_eq!(normalize_entry(raw), Ok((entry.to_string(), kind)), "{raw}");
            // Normalizing the result changes nothing: a stored entry is its own form.
            assert_eq!(
                normalize_entry(entry),
                Ok((entry.to_string(), kind)),
                "{entry}"
            );
        }
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        let long = "a".repeat(MAX_ENTRY_CHARS + 1);
        let huge = "a".repeat(MAX_RAW_ENTRY_BYTES + 1);
        for (raw, says) in [
            ("", "empty"),
            ("#", "empty"),
            ("***", "besides *"),
            ("a b", "whitespace"),
            ("a\u{7}", "control"),
            ("##rust", "starts with #"),
            (long.as_str(), "140 characters"),
            (huge.as_str(), "1024 bytes"),
        ] {
            let err = normalize_entry(raw).expect_err(raw);
            assert!(err.contains(says), "{raw:?}: {err}");
        }
        assert_eq!(
            normalize_entry(&"a".repeat(MAX_ENTRY_CHARS)).map(|e| e.1),
            Ok(Kind::Exact)
        );
        assert!(check_reason(Some("x".repeat(MAX_REASON_CHARS + 1))).is_err());
        assert_eq!(check_reason(Some("  ".into())), Ok(None));
        assert_eq!(check_reason(Some(" spam ".into())), Ok(Some("spam".into())));
    }

    #[test]
    fn records_round_trip_and_hostile_ones_are_refused() {
        let entry = Entry::new("*Spam*", Some("flood".into()), NOON).expect("valid");
        let value = entry.to_json().expect("json");
        assert_eq!(
            String::from_utf8_lossy(&value),
            r#"{"entry":"*spam*","kind":"pattern","reason":"flood","added_at":"2026-11-23T12:00:00.000Z"}"#
        );
        assert_eq!(
            decode_record(Some(b"*spam*"), Some(&value)),
            Ok(Change::Put(entry))
        );
        assert_eq!(
            decode_record(Some(b"rust"), None),
            Ok(Change::Remove("rust".into()))
        );
        let long_key = vec![b'a'; MAX_KEY_BYTES + 1];
        let long_value = vec![b' '; MAX_VALUE_BYTES + 1];
        let value_of = |entry: &str, kind: &str| {
            format!(
                r#"{{"entry":"{entry}","kind":"{kind}","reason":null,"added_at":"2026-11-23T12:00:00.000Z"}}"#
            )
        };
        for (key, value, says) in [
            (None, Some(value.clone()), "without a key"),
            (Some(long_key.clone()), None, "key of"),
            (Some(b"\xff".to_vec()), None, "UTF-8"),
            (Some(b"spam".to_vec()), Some(b"not json".to_vec()), "not an entry"),
            (Some(b"spam".to_vec()), Some(long_value), "value of"),
            (Some(b"other".to_vec()), Some(value.clone()), "not the value's entry"),
            (Some(b"Rust".to_vec()), Some(value_of("Rust", "exact").into_bytes()), "not normalized"),
            (Some(b"a*".to_vec()), Some(value_of("a*", "exact").into_bytes()), "wrong kind"),
            (
                Some(b"a".to_vec()),
                Some(br#"{"entry":"a","kind":"exact","reason":null,"added_at":"soon"}"#.to_vec()),
                "RFC 3339",
            ),
            (
                Some(b"a".to_vec()),
                Some(br#"{"entry":"a","kind":"exact","reason":null,"added_at":"2026-11-23T12:00:00Z","x":1}"#.to_vec()),
                "unknown field",
            ),
        ] {
            let err = decode_record(key.as_deref(), value.as_deref()).expect_err(says);
            assert!(err.contains(says), "{says}: {err}");
            assert!(err.len() < 400, "{err}");
        }
    }

    #[test]
    fn import_lines_take_an_exported_line_or_less() {
        let exported = r#"{"entry":"crypto*","kind":"pattern","reason":"scams","added_at":"2026-11-23T12:00:00.000Z"}"#;
        let entry = parse_import_line(exported, 0).expect("exported line");
        assert_eq!(serde_json::to_string(&entry).expect("json"), exported);
        let bare = parse_import_line(r##"{"entry":"#Spam"}"##, NOON).expect("bare");
        assert_eq!(bare, Entry::new("spam", None, NOON).expect("valid"));
        for (line, says) in [
            ("spam", "not a JSON entry"),
            (r#"{"entry":"a*","kind":"exact"}"#, "does not fit"),
            (r#"{"entry":"a","added_at":"yesterday"}"#, "RFC 3339"),
            (r#"{"entry":" "}"#, "empty"),
            (r#"{"entry":"a","colour":"red"}"#, "unknown field"),
        ] {
            let err = parse_import_line(line, NOON).expect_err(line);
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
