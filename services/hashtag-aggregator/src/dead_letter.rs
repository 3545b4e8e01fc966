//! What a dead letter holds: the record as it came, or, when that would not fit, as much of it
//! as fits plus what identifies the rest.
//!
//! A dead letter is the input record's key and value, unchanged, with headers saying why it
//! was refused and where it came from (README, "What bad input gets"). A record can be up to
//! the broker's limit on the input topic (1 MiB by default), and its copy carries headers on
//! top, so a copy of a record just under the limit would be over the producer's own limit
//! (`message.max.bytes`): refused, the transaction failed, the instance restarted to read the
//! same record again, for ever. So a copy is sized to a budget before it is sent:
//! - the key is kept if it is at most [`MAX_KEY_BYTES`], else cut to that;
//! - the value is kept if key and value fit the budget, else cut to what is left;
//! - a cut copy carries `dlq.truncated=true`, the original value's size
//!   (`dlq.original.size`) and its SHA-256 (`dlq.original.sha256`, lowercase hex), and, when
//!   the key was cut, the key's original size (`dlq.original.key.size`): enough to tell
//!   which record it was, and to check a copy found elsewhere.
//!
//! Pure: no Kafka here, so every case is a unit test.

use sha2::{Digest, Sha256};

/// Longest key a dead letter keeps, in bytes.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

/// Room left in a record for headers and batch overhead: the reason (at most 512 bytes), the
/// source topic (at most 249), the other headers (under 300) and the record's framing.
pub const HEADROOM_BYTES: usize = 16 * 1024;

/// The smallest budget a copy gets, whatever a topic's limit claims: enough for the headers
/// and a useful prefix.
const MIN_BUDGET_BYTES: usize = 4 * 1024;

/// The bytes available to a dead letter's key and value when records may be at most
/// `record_limit` bytes (the smaller of the producer's `message.max.bytes` and the dead-letter
/// topic's `max.message.bytes`).
pub fn budget(record_limit: usize) -> usize {
    record_limit
        .saturating_sub(HEADROOM_BYTES)
        .max(MIN_BUDGET_BYTES)
}

/// A dead letter's key and value, borrowed from the input record, cut to a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// Set when anything was cut.
    pub truncated: Option<Truncation>,
}

/// What a truncated dead letter says about the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The original value's length in bytes.
    pub original_size: usize,
    /// SHA-256 of the original value, lowercase hex.
    pub original_sha256: String,
    /// The original key's length, when the key was cut.
    pub original_key_size: Option<usize>,
}

impl<'a> DeadLetter<'a> {
    /// The copy of a record with this key and value that fits `budget` bytes.
    pub fn of(original_key: Option<&'a [u8]>, value: &'a [u8], budget: usize) -> DeadLetter<'a> {
        let original_key_size = original_key
            .map(<[u8]>::len)
            .filter(|&len| len > MAX_KEY_BYTES);
        let key = original_key.map(|k| &k[..k.len().min(MAX_KEY_BYTES)]);
        let room = budget.saturating_sub(key.map_or(0, <[u8]>::len));
        if original_key_size.is_none() && value.len() <= room {
            return DeadLetter {
                key,
                value,
                truncated: None,
            };
        }
        DeadLetter {
            key,
            value: &value[..value.len().min(room)],
            truncated: Some(Truncation {
                original_size: value.len(),
                original_sha256: hex(&Sha256::digest(value)),
                original_key_size,
            }),
        }
    }
}

/// Lowercase hex of bytes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_that_fits_is_copied_whole() {
        let letter = DeadLetter::of(Some(b"key"), b"value", 100);
        assert_eq!(
            letter,
            DeadLetter {
                key: Some(b"key".as_slice()),
                value: b"value",
                truncated: None
            }
        );
        assert_eq!(DeadLetter::of(None, b"12345", 5).truncated, None);
    }

    #[test]
    fn a_record_over_the_budget_is_cut_and_identified() {
        let value = vec![b'x'; 1_048_000];
        let letter = DeadLetter::of(Some(b"k1"), &value, budget(1_000_000));
        assert_eq!(letter.key, Some(b"k1".as_slice()));
        assert_eq!(letter.value.len(), 1_000_000 - HEADROOM_BYTES - 2);
        assert!(value.starts_with(letter.value));
        let truncated = letter.truncated.expect("cut");
        assert_eq!(truncated.original_size, 1_048_000);
        assert_eq!(truncated.original_key_size, None);
        // The digest of the whole original, checked against a known vector below.
        assert_eq!(truncated.original_sha256.len(), 64);
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_huge_key_is_cut_too() {
        let key = vec![0xffu8; 100_000];
        let letter = DeadLetter::of(Some(&key), b"small", 50_000);
        assert_eq!(letter.key.map(<[u8]>::len), Some(MAX_KEY_BYTES));
        assert_eq!(letter.value, b"small");
        let truncated = letter.truncated.expect("cut");
        assert_eq!(truncated.original_key_size, Some(100_000));
        assert_eq!(truncated.original_size, 5);
    }

    #[test]
    fn the_budget_leaves_room_and_has_a_floor() {
        assert_eq!(budget(1_000_000), 1_000_000 - HEADROOM_BYTES);
        assert_eq!(budget(100), MIN_BUDGET_BYTES);
    }
}
