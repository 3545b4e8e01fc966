//! The wire format of the compacted counts topic (`hashtag-counts` by default).
//!
//! The aggregator keeps state per *input* partition and writes it to the *same* partition number
//! of the counts topic, so each counts partition holds exactly one input partition's partial
//! counts. The API sums the partials of all partitions.
//!
//! | key                                    | value                               | meaning                                   |
//! |----------------------------------------|-------------------------------------|-------------------------------------------|
//! | `{p}\|f\|{bucket_start_ms}\|{tag}`     | `{"count":N,"error":E}`             | posts with `tag` in a fine bucket         |
//! | `{p}\|c\|{bucket_start_ms}\|{tag}`     | `{"count":N,"error":E}`             | posts with `tag` in a coarse bucket       |
//! | `{p}\|a\|{tag}`                        | `{"count":N,"error":E,"spellings":{"Rust":N}}`| posts with `tag` since the topic began, and how often each spelling was seen |
//! | `{p}\|w`                               | `{"watermark":ms,"at":"RFC 3339","all_floor":F}` | latest event time seen on input partition |
//! | `{p}\|u\|f\|{bucket_start_ms}\|{lang}\|{tag}` | `{"count":N,"error":E}`        | distinct authors of `tag` in `lang` in a fine bucket (the trend track) |
//! | `{p}\|u\|c\|{bucket_start_ms}\|{lang}\|{tag}` | `{"count":N,"error":E}`        | the same in a coarse bucket (kept two days: the baseline reads yesterday) |
//! | `{p}\|l\|f\|{bucket_start_ms}\|{lang}\|{tag}` | `{"count":N,"error":E}`        | posts with `tag` in `lang` in a fine bucket (`c`: coarse); an empty tag: all posts in `lang` |
//!
//! `p` is the input partition, `tag` the normalized hashtag (it comes last, so it may contain
//! `|`), `lang` a language code of the trend track ([`crate::lang`]: 1–8 ASCII lowercase
//! letters, `und` for none). An author counts at most once per tag, language and coarse
//! bucket, in the fine bucket of their first post in it ([`crate::trend_track`]). Values are absolute, so compaction keeps exactly the current state; a bucket that left
//! the longest window is deleted with a tombstone (a null value) for each of its keys.
//! `spellings` lists a tag's spellings in the order the partition first saw them (a JSON
//! object whose member order is kept), so a restored counter is the counter that wrote it.
//!
//! **Estimates.** The aggregator tracks a bounded number of tags per bucket and in `all`
//! (Space-Saving, see [`crate::space_saving`]). Below that capacity every count is exact and
//! `error` is absent (0). Above it, a count may be over by at most `error`: the true count is in
//! `count − error ..= count`. A tag evicted from `all` loses its `{p}|a|{tag}` key (a
//! tombstone), and the watermark record's `all_floor` says how many posts such a tag may have
//! had on that partition at most (absent, 0, while `all` has evicted nothing).
//!
//! **Decoding trusts nothing.** Anyone with write access to the topic can put anything in it,
//! and a reader must neither panic, loop nor hold unbounded state because of one record. So
//! [`CountsRecord::decode`] refuses, as malformed, everything the aggregator never writes: a
//! negative partition, a time outside [`crate::EVENT_TIME_RANGE`], a count outside
//! `0..=`[`crate::MAX_COUNT`], an empty tag or one over [`crate::tags::MAX_TAG_CHARS`]
//! characters, more than [`MAX_SPELLINGS`] spellings. Its error quotes at most
//! a short preview of the key.

use serde::Deserialize;

use crate::tags::MAX_TAG_CHARS;
use crate::window::Resolution;
use crate::{EVENT_TIME_RANGE, EpochMillis, MAX_COUNT};

/// What a counts-topic key identifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CountsKey {
    Bucket {
        partition: i32,
        resolution: Resolution,
        start: EpochMillis,
        tag: String,
    },
    Total {
        partition: i32,
        tag: String,
    },
    Watermark {
        partition: i32,
    },
    /// The input offset the partition's state covers: the next offset of the input partition
    /// to count, written with the counts in the same transaction as the consumer offsets.
    /// A counts partition without it (and without a watermark) while the consumer group has
    /// committed offsets for the input partition has lost its state (the aggregator refuses to
    /// start on it).
    Checkpoint {
        partition: i32,
    },
    /// The trend track, per language: distinct authors of `tag` in `lang` in a bucket, or its
    /// posts; with an empty `tag`, every post in `lang` (posts only: the language's volume).
    Language {
        partition: i32,
        measure: Measure,
        resolution: Resolution,
        start: EpochMillis,
        lang: String,
        tag: String,
    },
}

/// What a [`CountsKey::Language`] record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Distinct authors (each once per tag, language and coarse bucket).
    Authors,
    /// Posts.
    Posts,
}

impl Measure {
    /// One-letter code in counts-topic keys.
    pub fn code(self) -> char {
        match self {
            Measure::Authors => 'u',
            Measure::Posts => 'l',
        }
    }
}

/// A decoded counts-topic record: a key and its value, `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsRecord {
    pub key: CountsKey,
    /// The count, or the watermark in epoch milliseconds for a watermark key.
    pub value: Option<i64>,
    /// For all-time keys: how often each original spelling was seen (at most
    /// [`MAX_SPELLINGS`] of them); empty otherwise.
    pub spellings: Vec<(String, i64)>,
    /// For bucket and all-time keys: how much `value` may exceed the true count (0: exact);
    /// the true count is in `value − error ..= value`. For the watermark key: the partition's
    /// *all-time floor*, the most posts a tag without an all-time key on this partition may
    /// have had (0 while its `all` has evicted no tag). Always within `0..=value` or
    /// `0..=`[`MAX_COUNT`].
    pub error: i64,
}

#[derive(Deserialize)]
struct CountValue {
    count: i64,
    #[serde(default)]
    error: i64,
    #[serde(default, deserialize_with = "ordered_spellings")]
    spellings: Vec<(String, i64)>,
}

/// A JSON object's members as a list, in the order written (a map type would sort them).
fn ordered_spellings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, i64)>, D::Error> {
    struct Members;
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Vec<(String, i64)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of spelling counts")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some((spelling, count)) = map.next_entry::<String, i64>()? {
                if list.len() == MAX_SPELLINGS {
                    return Err(serde::de::Error::custom(format!(
                        "more than {} spellings",
                        MAX_SPELLINGS
                    )));
                }
                list.push((spelling, count));
            }
            Ok(list)
        }
    }
    deserializer.deserialize_map(Members)
}

#[derive(Deserialize)]
struct CheckpointValue {
    offset: i64,
}

#[derive(Deserialize)]
struct WatermarkValue {
    watermark: EpochMillis,
    #[serde(default)]
    all_floor: i64,
}

/// The most spellings an all-time record carries (the aggregator keeps that many a tag and
/// partition, see [`crate::counter`]); a record with more is malformed.
pub const MAX_SPELLINGS: usize = 8;

/// How much of a malformed key an error quotes.
const KEY_PREVIEW_BYTES: usize = 80;
/// Longest key the aggregator writes (`{p}|f|{start}|{tag}`): 11 + 1 + 1 + 1 + 20 + 1 bytes of
/// prefix and a tag of [`MAX_TAG_CHARS`] characters of up to 4 bytes, rounded up.
const MAX_KEY_BYTES: usize = 64 + 4 * MAX_TAG_CHARS;

/// Why a counts record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed counts record: {0}")]
pub struct MalformedCountsRecord(pub String);

impl CountsKey {
    /// The input partition whose partial state this key belongs to.
    pub fn partition(&self) -> i32 {
        match self {
            CountsKey::Bucket { partition, .. }
            | CountsKey::Total { partition, .. }
            | CountsKey::Watermark { partition }
            | CountsKey::Checkpoint { partition }
            | CountsKey::Language { partition, .. } => *partition,
        }
    }

    pub fn encode(&self) -> String {
        match self {
            CountsKey::Bucket {
                partition,
                resolution,
                start,
                tag,
            } => format!("{partition}|{}|{start}|{tag}", resolution.code()),
            CountsKey::Total { partition, tag } => format!("{partition}|a|{tag}"),
            CountsKey::Watermark { partition } => format!("{partition}|w"),
            CountsKey::Checkpoint { partition } => format!("{partition}|o"),
            CountsKey::Language {
                partition,
                measure,
                resolution,
                start,
                lang,
                tag,
            } => format!(
                "{partition}|{}|{}|{start}|{lang}|{tag}",
                measure.code(),
                resolution.code()
            ),
        }
    }

    pub fn decode(key: &[u8]) -> Result<CountsKey, MalformedCountsRecord> {
        let bad = || {
            let preview = String::from_utf8_lossy(&key[..key.len().min(KEY_PREVIEW_BYTES)]);
            let more = if key.len() > KEY_PREVIEW_BYTES {
                "…"
            } else {
                ""
            };
            MalformedCountsRecord(format!("key {preview:?}{more} ({} bytes)", key.len()))
        };
        // The longest key the aggregator writes: a partition, a bucket start and a tag.
        if key.len() > MAX_KEY_BYTES {
            return Err(bad());
        }
        let key = std::str::from_utf8(key).map_err(|_| bad())?;
        let (partition, rest) = key.split_once('|').ok_or_else(bad)?;
        let partition: i32 = partition.parse().map_err(|_| bad())?;
        if partition < 0 {
            return Err(bad());
        }
        let valid_tag = |tag: &str| !tag.is_empty() && tag.chars().nth(MAX_TAG_CHARS).is_none();
        let (kind, rest) = rest.split_once('|').unwrap_or((rest, ""));
        match kind {
            "w" if rest.is_empty() => Ok(CountsKey::Watermark { partition }),
            "o" if rest.is_empty() => Ok(CountsKey::Checkpoint { partition }),
            "a" if valid_tag(rest) => Ok(CountsKey::Total {
                partition,
                tag: rest.to_string(),
            }),
            "f" | "c" => {
                let (start, tag) = rest.split_once('|').ok_or_else(bad)?;
                let start: EpochMillis = start.parse().map_err(|_| bad())?;
                if !valid_tag(tag) || !EVENT_TIME_RANGE.contains(&start) {
                    return Err(bad());
                }
                Ok(CountsKey::Bucket {
                    partition,
                    resolution: if kind == "f" {
                        Resolution::Fine
                    } else {
                        Resolution::Coarse
                    },
                    start,
                    tag: tag.to_string(),
                })
            }
            "u" | "l" => {
                let (resolution, rest) = rest.split_once('|').ok_or_else(bad)?;
                let (start, rest) = rest.split_once('|').ok_or_else(bad)?;
                let (lang, tag) = rest.split_once('|').ok_or_else(bad)?;
                let resolution = match resolution {
                    "f" => Resolution::Fine,
                    "c" => Resolution::Coarse,
                    _ => return Err(bad()),
                };
                let measure = if kind == "u" {
                    Measure::Authors
                } else {
                    Measure::Posts
                };
                let start: EpochMillis = start.parse().map_err(|_| bad())?;
                // An empty tag is a language's volume: posts only.
                let tag_ok = valid_tag(tag) || (tag.is_empty() && measure == Measure::Posts);
                if !tag_ok || !crate::lang::is_code(lang) || !EVENT_TIME_RANGE.contains(&start) {
                    return Err(bad());
                }
                Ok(CountsKey::Language {
                    partition,
                    measure,
                    resolution,
                    start,
                    lang: lang.to_string(),
                    tag: tag.to_string(),
                })
            }
            _ => Err(bad()),
        }
    }
}

impl CountsRecord {
    /// A record without spellings.
    pub fn new(key: CountsKey, value: Option<i64>) -> CountsRecord {
        CountsRecord {
            key,
            value,
            spellings: Vec::new(),
            error: 0,
        }
    }

    /// The same record with `error` set.
    pub fn with_error(mut self, error: i64) -> CountsRecord {
        self.error = error;
        self
    }

    /// The record's value as bytes, `None` for a tombstone.
    pub fn encode_value(&self) -> Option<String> {
        let value = self.value?;
        let error = match self.error {
            0 => String::new(),
            e => format!(r#","error":{e}"#),
        };
        Some(match self.key {
            CountsKey::Checkpoint { .. } => format!(r#"{{"offset":{value}}}"#),
            CountsKey::Watermark { .. } => {
                let floor = match self.error {
                    0 => String::new(),
                    f => format!(r#","all_floor":{f}"#),
                };
                format!(
                    r#"{{"watermark":{value},"at":"{}"{floor}}}"#,
                    crate::format_rfc3339_millis(value)
                )
            }
            CountsKey::Total { .. } if !self.spellings.is_empty() => {
                // By hand, to keep the spellings in their order.
                let mut out = format!(r#"{{"count":{value}{error},"spellings":{{"#);
                for (i, (spelling, n)) in self.spellings.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    // A string always serializes.
                    out.push_str(&serde_json::to_string(spelling).unwrap_or_default());
                    out.push(':');
                    out.push_str(&n.to_string());
                }
                out.push_str("}}");
                out
            }
            _ => format!(r#"{{"count":{value}{error}}}"#),
        })
    }

    /// Decodes a record as read from Kafka (`value` is `None` for a tombstone).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<CountsRecord, MalformedCountsRecord> {
        let key = CountsKey::decode(key)?;
        let bad_value = |what: String| {
            MalformedCountsRecord(format!(
                "{}: {}",
                crate::truncate_utf8(&key.encode(), KEY_PREVIEW_BYTES),
                crate::truncate_utf8(&what, 200)
            ))
        };
        let valid_count = |n: i64| (0..=MAX_COUNT).contains(&n);
        let mut spellings = Vec::new();
        let mut error = 0;
        let value = match value {
            None => None,
            Some(bytes) => Some(match key {
                CountsKey::Checkpoint { .. } => {
                    let decoded = serde_json::from_slice::<CheckpointValue>(bytes)
                        .map_err(|e| bad_value(e.to_string()))?;
                    if decoded.offset < 0 {
                        return Err(bad_value(format!("offset {} out of range", decoded.offset)));
                    }
                    decoded.offset
                }
                CountsKey::Watermark { .. } => {
                    let decoded = serde_json::from_slice::<WatermarkValue>(bytes)
                        .map_err(|e| bad_value(e.to_string()))?;
                    let watermark = decoded.watermark;
                    if !EVENT_TIME_RANGE.contains(&watermark) {
                        return Err(bad_value(format!("watermark {watermark} out of range")));
                    }
                    if !valid_count(decoded.all_floor) {
                        return Err(bad_value(format!(
                            "all_floor {} out of range",
                            decoded.all_floor
                        )));
                    }
                    error = decoded.all_floor;
                    watermark
                }
                _ => {
                    let value = serde_json::from_slice::<CountValue>(bytes)
                        .map_err(|e| bad_value(e.to_string()))?;
                    if !valid_count(value.count) {
                        return Err(bad_value(format!("count {} out of range", value.count)));
                    }
                    if !(0..=value.count).contains(&value.error) {
                        return Err(bad_value(format!(
                            "error {} not within 0..=count",
                            value.error
                        )));
                    }
                    error = value.error;
                    let valid_spelling = |(s, n): &(String, i64)| {
                        !s.is_empty() && s.chars().nth(MAX_TAG_CHARS).is_none() && valid_count(*n)
                    };
                    if !value.spellings.iter().all(valid_spelling) {
                        return Err(bad_value(
                            "a spelling is empty, too long or its count out of range".into(),
                        ));
                    }
                    spellings = value.spellings;
                    value.count
                }
            }),
        };
        Ok(CountsRecord {
            key,
            value,
            spellings,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: CountsRecord) {
        let key = record.key.encode();
        let value = record.encode_value();
        let decoded = CountsRecord::decode(key.as_bytes(), value.as_deref().map(str::as_bytes));
        assert_eq!(decoded, Ok(record));
    }

    #[test]
    fn every_kind_of_record_round_trips() {
        round_trip(CountsRecord {
            key: CountsKey::Bucket {
                partition: 3,
                resolution: Resolution::Fine,
                start: 1_795_435_200_000,
                tag: "rust|lang".into(),
            },
            value: Some(42),
            spellings: vec![],
            error: 0,
        });
        round_trip(CountsRecord {
            key: CountsKey::Bucket {
                partition: 0,
                resolution: Resolution::Coarse,
                start: 1_795_435_200_000,
                tag: "日本".into(),
            },
            value: None,
            spellings: vec![],
            error: 0,
        });
        round_trip(CountsRecord {
            key: CountsKey::Total {
                partition: 11,
                tag: "kafka".into(),
            },
            value: Some(7),
            spellings: vec![("Kafka".into(), 5), ("kafka\"|".into(), 2)],
            error: 0,
        });
        // Spellings keep their order (first seen first), not a sorted one.
        round_trip(CountsRecord {
            key: CountsKey::Total {
                partition: 0,
                tag: "rust".into(),
            },
            value: Some(6),
            spellings: vec![("rust".into(), 1), ("Rust".into(), 3), ("RUST".into(), 2)],
            error: 2,
        });
        round_trip(
            CountsRecord::new(
                CountsKey::Bucket {
                    partition: 2,
                    resolution: Resolution::Fine,
                    start: 1_795_435_200_000,
                    tag: "flood".into(),
                },
                Some(9),
            )
            .with_error(8),
        );
        round_trip(
            CountsRecord::new(
                CountsKey::Watermark { partition: 1 },
                Some(1_795_435_200_123),
            )
            .with_error(17),
        );
        round_trip(CountsRecord {
            key: CountsKey::Watermark { partition: 1 },
            value: Some(1_795_435_200_123),
            spellings: vec![],
            error: 0,
        });
        round_trip(CountsRecord::new(
            CountsKey::Checkpoint { partition: 4 },
            Some(123_456),
        ));
        assert_eq!(CountsKey::Checkpoint { partition: 4 }.encode(), "4|o");
        let bad = CountsRecord::decode(b"4|o", Some(br#"{"offset":-1}"#));
        assert!(bad.is_err(), "{bad:?}");
        assert!(CountsRecord::decode(b"4|o|x", Some(br#"{"offset":1}"#)).is_err());
    }

    #[test]
    fn documented_key_shapes() {
        let key = CountsKey::Bucket {
            partition: 3,
            resolution: Resolution::Fine,
            start: 1_795_435_200_000,
            tag: "rust".into(),
        };
        assert_eq!(key.encode(), "3|f|1795435200000|rust");
        let wm = CountsRecord::new(
            CountsKey::Watermark { partition: 1 },
            Some(1_795_435_200_123),
        );
        assert_eq!(
            wm.encode_value().as_deref(),
            Some(r#"{"watermark":1795435200123,"at":"2026-11-23T12:00:00.123Z"}"#)
        );
    }

    #[test]
    fn what_the_aggregator_never_writes_is_malformed() {
        let long_tag = "x".repeat(MAX_TAG_CHARS + 1);
        let max_tag = "é".repeat(MAX_TAG_CHARS);
        assert!(CountsKey::decode(format!("0|a|{max_tag}").as_bytes()).is_ok());
        for key in [
            format!("0|a|{long_tag}"),
            format!("0|f|0|{long_tag}"),
            "-1|a|x".to_string(),
            "0|f|9223372036854775000|x".to_string(),
            "0|c|-9223372036854775808|x".to_string(),
            format!("0|a|{}", "y".repeat(1_000_000)),
        ] {
            let err = CountsKey::decode(key.as_bytes()).expect_err("malformed");
            assert!(err.to_string().len() < 200, "a short error: {err}");
        }
        let decode =
            |key: &str, value: &str| CountsRecord::decode(key.as_bytes(), Some(value.as_bytes()));
        assert!(decode("0|w", r#"{"watermark":9223372036854775000}"#).is_err());
        assert!(decode("0|w", r#"{"watermark":-9223372036854775808}"#).is_err());
        assert!(decode("0|w", r#"{"watermark":1795435200000}"#).is_ok());
        assert!(decode("0|a|x", r#"{"count":-1}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":9007199254740992}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":9007199254740991}"#).is_ok());
        assert!(decode("0|a|x", r#"{"count":1,"spellings":{"X":-1}}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":3,"error":4}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":3,"error":-1}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":3,"error":3}"#).is_ok());
        assert!(decode("0|w", r#"{"watermark":1795435200000,"all_floor":-1}"#).is_err());
        assert!(decode("0|a|x", r#"{"count":1,"spellings":{"":1}}"#).is_err());
        let many: Vec<String> = (0..9).map(|i| format!(r#""x{i}":1"#)).collect();
        assert!(
            decode(
                "0|a|x",
                &format!(r#"{{"count":9,"spellings":{{{}}}}}"#, many.join(","))
            )
            .is_err()
        );
        let long = format!(r#"{{"count":1,"spellings":{{"{long_tag}":1}}}}"#);
        assert!(decode("0|a|x", &long).is_err());
    }

    #[test]
    fn language_records_round_trip_and_refuse_what_is_never_written() {
        for (measure, resolution, lang, tag) in [
            (Measure::Authors, Resolution::Fine, "en", "rust"),
            (Measure::Authors, Resolution::Coarse, "und", "日本|語"),
            (Measure::Posts, Resolution::Coarse, "ja", "日本"),
            (Measure::Posts, Resolution::Fine, "pt", ""),
        ] {
            round_trip(
                CountsRecord::new(
                    CountsKey::Language {
                        partition: 4,
                        measure,
                        resolution,
                        start: 1_795_435_200_000,
                        lang: lang.into(),
                        tag: tag.into(),
                    },
                    Some(3),
                )
                .with_error(1),
            );
        }
        let key = CountsKey::Language {
            partition: 3,
            measure: Measure::Authors,
            resolution: Resolution::Coarse,
            start: 1_795_435_200_000,
            lang: "en".into(),
            tag: "rust".into(),
        };
        assert_eq!(key.encode(), "3|u|c|1795435200000|en|rust");
        let long_tag = "x".repeat(MAX_TAG_CHARS + 1);
        for key in [
            // An empty tag is a language's volume: posts only.
            "0|u|f|0|en|".to_string(),
            "0|l|x|0|en|a".to_string(),
            "0|l|f|0|EN|a".to_string(),
            "0|l|f|0|abcdefghi|a".to_string(),
            "0|l|f|0||a".to_string(),
            "0|l|f|0|e-n|a".to_string(),
            "0|u|f|0|en".to_string(),
            format!("0|u|c|0|en|{long_tag}"),
            "0|u|c|9223372036854775000|en|x".to_string(),
        ] {
            assert!(CountsKey::decode(key.as_bytes()).is_err(), "{key}");
        }
        assert!(CountsKey::decode(b"0|l|f|0|en|").is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for key in [
            "",
            "x|f|1|a",
            "1",
            "1|f|notanumber|a",
            "1|f|5|",
            "1|a|",
            "1|w|x",
            "1|z|a",
        ] {
            assert!(CountsKey::decode(key.as_bytes()).is_err(), "{key}");
        }
        assert!(CountsRecord::decode(b"1|a|x", Some(b"{}")).is_err());
    }
}
