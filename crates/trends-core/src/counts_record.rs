//! The wire format of the compacted counts topic (`hashtag-counts` by default).
//!
//! The aggregator keeps state per *input* partition and writes it to the *same* partition number
//! of the counts topic, so each counts partition holds exactly one input partition's partial
//! counts. The API sums the partials of all partitions.
//!
//! | key                                    | value                               | meaning                                   |
//! |----------------------------------------|-------------------------------------|-------------------------------------------|
//! | `{p}\|f\|{bucket_start_ms}\|{tag}`     | `{"count":N}`                       | posts with `tag` in a fine bucket         |
//! | `{p}\|c\|{bucket_start_ms}\|{tag}`     | `{"count":N}`                       | posts with `tag` in a coarse bucket       |
//! | `{p}\|a\|{tag}`                        | `{"count":N,"spellings":{"Rust":N}}`| posts with `tag` since the topic began, and how often each spelling was seen |
//! | `{p}\|w`                               | `{"watermark":ms,"at":"RFC 3339"}`  | latest event time seen on input partition |
//!
//! `p` is the input partition, `tag` the normalized hashtag (it comes last, so it may contain
//! `|`). Values are absolute, so compaction keeps exactly the current state; a bucket that left
//! the longest window is deleted with a tombstone (a null value) for each of its keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;
use crate::window::Resolution;

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
}

/// A decoded counts-topic record: a key and its value, `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsRecord {
    pub key: CountsKey,
    /// The count, or the watermark in epoch milliseconds for a watermark key.
    pub value: Option<i64>,
    /// For all-time keys: how often each original spelling was seen (at most
    /// [`crate::counter::MAX_SPELLINGS`] of them); empty otherwise.
    pub spellings: Vec<(String, i64)>,
}

#[derive(Serialize, Deserialize)]
struct CountValue {
    count: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    spellings: BTreeMap<String, i64>,
}

#[derive(Serialize, Deserialize)]
struct WatermarkValue {
    watermark: EpochMillis,
    #[serde(default, skip_deserializing)]
    at: String,
}

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
            | CountsKey::Watermark { partition } => *partition,
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
        }
    }

    pub fn decode(key: &[u8]) -> Result<CountsKey, MalformedCountsRecord> {
        let bad = || MalformedCountsRecord(format!("key {:?}", String::from_utf8_lossy(key)));
        let key = std::str::from_utf8(key).map_err(|_| bad())?;
        let (partition, rest) = key.split_once('|').ok_or_else(bad)?;
        let partition: i32 = partition.parse().map_err(|_| bad())?;
        let (kind, rest) = rest.split_once('|').unwrap_or((rest, ""));
        match kind {
            "w" if rest.is_empty() => Ok(CountsKey::Watermark { partition }),
            "a" if !rest.is_empty() => Ok(CountsKey::Total {
                partition,
                tag: rest.to_string(),
            }),
            "f" | "c" => {
                let (start, tag) = rest.split_once('|').ok_or_else(bad)?;
                if tag.is_empty() {
                    return Err(bad());
                }
                Ok(CountsKey::Bucket {
                    partition,
                    resolution: if kind == "f" {
                        Resolution::Fine
                    } else {
                        Resolution::Coarse
                    },
                    start: start.parse().map_err(|_| bad())?,
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
        }
    }

    /// The record's value as bytes, `None` for a tombstone.
    pub fn encode_value(&self) -> Option<String> {
        let value = self.value?;
        Some(match self.key {
            CountsKey::Watermark { .. } => format!(
                r#"{{"watermark":{value},"at":"{}"}}"#,
                crate::format_rfc3339_millis(value)
            ),
            CountsKey::Total { .. } if !self.spellings.is_empty() => {
                serde_json::to_string(&CountValue {
                    count: value,
                    spellings: self.spellings.iter().cloned().collect(),
                })
                .unwrap_or_else(|_| format!(r#"{{"count":{value}}}"#))
            }
            _ => format!(r#"{{"count":{value}}}"#),
        })
    }

    /// Decodes a record as read from Kafka (`value` is `None` for a tombstone).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<CountsRecord, MalformedCountsRecord> {
        let key = CountsKey::decode(key)?;
        let mut spellings = Vec::new();
        let value = match value {
            None => None,
            Some(bytes) => Some(match key {
                CountsKey::Watermark { .. } => {
                    serde_json::from_slice::<WatermarkValue>(bytes)
                        .map_err(|e| MalformedCountsRecord(e.to_string()))?
                        .watermark
                }
                _ => {
                    let value = serde_json::from_slice::<CountValue>(bytes)
                        .map_err(|e| MalformedCountsRecord(e.to_string()))?;
                    spellings = value.spellings.into_iter().collect();
                    value.count
                }
            }),
        };
        Ok(CountsRecord {
            key,
            value,
            spellings,
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
        });
        round_trip(CountsRecord {
            key: CountsKey::Total {
                partition: 11,
                tag: "kafka".into(),
            },
            value: Some(7),
            spellings: vec![("Kafka".into(), 5), ("kafka\"|".into(), 2)],
        });
        round_trip(CountsRecord {
            key: CountsKey::Watermark { partition: 1 },
            value: Some(1_795_435_200_123),
            spellings: vec![],
        });
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
