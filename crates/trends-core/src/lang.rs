//! Languages of the trend track: a post's `lang` reduced to one short code.
//!
//! Posts say their language as BCP 47 tags of every shape (`en`, `en-US`, `pt_BR`, `zh-Hant`,
//! `EN`), or not at all, and the field is chosen by whoever wrote the post: hostile input. The
//! trend track keys counts by language, so what it keys by must be small and bounded:
//! [`code`] keeps the primary language subtag, lowercased, when it is 2–3 ASCII letters (an
//! ISO 639 code), and maps everything else — absent, empty, `und`, `mul`, private use, over-long
//! or non-ASCII — to [`UNDETERMINED`]. So `en-US` and `en_GB` both count as `en`, and at most
//! 26² + 26³ codes exist. Memory stays bounded by the aggregator's per-bucket capacity either
//! way; the API lists the languages by volume (`GET /api/v1/languages`).

/// The code of posts whose language is unknown (BCP 47 "undetermined").
pub const UNDETERMINED: &str = "und";

/// The longest code a counts record may carry (the decoder refuses longer ones).
pub const MAX_CODE_LEN: usize = 8;

/// The trend track's code for a post's `lang` field (see the module docs).
pub fn code(lang: Option<&str>) -> &str {
    let Some(lang) = lang else {
        return UNDETERMINED;
    };
    let primary = lang.split(['-', '_']).next().unwrap_or("");
    let letters = primary.bytes().all(|b| b.is_ascii_alphabetic());
    if !(2..=3).contains(&primary.len()) || !letters {
        return UNDETERMINED;
    }
    if primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return primary;
    }
    // Rare: an upper-case code. Interned to a static string so the hot path stays borrowed.
    lowercase_code(primary)
}

/// `primary` (2–3 ASCII letters) lowercased, as a static string: the codes are few (at most
/// 26² + 26³), so each is leaked once and reused.
fn lowercase_code(primary: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CODES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let lower = primary.to_ascii_lowercase();
    let mut codes = CODES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&code) = codes.get(&lower) {
        return code;
    }
    let code: &'static str = Box::leak(lower.clone().into_boxed_str());
    codes.insert(lower, code);
    code
}

/// Whether `s` is a code a counts record may carry: 1–[`MAX_CODE_LEN`] ASCII lowercase letters.
pub fn is_code(s: &str) -> bool {
    (1..=MAX_CODE_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_subtag_lowercased_or_und() {
        for (lang, want) in [
            (Some("en"), "en"),
            (Some("en-US"), "en"),
            (Some("pt_BR"), "pt"),
            (Some("EN"), "en"),
            (Some("zh-Hant-TW"), "zh"),
            (Some("fil"), "fil"),
            (None, "und"),
            (Some(""), "und"),
            (Some("x-klingon"), "und"),
            (Some("english"), "und"),
            (Some("e"), "und"),
            (Some("日本"), "und"),
            (Some("e1"), "und"),
        ] {
            assert_eq!(code(lang), want, "{lang:?}");
            assert!(is_code(code(lang)));
        }
    }

    #[test]
    fn record_codes_are_short_lowercase_letters() {
        assert!(is_code("und"));
        assert!(!is_code(""));
        assert!(!is_code("EN"));
        assert!(!is_code("abcdefghi"));
        assert!(!is_code("e|n"));
    }
}
