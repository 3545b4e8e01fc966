//! Hashtag extraction and normalization.
//!
//! # What counts as a hashtag
//!
//! The rules are those of [twitter-text](https://github.com/twitter/twitter-text) (Apache-2.0),
//! the reference most clients highlight hashtags by: the `VALID_HASHTAG` and
//! `INVALID_HASHTAG_MATCH_END` patterns of its `Regex.java` (the JS `regexp/validHashtag.js` is
//! the same), and the URL-overlap step of `Extractor.extractHashtagsWithIndices`. They are
//! re-implemented here as a single forward scan, with no regex engine, and checked against
//! twitter-text's conformance cases (`tests/conformance.rs`).
//!
//! 1. **Sign.** `#` or the fullwidth `＃` (U+FF03), not directly followed by U+FE0F (emoji
//!    presentation) or U+20E3 (combining keycap): the keycap emoji `#️⃣` is not a hashtag.
//! 2. **Body.** The longest run of *hashtag characters* after the sign, which are
//!    - letters and marks: `\p{L}` and `\p{M}`;
//!    - decimal digits: `\p{Nd}`, in any script (`٣`, `३`, `３`);
//!    - twitter-text's `HASHTAG_SPECIAL_CHARS`: `_`, U+200C ZERO WIDTH NON-JOINER,
//!      U+200D ZERO WIDTH JOINER, U+A67E CYRILLIC KAVYKA, U+05BE HEBREW PUNCTUATION MAQAF,
//!      U+05F3 HEBREW PUNCTUATION GERESH, U+05F4 HEBREW PUNCTUATION GERSHAYIM, U+FF5E FULLWIDTH
//!      TILDE, U+301C WAVE DASH, U+309B/U+309C KATAKANA-HIRAGANA (SEMI-)VOICED SOUND MARK,
//!      U+30A0 KATAKANA-HIRAGANA DOUBLE HYPHEN, U+30FB KATAKANA MIDDLE DOT, U+3003 DITTO MARK,
//!      U+0F0B/U+0F0C TIBETAN MARK (DELIMITER) TSHEG (BSTAR), U+00B7 MIDDLE DOT.
//!
//!    The run is a hashtag only if it holds at least one letter or mark: `#16`, `#_` and `#〃`
//!    are not hashtags, `#1st` and `#web3` are. The body ends at the first other character
//!    (space, punctuation, symbol, emoji), so `#rust!` is `rust` and `#fire🔥` is `fire`.
//! 3. **Before the sign**: the start of the text, an emoji variation selector (U+FE0E, U+FE0F:
//!    they are marks, hence named explicitly), or any character that is neither a hashtag
//!    character nor `&`. So `(#a`, `。#a`, `🔥#a` and `❤️#a` are hashtags, while `a#b`,
//!    `東京#a` and the HTML entity `&#39;` are not. A character that belongs to a previous match
//!    (the `#`s and body of an earlier candidate, even a rejected one) cannot serve, because
//!    regex matches do not overlap: in `#a##b` only `b` is a hashtag.
//! 4. **Invalid end.** A candidate directly followed by `#`, `＃` or `://` is dropped whole:
//!    `#foo#bar` and `#http://x.org` yield nothing.
//! 5. **URLs.** A candidate that overlaps a URL is dropped (`https://example.com/#intro`), see
//!    below.
//!
//! Hashtags are returned as written, without the sign, in order of appearance; the same tag
//! written twice is returned twice.
//!
//! ## Character tables
//!
//! `\p{L}`, `\p{M}` and `\p{Nd}` are the Unicode general categories (Unicode 18, as the
//! `unicode-normalization` version this crate uses), compiled into the `CHAR_RANGES` table below
//! (expanded at compile time into a 16 KiB two-bit table for the BMP, so a lookup is one
//! load); note that `char::is_alphabetic` is a different property. twitter-text's Java also
//! lists extra ranges to patch the older Unicode of old JDKs; in Unicode 18 all of them are
//! already letters, marks or digits, except the private-use code points U+F870–U+F87F,
//! U+F882, U+F884–U+F89F, U+F8B8 and U+F8C1–U+F8D6, which are kept as letters for parity. The
//! table is checked against the `unicode-properties` crate, code point by code point, by a
//! unit test (`char_ranges_match_unicode`) whose failure message prints the table anew, ready
//! to paste, when the Unicode data changes.
//!
//! ## URL recognition (an approximation of twitter-text's)
//!
//! twitter-text extracts URLs with its full URL grammar (IANA TLD lists, IDN, t.co rules) and
//! drops the hashtags that overlap one. This module only needs to know whether an ASCII `#`
//! lies inside a URL (the fullwidth `＃` is never a URL character), and recognizes, within the
//! run of non-blank text before that `#`:
//! - `http://` or `https://` (any case) + a host; the host's labels may use any letters,
//!   digits, marks, `-` and `_`;
//! - or, without a scheme, a host of ASCII letters, digits, Latin accented letters, `-` and
//!   `_` (`www.example.org`, `example.com`, `t.co`), not preceded by `-`, `_`, `.` or `/`;
//! - the URL must not be preceded by an ASCII letter or digit, `@`, `＠`, `$`, `#` or `＃`;
//! - a host has at least two labels and its last label (the TLD) is two or more letters, or
//!   punycode `xn--…`; **any** such TLD is accepted (`notes.txt/#a` counts as a URL, where
//!   twitter-text, which checks the IANA list, would extract `a`), and IP addresses and
//!   single-label hosts (`localhost`) are not URLs, as in twitter-text;
//! - then an optional `:port`, a path after `/` (ASCII letters, digits, ``!*';:=+,.$/%#[]-_~|&@``,
//!   `–`, Latin accented and Cyrillic letters, balanced parentheses up to two levels) and a
//!   query after `?` (ASCII letters, digits, ``!?*'();:&=+$/%#[]-_.,~|@``).
//!
//! A hashtag is dropped when such a URL starts before its `#` and its path or query reaches
//! that `#`: `https://example.com/#intro`, `www.example.org/docs/#setup`,
//! `example.com/?tab=#d`, `https://en.wikipedia.org/wiki/Rust_(language)#History`. Not
//! handled like twitter-text: unknown TLDs (above), the t.co slug limit, URL length limits, and
//! URLs in other schemes (`ftp://host/#a` yields `a`, as in twitter-text).
//!
//! # Normalization for counting
//!
//! Two spellings are the same hashtag when their *counting form* is equal: [`normalize`]
//! strips one leading `#` or `＃`, applies NFKC, then the full Unicode lowercase mapping of
//! `char::to_lowercase` (no locale, no case folding). So `#Rust`, `#RUST` and the fullwidth
//! `＃Ｒｕｓｔ` all count as `rust`. Corner cases:
//! - NFKC compatibility folds: fullwidth and halfwidth forms (`Ｒｕｓｔ` → `rust`, `ｶﾀｶﾅ` →
//!   `カタカナ`), ligatures (`ﬁnance` → `finance`), superscripts (`x²` → `x2`), and
//!   decomposed accents are composed (`e` + U+0301 → `é`).
//! - Turkish: `İ` (U+0130) lowercases to `i̇` (`i` + U+0307 combining dot), so `#İstanbul` and
//!   `#istanbul` stay different; the dotless `ı` stays `ı`.
//! - German `ß` stays `ß` (lowercasing never folds it to `ss`), and `ẞ` becomes `ß`.
//! - Greek capital sigma always becomes `σ` (`char::to_lowercase` has no word-final rule) while
//!   a written final `ς` stays `ς`: `ΟΔΟΣ` → `οδοσ`, but `οδός` → `οδός`.
//! - Lowercasing can leave a string that is not NFKC any more (`J` + U+030C caron is NFKC, but
//!   `j` + U+030C composes to `ǰ`), so such a result is normalized once more; the counting
//!   form is therefore idempotent: normalizing it again (without a leading sign) gives it back.
//!
//! Fast paths: ASCII tags are lowercased byte by byte with no normalization machinery. Other
//! tags are folded character by character, with no normalization pass, when every character
//! is one of: an NFKC-stable starter (canonical combining class 0, `NFKC_Quick_Check=Yes`)
//! that lowercases to such a character; a fullwidth ASCII letter, digit or `＿` (NFKC: its
//! ASCII form); a combining mark that NFKC keeps and nothing composes with (quick check Yes),
//! in non-decreasing combining class after its starter. That is most tags in Latin,
//! Cyrillic, Greek, Arabic, Hebrew, Devanagari (virama included), CJK, Hangul syllables, and
//! fullwidth Latin (`＃Ｒｕｓｔ`). The per-character verdict comes from a 16 KiB table computed
//! on first use (about 3 ms, once per process) from the same `unicode-normalization` and `std`
//! tables; `fold_fast_into` says why the result is exactly the general path's, and tests
//! compare the two on every BMP character and on generated strings. The rest take the general
//! path, which skips the first NFKC pass when `is_nfkc_quick` says the tag already is NFKC.
//!
//! # Hot path
//!
//! [`for_each_hashtag`] hands out `&str` slices of the input and never allocates;
//! [`normalize_into`] writes into a caller's reused `String`, and allocates only if that
//! buffer must grow (never for ASCII tags that fit). [`extract_hashtags`] and [`normalize`] are
//! the convenient allocating forms.

use std::sync::OnceLock;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc, is_nfkc_quick};

/// The fullwidth number sign, a hashtag sign like `#`.
const FULLWIDTH_SIGN: char = '＃';

// ---------------------------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------------------------

/// Not a hashtag character.
const NO: u8 = 0;
/// A letter or mark (`\p{L}`, `\p{M}`): a hashtag needs at least one.
const L: u8 = 1;
/// A decimal digit (`\p{Nd}`).
const D: u8 = 2;
/// One of twitter-text's `HASHTAG_SPECIAL_CHARS`.
const S: u8 = 3;

/// The class of every ASCII character.
const ASCII_CLASS: [u8; 128] = {
    let mut table = [NO; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => L,
            b'0'..=b'9' => D,
            b'_' => S,
            _ => NO,
        };
        b += 1;
    }
    table
};

/// The hashtag characters beyond ASCII: sorted, disjoint `(first, last, class)` ranges of code
/// points, adjacent ranges of one class merged. Generated from the Unicode 18 general
/// categories (L and M → `L`, Nd → `D`), twitter-text's special characters (`S`) and its
/// private-use extras (`L`); `tests::char_ranges_match_unicode` checks it and,
/// when it is stale, prints it anew.
#[rustfmt::skip]
static CHAR_RANGES: [(u32, u32, u8); 851] = [
    (0x00AA, 0x00AA, L), (0x00B5, 0x00B5, L), (0x00B7, 0x00B7, S), (0x00BA, 0x00BA, L),
    (0x00C0, 0x00D6, L), (0x00D8, 0x00F6, L), (0x00F8, 0x02C1, L), (0x02C6, 0x02D1, L),
    (0x02E0, 0x02E4, L), (0x02EC, 0x02EC, L), (0x02EE, 0x02EE, L), (0x0300, 0x0374, L),
    (0x0376, 0x0377, L), (0x037A, 0x037D, L), (0x037F, 0x037F, L), (0x0386, 0x0386, L),
    (0x0388, 0x038A, L), (0x038C, 0x038C, L), (0x038E, 0x03A1, L), (0x03A3, 0x03F5, L),
    (0x03F7, 0x0481, L), (0x0483, 0x052F, L), (0x0531, 0x0556, L), (0x0558, 0x0559, L),
    (0x0560, 0x0588, L), (0x058B, 0x058C, L), (0x0591, 0x05BD, L), (0x05BE, 0x05BE, S),
    (0x05BF, 0x05BF, L), (0x05C1, 0x05C2, L), (0x05C4, 0x05C5, L), (0x05C7, 0x05C9, L),
    (0x05D0, 0x05EA, L), (0x05EF, 0x05F2, L), (0x05F3, 0x05F4, S), (0x0610, 0x061A, L),
    (0x0620, 0x065F, L), (0x0660, 0x0669, D), (0x066E, 0x06D3, L), (0x06D5, 0x06DC, L),
    (0x06DF, 0x06E8, L), (0x06EA, 0x06EF, L), (0x06F0, 0x06F9, D), (0x06FA, 0x06FC, L),
    (0x06FF, 0x06FF, L), (0x0710, 0x074A, L), (0x074D, 0x07B1, L), (0x07C0, 0x07C9, D),
    (0x07CA, 0x07F5, L), (0x07FA, 0x07FA, L), (0x07FD, 0x07FD, L), (0x0800, 0x082D, L),
    (0x0840, 0x085B, L), (0x0860, 0x086A, L), (0x0870, 0x0887, L), (0x0889, 0x088F, L),
    (0x0897, 0x08E1, L), (0x08E3, 0x0963, L), (0x0966, 0x096F, D), (0x0971, 0x0983, L),
    (0x0985, 0x098C, L), (0x098F, 0x0990, L), (0x0993, 0x09A8, L), (0x09AA, 0x09B0, L),
    (0x09B2, 0x09B2, L), (0x09B6, 0x09B9, L), (0x09BC, 0x09C4, L), (0x09C7, 0x09C8, L),
    (0x09CB, 0x09CE, L), (0x09D7, 0x09D7, L), (0x09DC, 0x09DD, L), (0x09DF, 0x09E3, L),
    (0x09E6, 0x09EF, D), (0x09F0, 0x09F1, L), (0x09FC, 0x09FC, L), (0x09FE, 0x09FE, L),
    (0x0A01, 0x0A03, L), (0x0A05, 0x0A0A, L), (0x0A0F, 0x0A10, L), (0x0A13, 0x0A28, L),
    (0x0A2A, 0x0A30, L), (0x0A32, 0x0A33, L), (0x0A35, 0x0A36, L), (0x0A38, 0x0A39, L),
    (0x0A3C, 0x0A3C, L), (0x0A3E, 0x0A42, L), (0x0A47, 0x0A48, L), (0x0A4B, 0x0A4D, L),
    (0x0A51, 0x0A51, L), (0x0A59, 0x0A5C, L), (0x0A5E, 0x0A5E, L), (0x0A66, 0x0A6F, D),
    (0x0A70, 0x0A75, L), (0x0A81, 0x0A83, L), (0x0A85, 0x0A8D, L), (0x0A8F, 0x0A91, L),
    (0x0A93, 0x0AA8, L), (0x0AAA, 0x0AB0, L), (0x0AB2, 0x0AB3, L), (0x0AB5, 0x0AB9, L),
    (0x0ABC, 0x0AC5, L), (0x0AC7, 0x0AC9, L), (0x0ACB, 0x0ACD, L), (0x0AD0, 0x0AD0, L),
    (0x0AE0, 0x0AE3, L), (0x0AE6, 0x0AEF, D), (0x0AF9, 0x0AFF, L), (0x0B01, 0x0B03, L),
    (0x0B05, 0x0B0C, L), (0x0B0F, 0x0B10, L), (0x0B13, 0x0B28, L), (0x0B2A, 0x0B30, L),
    (0x0B32, 0x0B33, L), (0x0B35, 0x0B39, L), (0x0B3C, 0x0B44, L), (0x0B47, 0x0B48, L),
    (0x0B4B, 0x0B4D, L), (0x0B53, 0x0B57, L), (0x0B5C, 0x0B5D, L), (0x0B5F, 0x0B63, L),
    (0x0B66, 0x0B6F, D), (0x0B71, 0x0B71, L), (0x0B82, 0x0B83, L), (0x0B85, 0x0B8A, L),
    (0x0B8E, 0x0B90, L), (0x0B92, 0x0B95, L), (0x0B99, 0x0B9A, L), (0x0B9C, 0x0B9C, L),
    (0x0B9E, 0x0B9F, L), (0x0BA3, 0x0BA4, L), (0x0BA8, 0x0BAA, L), (0x0BAE, 0x0BB9, L),
    (0x0BBE, 0x0BC2, L), (0x0BC6, 0x0BC8, L), (0x0BCA, 0x0BCD, L), (0x0BD0, 0x0BD0, L),
    (0x0BD7, 0x0BD7, L), (0x0BE6, 0x0BEF, D), (0x0C00, 0x0C0C, L), (0x0C0E, 0x0C10, L),
    (0x0C12, 0x0C28, L), (0x0C2A, 0x0C39, L), (0x0C3C, 0x0C44, L), (0x0C46, 0x0C48, L),
    (0x0C4A, 0x0C4D, L), (0x0C55, 0x0C56, L), (0x0C58, 0x0C5A, L), (0x0C5C, 0x0C5D, L),
    (0x0C60, 0x0C63, L), (0x0C66, 0x0C6F, D), (0x0C80, 0x0C83, L), (0x0C85, 0x0C8C, L),
    (0x0C8E, 0x0C90, L), (0x0C92, 0x0CA8, L), (0x0CAA, 0x0CB3, L), (0x0CB5, 0x0CB9, L),
    (0x0CBC, 0x0CC4, L), (0x0CC6, 0x0CC8, L), (0x0CCA, 0x0CCD, L), (0x0CD5, 0x0CD6, L),
    (0x0CDC, 0x0CDE, L), (0x0CE0, 0x0CE3, L), (0x0CE6, 0x0CEF, D), (0x0CF1, 0x0CF3, L),
    (0x0D00, 0x0D0C, L), (0x0D0E, 0x0D10, L), (0x0D12, 0x0D44, L), (0x0D46, 0x0D48, L),
    (0x0D4A, 0x0D4E, L), (0x0D54, 0x0D57, L), (0x0D5F, 0x0D63, L), (0x0D66, 0x0D6F, D),
    (0x0D7A, 0x0D7F, L), (0x0D81, 0x0D83, L), (0x0D85, 0x0D96, L), (0x0D9A, 0x0DB1, L),
    (0x0DB3, 0x0DBB, L), (0x0DBD, 0x0DBD, L), (0x0DC0, 0x0DC6, L), (0x0DCA, 0x0DCA, L),
    (0x0DCF, 0x0DD4, L), (0x0DD6, 0x0DD6, L), (0x0DD8, 0x0DDF, L), (0x0DE6, 0x0DEF, D),
    (0x0DF2, 0x0DF3, L), (0x0E01, 0x0E3A, L), (0x0E40, 0x0E4E, L), (0x0E50, 0x0E59, D),
    (0x0E81, 0x0E82, L), (0x0E84, 0x0E84, L), (0x0E86, 0x0E8A, L), (0x0E8C, 0x0EA3, L),
    (0x0EA5, 0x0EA5, L), (0x0EA7, 0x0EBD, L), (0x0EC0, 0x0EC4, L), (0x0EC6, 0x0EC6, L),
    (0x0EC8, 0x0ECE, L), (0x0ED0, 0x0ED9, D), (0x0EDC, 0x0EDF, L), (0x0F00, 0x0F00, L),
    (0x0F0B, 0x0F0C, S), (0x0F18, 0x0F19, L), (0x0F20, 0x0F29, D), (0x0F35, 0x0F35, L),
    (0x0F37, 0x0F37, L), (0x0F39, 0x0F39, L), (0x0F3E, 0x0F47, L), (0x0F49, 0x0F6C, L),
    (0x0F71, 0x0F84, L), (0x0F86, 0x0F97, L), (0x0F99, 0x0FBC, L), (0x0FC6, 0x0FC6, L),
    (0x1000, 0x103F, L), (0x1040, 0x1049, D), (0x1050, 0x108F, L), (0x1090, 0x1099, D),
    (0x109A, 0x109D, L), (0x10A0, 0x10C5, L), (0x10C7, 0x10C7, L), (0x10CD, 0x10CD, L),
    (0x10D0, 0x10FA, L), (0x10FC, 0x1248, L), (0x124A, 0x124D, L), (0x1250, 0x1256, L),
    (0x1258, 0x1258, L), (0x125A, 0x125D, L), (0x1260, 0x1288, L), (0x128A, 0x128D, L),
    (0x1290, 0x12B0, L), (0x12B2, 0x12B5, L), (0x12B8, 0x12BE, L), (0x12C0, 0x12C0, L),
    (0x12C2, 0x12C5, L), (0x12C8, 0x12D6, L), (0x12D8, 0x1310, L), (0x1312, 0x1315, L),
    (0x1318, 0x135A, L), (0x135D, 0x135F, L), (0x1380, 0x138F, L), (0x13A0, 0x13F5, L),
    (0x13F8, 0x13FD, L), (0x1401, 0x166C, L), (0x166F, 0x167F, L), (0x1681, 0x169A, L),
    (0x16A0, 0x16EA, L), (0x16F1, 0x16F8, L), (0x1700, 0x1715, L), (0x171F, 0x1734, L),
    (0x1740, 0x1753, L), (0x1760, 0x176C, L), (0x176E, 0x1770, L), (0x1772, 0x1773, L),
    (0x1780, 0x17D3, L), (0x17D7, 0x17D7, L), (0x17DC, 0x17DD, L), (0x17E0, 0x17E9, D),
    (0x180B, 0x180D, L), (0x180F, 0x180F, L), (0x1810, 0x1819, D), (0x1820, 0x1878, L),
    (0x1880, 0x18AA, L), (0x18B0, 0x18F5, L), (0x1900, 0x191E, L), (0x1920, 0x192B, L),
    (0x1930, 0x193B, L), (0x1946, 0x194F, D), (0x1950, 0x196D, L), (0x1970, 0x1974, L),
    (0x1980, 0x19AB, L), (0x19B0, 0x19C9, L), (0x19D0, 0x19D9, D), (0x1A00, 0x1A1B, L),
    (0x1A20, 0x1A5E, L), (0x1A60, 0x1A7C, L), (0x1A7F, 0x1A7F, L), (0x1A80, 0x1A89, D),
    (0x1A90, 0x1A99, D), (0x1AA7, 0x1AA7, L), (0x1AB0, 0x1AF0, L), (0x1B00, 0x1B4C, L),
    (0x1B50, 0x1B59, D), (0x1B6B, 0x1B73, L), (0x1B80, 0x1BAF, L), (0x1BB0, 0x1BB9, D),
    (0x1BBA, 0x1BF3, L), (0x1C00, 0x1C37, L), (0x1C40, 0x1C49, D), (0x1C4D, 0x1C4F, L),
    (0x1C50, 0x1C59, D), (0x1C5A, 0x1C7D, L), (0x1C80, 0x1C8A, L), (0x1C90, 0x1CBA, L),
    (0x1CBD, 0x1CBF, L), (0x1CD0, 0x1CD2, L), (0x1CD4, 0x1CFA, L), (0x1D00, 0x1F15, L),
    (0x1F18, 0x1F1D, L), (0x1F20, 0x1F45, L), (0x1F48, 0x1F4D, L), (0x1F50, 0x1F57, L),
    (0x1F59, 0x1F59, L), (0x1F5B, 0x1F5B, L), (0x1F5D, 0x1F5D, L), (0x1F5F, 0x1F7D, L),
    (0x1F80, 0x1FB4, L), (0x1FB6, 0x1FBC, L), (0x1FBE, 0x1FBE, L), (0x1FC2, 0x1FC4, L),
    (0x1FC6, 0x1FCC, L), (0x1FD0, 0x1FD3, L), (0x1FD6, 0x1FDB, L), (0x1FE0, 0x1FEC, L),
    (0x1FF2, 0x1FF4, L), (0x1FF6, 0x1FFC, L), (0x200C, 0x200D, S), (0x2071, 0x2071, L),
    (0x207F, 0x207F, L), (0x208F, 0x209F, L), (0x20D0, 0x20F0, L), (0x2102, 0x2102, L),
    (0x2107, 0x2107, L), (0x210A, 0x2113, L), (0x2115, 0x2115, L), (0x2119, 0x211D, L),
    (0x2124, 0x2124, L), (0x2126, 0x2126, L), (0x2128, 0x2128, L), (0x212A, 0x212D, L),
    (0x212F, 0x2139, L), (0x213C, 0x213F, L), (0x2145, 0x2149, L), (0x214E, 0x214E, L),
    (0x2183, 0x2184, L), (0x2C00, 0x2CE4, L), (0x2CEB, 0x2CF3, L), (0x2D00, 0x2D25, L),
    (0x2D27, 0x2D27, L), (0x2D2D, 0x2D2D, L), (0x2D30, 0x2D67, L), (0x2D6F, 0x2D6F, L),
    (0x2D7F, 0x2D96, L), (0x2DA0, 0x2DA6, L), (0x2DA8, 0x2DAE, L), (0x2DB0, 0x2DB6, L),
    (0x2DB8, 0x2DBE, L), (0x2DC0, 0x2DC6, L), (0x2DC8, 0x2DCE, L), (0x2DD0, 0x2DD6, L),
    (0x2DD8, 0x2DDE, L), (0x2DE0, 0x2DFF, L), (0x2E2F, 0x2E2F, L), (0x3003, 0x3003, S),
    (0x3005, 0x3006, L), (0x301C, 0x301C, S), (0x302A, 0x302F, L), (0x3031, 0x3035, L),
    (0x303B, 0x303C, L), (0x3041, 0x3096, L), (0x3099, 0x309A, L), (0x309B, 0x309C, S),
    (0x309D, 0x309F, L), (0x30A0, 0x30A0, S), (0x30A1, 0x30FA, L), (0x30FB, 0x30FB, S),
    (0x30FC, 0x30FF, L), (0x3105, 0x312F, L), (0x3131, 0x318E, L), (0x31A0, 0x31BF, L),
    (0x31F0, 0x31FF, L), (0x3400, 0x4DBF, L), (0x4E00, 0xA48C, L), (0xA4D0, 0xA4FD, L),
    (0xA500, 0xA60C, L), (0xA610, 0xA61F, L), (0xA620, 0xA629, D), (0xA62A, 0xA62B, L),
    (0xA640, 0xA672, L), (0xA674, 0xA67D, L), (0xA67E, 0xA67E, S), (0xA67F, 0xA6E5, L),
    (0xA6F0, 0xA6F1, L), (0xA717, 0xA71F, L), (0xA722, 0xA788, L), (0xA78B, 0xA7DD, L),
    (0xA7E2, 0xA7E2, L), (0xA7F1, 0xA827, L), (0xA82C, 0xA82C, L), (0xA840, 0xA873, L),
    (0xA880, 0xA8C5, L), (0xA8D0, 0xA8D9, D), (0xA8E0, 0xA8F7, L), (0xA8FB, 0xA8FB, L),
    (0xA8FD, 0xA8FF, L), (0xA900, 0xA909, D), (0xA90A, 0xA92D, L), (0xA930, 0xA953, L),
    (0xA960, 0xA97C, L), (0xA980, 0xA9C0, L), (0xA9CF, 0xA9CF, L), (0xA9D0, 0xA9D9, D),
    (0xA9E0, 0xA9EF, L), (0xA9F0, 0xA9F9, D), (0xA9FA, 0xA9FE, L), (0xAA00, 0xAA36, L),
    (0xAA40, 0xAA4D, L), (0xAA50, 0xAA59, D), (0xAA60, 0xAA76, L), (0xAA7A, 0xAAC2, L),
    (0xAADB, 0xAADD, L), (0xAAE0, 0xAAEF, L), (0xAAF2, 0xAAF6, L), (0xAB01, 0xAB06, L),
    (0xAB09, 0xAB0E, L), (0xAB11, 0xAB16, L), (0xAB20, 0xAB26, L), (0xAB28, 0xAB2E, L),
    (0xAB30, 0xAB5A, L), (0xAB5C, 0xAB69, L), (0xAB6C, 0xAB6D, L), (0xAB70, 0xABEA, L),
    (0xABEC, 0xABED, L), (0xABF0, 0xABF9, D), (0xAC00, 0xD7A3, L), (0xD7B0, 0xD7C6, L),
    (0xD7CB, 0xD7FB, L), (0xF870, 0xF87F, L), (0xF882, 0xF882, L), (0xF884, 0xF89F, L),
    (0xF8B8, 0xF8B8, L), (0xF8C1, 0xF8D6, L), (0xF900, 0xFA6D, L), (0xFA70, 0xFAD9, L),
    (0xFB00, 0xFB06, L), (0xFB13, 0xFB17, L), (0xFB1D, 0xFB28, L), (0xFB2A, 0xFB36, L),
    (0xFB38, 0xFB3C, L), (0xFB3E, 0xFB3E, L), (0xFB40, 0xFB41, L), (0xFB43, 0xFB44, L),
    (0xFB46, 0xFBB1, L), (0xFBD3, 0xFD3D, L), (0xFD50, 0xFD8F, L), (0xFD92, 0xFDC7, L),
    (0xFDF0, 0xFDFB, L), (0xFE00, 0xFE0F, L), (0xFE20, 0xFE2F, L), (0xFE70, 0xFE74, L),
    (0xFE76, 0xFEFC, L), (0xFF10, 0xFF19, D), (0xFF21, 0xFF3A, L), (0xFF41, 0xFF5A, L),
    (0xFF5E, 0xFF5E, S), (0xFF66, 0xFFBE, L), (0xFFC2, 0xFFC7, L), (0xFFCA, 0xFFCF, L),
    (0xFFD2, 0xFFD7, L), (0xFFDA, 0xFFDC, L), (0x10000, 0x1000B, L), (0x1000D, 0x10026, L),
    (0x10028, 0x1003A, L), (0x1003C, 0x1003D, L), (0x1003F, 0x1004D, L), (0x10050, 0x1005D, L),
    (0x10080, 0x100FA, L), (0x101FD, 0x101FD, L), (0x10280, 0x1029C, L), (0x102A0, 0x102D0, L),
    (0x102E0, 0x102E0, L), (0x10300, 0x1031F, L), (0x1032D, 0x10340, L), (0x10342, 0x10349, L),
    (0x10350, 0x1037A, L), (0x10380, 0x1039D, L), (0x103A0, 0x103C3, L), (0x103C8, 0x103CF, L),
    (0x10400, 0x1049D, L), (0x104A0, 0x104A9, D), (0x104B0, 0x104D3, L), (0x104D8, 0x104FB, L),
    (0x10500, 0x10527, L), (0x10530, 0x10563, L), (0x10570, 0x1057A, L), (0x1057C, 0x1058A, L),
    (0x1058C, 0x10592, L), (0x10594, 0x10595, L), (0x10597, 0x105A1, L), (0x105A3, 0x105B1, L),
    (0x105B3, 0x105B9, L), (0x105BB, 0x105BC, L), (0x105C0, 0x105F3, L), (0x10600, 0x10736, L),
    (0x10740, 0x10755, L), (0x10760, 0x10767, L), (0x10780, 0x10785, L), (0x10787, 0x107B0, L),
    (0x107B2, 0x107BF, L), (0x10800, 0x10805, L), (0x10808, 0x10808, L), (0x1080A, 0x10835, L),
    (0x10837, 0x10838, L), (0x1083C, 0x1083C, L), (0x1083F, 0x10855, L), (0x10860, 0x10876, L),
    (0x10880, 0x1089E, L), (0x108E0, 0x108F2, L), (0x108F4, 0x108F5, L), (0x10900, 0x10915, L),
    (0x10920, 0x10939, L), (0x10940, 0x10959, L), (0x10980, 0x109B7, L), (0x109BE, 0x109BF, L),
    (0x10A00, 0x10A03, L), (0x10A05, 0x10A06, L), (0x10A0C, 0x10A13, L), (0x10A15, 0x10A17, L),
    (0x10A19, 0x10A35, L), (0x10A38, 0x10A3A, L), (0x10A3F, 0x10A3F, L), (0x10A60, 0x10A7C, L),
    (0x10A80, 0x10A9C, L), (0x10AC0, 0x10AC7, L), (0x10AC9, 0x10AE6, L), (0x10B00, 0x10B35, L),
    (0x10B40, 0x10B55, L), (0x10B60, 0x10B72, L), (0x10B80, 0x10B91, L), (0x10C00, 0x10C48, L),
    (0x10C80, 0x10CB2, L), (0x10CC0, 0x10CF2, L), (0x10D00, 0x10D27, L), (0x10D30, 0x10D39, D),
    (0x10D40, 0x10D49, D), (0x10D4A, 0x10D65, L), (0x10D69, 0x10D6D, L), (0x10D6F, 0x10D85, L),
    (0x10E80, 0x10EA9, L), (0x10EAB, 0x10EAC, L), (0x10EB0, 0x10EB1, L), (0x10EC2, 0x10EC7, L),
    (0x10ECB, 0x10ECF, L), (0x10ED9, 0x10EEE, L), (0x10EF0, 0x10F1C, L), (0x10F27, 0x10F27, L),
    (0x10F30, 0x10F50, L), (0x10F70, 0x10F85, L), (0x10FB0, 0x10FC4, L), (0x10FE0, 0x10FF6, L),
    (0x11000, 0x11046, L), (0x11066, 0x1106F, D), (0x11070, 0x11075, L), (0x1107F, 0x110BA, L),
    (0x110C2, 0x110C2, L), (0x110D0, 0x110E8, L), (0x110F0, 0x110F9, D), (0x11100, 0x11134, L),
    (0x11136, 0x1113F, D), (0x11144, 0x11147, L), (0x11150, 0x11173, L), (0x11176, 0x11176, L),
    (0x11180, 0x111C4, L), (0x111C9, 0x111CC, L), (0x111CE, 0x111CF, L), (0x111D0, 0x111D9, D),
    (0x111DA, 0x111DA, L), (0x111DC, 0x111DC, L), (0x11200, 0x11211, L), (0x11213, 0x11237, L),
    (0x1123E, 0x11241, L), (0x11280, 0x11286, L), (0x11288, 0x11288, L), (0x1128A, 0x1128D, L),
    (0x1128F, 0x1129D, L), (0x1129F, 0x112A8, L), (0x112B0, 0x112EA, L), (0x112F0, 0x112F9, D),
    (0x11300, 0x11303, L), (0x11305, 0x1130C, L), (0x1130F, 0x11310, L), (0x11313, 0x11328, L),
    (0x1132A, 0x11330, L), (0x11332, 0x11333, L), (0x11335, 0x11339, L), (0x1133B, 0x11344, L),
    (0x11347, 0x11348, L), (0x1134B, 0x1134D, L), (0x11350, 0x11350, L), (0x11357, 0x11357, L),
    (0x1135D, 0x11363, L), (0x11366, 0x1136C, L), (0x11370, 0x11374, L), (0x11380, 0x11389, L),
    (0x1138B, 0x1138B, L), (0x1138E, 0x1138E, L), (0x11390, 0x113B5, L), (0x113B7, 0x113C0, L),
    (0x113C2, 0x113C2, L), (0x113C5, 0x113C5, L), (0x113C7, 0x113CA, L), (0x113CC, 0x113D3, L),
    (0x113E1, 0x113E2, L), (0x11400, 0x1144A, L), (0x11450, 0x11459, D), (0x1145E, 0x11461, L),
    (0x11480, 0x114C5, L), (0x114C7, 0x114C7, L), (0x114D0, 0x114D9, D), (0x11580, 0x115B5, L),
    (0x115B8, 0x115C0, L), (0x115D8, 0x115DD, L), (0x11600, 0x11640, L), (0x11644, 0x11644, L),
    (0x11650, 0x11659, D), (0x11680, 0x116B8, L), (0x116C0, 0x116C9, D), (0x116D0, 0x116E3, D),
    (0x11700, 0x1171A, L), (0x1171D, 0x1172B, L), (0x11730, 0x11739, D), (0x11740, 0x11746, L),
    (0x11800, 0x1183A, L), (0x118A0, 0x118DF, L), (0x118E0, 0x118E9, D), (0x118FF, 0x11906, L),
    (0x11909, 0x11909, L), (0x1190C, 0x11913, L), (0x11915, 0x11916, L), (0x11918, 0x11935, L),
    (0x11937, 0x11938, L), (0x1193B, 0x11943, L), (0x11950, 0x11959, D), (0x119A0, 0x119A7, L),
    (0x119AA, 0x119D7, L), (0x119DA, 0x119E1, L), (0x119E3, 0x119E4, L), (0x11A00, 0x11A3E, L),
    (0x11A47, 0x11A47, L), (0x11A50, 0x11A99, L), (0x11A9D, 0x11A9D, L), (0x11AB0, 0x11AF8, L),
    (0x11B0A, 0x11B0A, L), (0x11B60, 0x11B67, L), (0x11BC0, 0x11BE0, L), (0x11BF0, 0x11BF9, D),
    (0x11C00, 0x11C08, L), (0x11C0A, 0x11C36, L), (0x11C38, 0x11C40, L), (0x11C50, 0x11C59, D),
    (0x11C72, 0x11C8F, L), (0x11C92, 0x11CA7, L), (0x11CA9, 0x11CB6, L), (0x11D00, 0x11D06, L),
    (0x11D08, 0x11D09, L), (0x11D0B, 0x11D36, L), (0x11D3A, 0x11D3A, L), (0x11D3C, 0x11D3D, L),
    (0x11D3F, 0x11D47, L), (0x11D50, 0x11D59, D), (0x11D60, 0x11D65, L), (0x11D67, 0x11D68, L),
    (0x11D6A, 0x11D8E, L), (0x11D90, 0x11D91, L), (0x11D93, 0x11D98, L), (0x11DA0, 0x11DA9, D),
    (0x11DB0, 0x11DDB, L), (0x11DE0, 0x11DE9, D), (0x11DF0, 0x11DF1, L), (0x11EE0, 0x11EF6, L),
    (0x11F00, 0x11F10, L), (0x11F12, 0x11F3A, L), (0x11F3E, 0x11F42, L), (0x11F50, 0x11F59, D),
    (0x11F5A, 0x11F5A, L), (0x11FB0, 0x11FB0, L), (0x12000, 0x12399, L), (0x12480, 0x12543, L),
    (0x12F90, 0x12FF0, L), (0x13000, 0x1342F, L), (0x13440, 0x13455, L), (0x13460, 0x143FA, L),
    (0x14400, 0x14646, L), (0x16100, 0x1612F, L), (0x16130, 0x16139, D), (0x16800, 0x16A38, L),
    (0x16A40, 0x16A5E, L), (0x16A60, 0x16A69, D), (0x16A70, 0x16ABE, L), (0x16AC0, 0x16AC9, D),
    (0x16AD0, 0x16AED, L), (0x16AF0, 0x16AF4, L), (0x16B00, 0x16B36, L), (0x16B40, 0x16B43, L),
    (0x16B50, 0x16B59, D), (0x16B63, 0x16B77, L), (0x16B7D, 0x16B8F, L), (0x16D40, 0x16D6C, L),
    (0x16D70, 0x16D79, D), (0x16E40, 0x16E7F, L), (0x16EA0, 0x16EB8, L), (0x16EBB, 0x16ED3, L),
    (0x16F00, 0x16F4A, L), (0x16F4F, 0x16F87, L), (0x16F8F, 0x16F9F, L), (0x16FE0, 0x16FE1, L),
    (0x16FE3, 0x16FE4, L), (0x16FF0, 0x16FF3, L), (0x17000, 0x18CDA, L), (0x18CFF, 0x18D20, L),
    (0x18D80, 0x18DF2, L), (0x18E00, 0x19191, L), (0x191A0, 0x191D2, L), (0x1AFF0, 0x1AFF3, L),
    (0x1AFF5, 0x1AFFB, L), (0x1AFFD, 0x1AFFE, L), (0x1B000, 0x1B128, L), (0x1B132, 0x1B132, L),
    (0x1B150, 0x1B152, L), (0x1B155, 0x1B155, L), (0x1B164, 0x1B168, L), (0x1B170, 0x1B2FB, L),
    (0x1BC00, 0x1BC6A, L), (0x1BC70, 0x1BC7C, L), (0x1BC80, 0x1BC88, L), (0x1BC90, 0x1BC99, L),
    (0x1BC9D, 0x1BC9E, L), (0x1CCF0, 0x1CCF9, D), (0x1CF00, 0x1CF2D, L), (0x1CF30, 0x1CF46, L),
    (0x1D127, 0x1D128, L), (0x1D165, 0x1D169, L), (0x1D16D, 0x1D172, L), (0x1D17B, 0x1D182, L),
    (0x1D185, 0x1D18B, L), (0x1D1AA, 0x1D1AD, L), (0x1D242, 0x1D244, L), (0x1D250, 0x1D252, L),
    (0x1D25B, 0x1D25C, L), (0x1D25F, 0x1D25F, L), (0x1D280, 0x1D281, L), (0x1D400, 0x1D454, L),
    (0x1D456, 0x1D49C, L), (0x1D49E, 0x1D49F, L), (0x1D4A2, 0x1D4A2, L), (0x1D4A5, 0x1D4A6, L),
    (0x1D4A9, 0x1D4AC, L), (0x1D4AE, 0x1D4B9, L), (0x1D4BB, 0x1D4BB, L), (0x1D4BD, 0x1D4C3, L),
    (0x1D4C5, 0x1D505, L), (0x1D507, 0x1D50A, L), (0x1D50D, 0x1D514, L), (0x1D516, 0x1D51C, L),
    (0x1D51E, 0x1D539, L), (0x1D53B, 0x1D53E, L), (0x1D540, 0x1D544, L), (0x1D546, 0x1D546, L),
    (0x1D54A, 0x1D550, L), (0x1D552, 0x1D6A6, L), (0x1D6A8, 0x1D6C0, L), (0x1D6C2, 0x1D6DA, L),
    (0x1D6DC, 0x1D6FA, L), (0x1D6FC, 0x1D714, L), (0x1D716, 0x1D734, L), (0x1D736, 0x1D74E, L),
    (0x1D750, 0x1D76E, L), (0x1D770, 0x1D788, L), (0x1D78A, 0x1D7A8, L), (0x1D7AA, 0x1D7C2, L),
    (0x1D7C4, 0x1D7CB, L), (0x1D7CE, 0x1D7FF, D), (0x1DA00, 0x1DA36, L), (0x1DA3B, 0x1DA6C, L),
    (0x1DA75, 0x1DA75, L), (0x1DA84, 0x1DA84, L), (0x1DA9B, 0x1DA9F, L), (0x1DAA1, 0x1DAAF, L),
    (0x1DF00, 0x1DF81, L), (0x1DF90, 0x1DF96, L), (0x1DFCD, 0x1E006, L), (0x1E008, 0x1E018, L),
    (0x1E01B, 0x1E021, L), (0x1E023, 0x1E024, L), (0x1E026, 0x1E02A, L), (0x1E030, 0x1E06D, L),
    (0x1E08F, 0x1E08F, L), (0x1E100, 0x1E12C, L), (0x1E130, 0x1E13D, L), (0x1E140, 0x1E149, D),
    (0x1E14E, 0x1E14E, L), (0x1E290, 0x1E2AE, L), (0x1E2C0, 0x1E2EF, L), (0x1E2F0, 0x1E2F9, D),
    (0x1E4D0, 0x1E4EF, L), (0x1E4F0, 0x1E4F9, D), (0x1E5D0, 0x1E5F0, L), (0x1E5F1, 0x1E5FA, D),
    (0x1E6C0, 0x1E6DE, L), (0x1E6E0, 0x1E6F5, L), (0x1E6FE, 0x1E6FF, L), (0x1E7E0, 0x1E7E6, L),
    (0x1E7E8, 0x1E7EB, L), (0x1E7ED, 0x1E7EE, L), (0x1E7F0, 0x1E7FE, L), (0x1E800, 0x1E8C4, L),
    (0x1E8D0, 0x1E8D6, L), (0x1E900, 0x1E94B, L), (0x1E950, 0x1E959, D), (0x1EE00, 0x1EE03, L),
    (0x1EE05, 0x1EE1F, L), (0x1EE21, 0x1EE22, L), (0x1EE24, 0x1EE24, L), (0x1EE27, 0x1EE27, L),
    (0x1EE29, 0x1EE32, L), (0x1EE34, 0x1EE37, L), (0x1EE39, 0x1EE39, L), (0x1EE3B, 0x1EE3B, L),
    (0x1EE42, 0x1EE42, L), (0x1EE47, 0x1EE47, L), (0x1EE49, 0x1EE49, L), (0x1EE4B, 0x1EE4B, L),
    (0x1EE4D, 0x1EE4F, L), (0x1EE51, 0x1EE52, L), (0x1EE54, 0x1EE54, L), (0x1EE57, 0x1EE57, L),
    (0x1EE59, 0x1EE59, L), (0x1EE5B, 0x1EE5B, L), (0x1EE5D, 0x1EE5D, L), (0x1EE5F, 0x1EE5F, L),
    (0x1EE61, 0x1EE62, L), (0x1EE64, 0x1EE64, L), (0x1EE67, 0x1EE6A, L), (0x1EE6C, 0x1EE72, L),
    (0x1EE74, 0x1EE77, L), (0x1EE79, 0x1EE7C, L), (0x1EE7E, 0x1EE7E, L), (0x1EE80, 0x1EE89, L),
    (0x1EE8B, 0x1EE9B, L), (0x1EEA1, 0x1EEA3, L), (0x1EEA5, 0x1EEA9, L), (0x1EEAB, 0x1EEBB, L),
    (0x1FBF0, 0x1FBF9, D), (0x20000, 0x2A6DF, L), (0x2A700, 0x2B81E, L), (0x2B820, 0x2CEAD, L),
    (0x2CEB0, 0x2EBE0, L), (0x2EBF0, 0x2EE5D, L), (0x2F800, 0x2FA1D, L), (0x30000, 0x3134A, L),
    (0x31350, 0x33479, L), (0x3D000, 0x3FC3F, L), (0xE0100, 0xE01EF, L),
];

/// The classes of the Basic Multilingual Plane, two bits per code point (four per byte), built
/// at compile time from [`ASCII_CLASS`] and [`CHAR_RANGES`]: one load per lookup.
static BMP_CLASS: [u8; 0x4000] = {
    let mut table = [NO; 0x4000];
    let mut cp = 0;
    while cp < 0x80 {
        table[cp >> 2] |= ASCII_CLASS[cp] << ((cp & 3) * 2);
        cp += 1;
    }
    let mut r = 0;
    while r < CHAR_RANGES.len() {
        let (first, last, class) = CHAR_RANGES[r];
        let mut cp = first;
        while cp <= last && cp < 0x10000 {
            table[(cp >> 2) as usize] |= class << ((cp & 3) * 2);
            cp += 1;
        }
        r += 1;
    }
    table
};

/// The class of a character: [`NO`], [`L`], [`D`] or [`S`].
#[inline]
fn class_of(c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x10000 {
        return (BMP_CLASS[(cp >> 2) as usize] >> ((cp & 3) * 2)) & 3;
    }
    let i = CHAR_RANGES.partition_point(|&(_, last, _)| last < cp);
    match CHAR_RANGES.get(i) {
        Some(&(first, _, class)) if first <= cp => class,
        _ => NO,
    }
}

/// True for a character that may appear in a hashtag's body.
#[inline]
fn is_hashtag_char(c: char) -> bool {
    class_of(c) != NO
}

/// True when `c` may stand right before a hashtag sign.
#[inline]
fn may_precede_sign(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}') || (c != '&' && !is_hashtag_char(c))
}

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

/// Returns the hashtags in `text`, without the sign, as written, in order of appearance.
///
/// The allocating form of [`for_each_hashtag`]; see the [module docs](self) for the rules.
pub fn extract_hashtags(text: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    for_each_hashtag(text, |tag| tags.push(tag));
    tags
}

/// Calls `f` with each hashtag of `text` (without the sign, as written, in order), without
/// allocating. See the [module docs](self) for the rules.
///
/// ```
/// use trends_core::hashtag::{for_each_hashtag, normalize_into};
///
/// let mut buf = String::with_capacity(64);
/// let mut counted = Vec::new();
/// for_each_hashtag("Loving #RustLang and ＃Ｋａｆｋａ, not &#39;", |tag| {
///     normalize_into(tag, &mut buf);
///     counted.push(buf.clone());
/// });
/// assert_eq!(counted, ["rustlang", "kafka"]);
/// ```
pub fn for_each_hashtag<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let bytes = text.as_bytes();
    // Where to look for the next sign (a byte offset; it may fall inside a character, which is
    // harmless because the bytes searched for never occur inside one).
    let mut pos = 0;
    // End of the last candidate, accepted or not: its characters cannot precede the next sign.
    let mut matched_to = 0;
    let mut urls = UrlScan::default();
    while let Some(i) = find_sign_byte(bytes, pos) {
        let sign_len = if bytes[i] == b'#' {
            1
        } else if bytes[i..].starts_with("＃".as_bytes()) {
            3
        } else {
            // Another character starting with 0xEF.
            pos = i + 1;
            continue;
        };
        let body_start = i + sign_len;
        pos = body_start;
        if let Some(prev) = text[..i].chars().next_back() {
            if i - prev.len_utf8() < matched_to || !may_precede_sign(prev) {
                continue;
            }
        }
        let rest = &text[body_start..];
        if rest.starts_with(['\u{FE0F}', '\u{20E3}']) {
            continue;
        }
        let (body_end, has_letter) = scan_body(text, body_start);
        // No sign inside a body: the search may go on from its end.
        pos = body_end;
        if !has_letter {
            continue;
        }
        matched_to = body_end;
        let after = &text[body_end..];
        if after.starts_with(['#', FULLWIDTH_SIGN]) || after.starts_with("://") {
            continue;
        }
        if sign_len == 1 && urls.covers(text, i) {
            continue;
        }
        // twitter-text keeps this hashtag and drops any URL that would start inside it.
        urls.floor = urls.floor.max(body_end);
        f(&text[body_start..body_end]);
    }
}

/// Offset of the first `#` or 0xEF byte (the first byte of `＃`) at or after `from`.
///
/// The next sign is often a few bytes away (tags come in runs, mostly at the end of a post):
/// the first 16 bytes are scanned inline, eight at a time (SWAR: a byte of `w ^ splat(b)` is
/// zero where `w` holds `b`, and `(x - 0x01…01) & !x & 0x80…80` flags zero bytes, the lowest
/// flag being always exact); the rest, typically the body of the post, with `memchr2`
/// (16 or 32 bytes a step), which costs more than that for a short span.
#[inline]
fn find_sign_byte(bytes: &[u8], from: usize) -> Option<usize> {
    const WORDS_INLINE: usize = 2;
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const HASHES: u64 = u64::from_le_bytes([b'#'; 8]);
    const EFS: u64 = u64::from_le_bytes([0xEF; 8]);
    let mut i = from;
    for _ in 0..WORDS_INLINE {
        let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        else {
            let tail = bytes.get(i..)?;
            return tail
                .iter()
                .position(|&b| b == b'#' || b == 0xEF)
                .map(|off| i + off);
        };
        let word = u64::from_le_bytes(word);
        let (x, y) = (word ^ HASHES, word ^ EFS);
        let found = ((x.wrapping_sub(ONES) & !x) | (y.wrapping_sub(ONES) & !y)) & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    memchr::memchr2(b'#', 0xEF, rest).map(|off| i + off)
}

/// The end of the run of hashtag characters starting at `start`, and whether it holds a
/// letter or mark.
#[inline]
fn scan_body(text: &str, start: usize) -> (usize, bool) {
    let bytes = text.as_bytes();
    let mut end = start;
    let mut has_letter = false;
    while let Some(&b) = bytes.get(end) {
        let (class, len) = if b < 0x80 {
            (ASCII_CLASS[usize::from(b)], 1)
        } else {
            match text[end..].chars().next() {
                Some(c) => (class_of(c), c.len_utf8()),
                None => break,
            }
        };
        if class == NO {
            break;
        }
        has_letter |= class == L;
        end += len;
    }
    (end, has_letter)
}

// ---------------------------------------------------------------------------------------------
// URL recognition (see the module docs for what is recognized)
// ---------------------------------------------------------------------------------------------

/// Incremental URL search over one text, so that finding the URLs around all of a text's
/// hashtags stays linear in its length.
#[derive(Debug, Default)]
struct UrlScan {
    /// URL starts before this offset have been decided (or must be ignored).
    floor: usize,
    /// The last URL found, `start..end`.
    last: (usize, usize),
}

/// What [`url_at`] found at a position.
enum UrlAt {
    /// A URL ends at `end`; twitter-text ignores it when `valid` is false (a scheme-less URL
    /// preceded by `-`, `_`, `.` or `/`), and then looks for the next one after `end`.
    Url { end: usize, valid: bool },
    /// No URL starts before this offset.
    Skip(usize),
}

impl UrlScan {
    /// True when a URL covers the ASCII `#` at byte `sign`. Calls must come with increasing
    /// `sign`s.
    fn covers(&mut self, text: &str, sign: usize) -> bool {
        if self.last.0 < sign && sign < self.last.1 {
            return true;
        }
        if sign < self.floor {
            return false;
        }
        // A URL holds no blank, so it starts after the last one before the sign, and it needs
        // a dot in its host.
        let bytes = text.as_bytes();
        let mut start = sign;
        let mut has_dot = false;
        while start > self.floor {
            let b = bytes[start - 1];
            if b.is_ascii_whitespace() {
                break;
            }
            has_dot |= b == b'.';
            start -= 1;
        }
        self.floor = sign;
        if !has_dot {
            return false;
        }
        let mut p = start;
        while p < sign {
            let prev = text[..p].chars().next_back();
            match url_at(text, p, prev) {
                UrlAt::Url { end, valid } if end > sign => {
                    self.floor = end;
                    if valid {
                        self.last = (p, end);
                    }
                    return valid;
                }
                UrlAt::Url { end, .. } | UrlAt::Skip(end) => p = end,
            }
        }
        false
    }
}

/// Looks for a URL starting at byte `p` (a character boundary), preceded by `prev`.
fn url_at(text: &str, p: usize, prev: Option<char>) -> UrlAt {
    let next = p + text[p..].chars().next().map_or(1, char::len_utf8);
    if let Some(c) = prev {
        if c.is_ascii_alphanumeric() || matches!(c, '@' | '＠' | '$' | '#' | '＃') {
            return UrlAt::Skip(next);
        }
    }
    let rest = &text.as_bytes()[p..];
    let scheme = if starts_with_ignore_case(rest, b"http://") {
        7
    } else if starts_with_ignore_case(rest, b"https://") {
        8
    } else {
        0
    };
    if scheme > 0 {
        return match scan_host(text, p + scheme, true) {
            Ok(host_end) => UrlAt::Url {
                end: scan_after_host(text, host_end),
                valid: true,
            },
            Err(_) => UrlAt::Skip(next),
        };
    }
    if prev.is_some_and(is_plain_host_char) {
        // Inside a host's run of letters: decided where the run starts.
        return UrlAt::Skip(next);
    }
    match scan_host(text, p, false) {
        Ok(host_end) => UrlAt::Url {
            end: scan_after_host(text, host_end),
            valid: !matches!(prev, Some('-' | '_' | '.' | '/')),
        },
        Err(run_end) => UrlAt::Skip(run_end.max(next)),
    }
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// twitter-text's `LATIN_ACCENTS_CHARS`, allowed in hosts and paths.
fn is_latin_accent(c: char) -> bool {
    matches!(c,
        '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{24F}'
        | '\u{253}' | '\u{254}' | '\u{256}' | '\u{257}' | '\u{259}' | '\u{25B}' | '\u{263}'
        | '\u{268}' | '\u{26F}' | '\u{272}' | '\u{289}' | '\u{28B}' | '\u{2BB}'
        | '\u{300}'..='\u{36F}' | '\u{1E00}'..='\u{1EFF}')
}

/// A letter or digit of a host without a scheme.
fn is_plain_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_latin_accent(c)
}

/// Scans a host (`label(.label)+`) at `p`: `Ok(end)` when it is one, else `Err(end of the run
/// scanned)`, past which no host can start with a different outcome.
fn scan_host(text: &str, p: usize, after_scheme: bool) -> Result<usize, usize> {
    let is_label_char = |c: char| {
        c == '-'
            || c == '_'
            || if after_scheme {
                c.is_ascii_alphanumeric() || (!c.is_ascii() && matches!(class_of(c), L | D))
            } else {
                is_plain_host_char(c)
            }
    };
    let mut end = p;
    let mut labels = 0;
    let mut last_label = p..p;
    loop {
        let label_start = end;
        end += text[end..]
            .chars()
            .take_while(|&c| is_label_char(c))
            .map(char::len_utf8)
            .sum::<usize>();
        if end == label_start {
            break;
        }
        labels += 1;
        last_label = label_start..end;
        let rest = &text[end..];
        if rest.starts_with('.') && rest[1..].chars().next().is_some_and(is_label_char) {
            end += 1;
        } else {
            break;
        }
    }
    let tld = &text[last_label];
    let tld_ok = if starts_with_ignore_case(tld.as_bytes(), b"xn--") {
        tld.len() > 4
    } else if after_scheme {
        tld.chars().count() >= 2 && tld.chars().all(|c| c.is_alphabetic())
    } else {
        tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
    };
    if labels >= 2 && tld_ok {
        Ok(end)
    } else {
        Err(end)
    }
}

/// The end of a URL whose host ends at `host_end`: optional port, path and query.
fn scan_after_host(text: &str, host_end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = host_end;
    if bytes.get(end) == Some(&b':') {
        let digits = bytes[end + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            end += 1 + digits;
        }
    }
    if bytes.get(end) == Some(&b'/') {
        end = scan_path(text, end);
    }
    if bytes.get(end) == Some(&b'?') {
        end += 1 + bytes[end + 1..]
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b"!?*'();:&=+$/%#[]-_.,~|@".contains(&b))
            .count();
    }
    end
}

/// twitter-text's `URL_VALID_GENERAL_PATH_CHARS` (parentheses aside).
fn is_path_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!*';:=+,.$/%#[]-_~|&@".contains(c)
    } else {
        c == '\u{2013}' || is_latin_accent(c) || ('\u{400}'..='\u{4FF}').contains(&c)
    }
}

/// The end of a URL path starting at `start`.
fn scan_path(text: &str, start: usize) -> usize {
    let mut end = start;
    while let Some(c) = text[end..].chars().next() {
        if is_path_char(c) {
            end += c.len_utf8();
        } else if let Some(after) = (c == '(').then(|| balanced_parens(text, end, 0)).flatten() {
            end = after;
        } else {
            break;
        }
    }
    end
}

/// The end of a non-empty balanced `( … )` group at `open`, nested at most two levels deep.
fn balanced_parens(text: &str, open: usize, depth: u8) -> Option<usize> {
    let mut end = open + 1;
    let mut inner = false;
    loop {
        let c = text[end..].chars().next()?;
        if is_path_char(c) {
            end += c.len_utf8();
            inner = true;
        } else if c == '(' && depth == 0 {
            end = balanced_parens(text, end, 1)?;
            inner = true;
        } else if c == ')' && inner {
            return Some(end + 1);
        } else {
            return None;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------------

/// The counting form of a hashtag: one leading sign removed, then NFKC, then Unicode lowercase.
///
/// The allocating form of [`normalize_into`]; see the [module docs](self) for the corner cases.
pub fn normalize(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    normalize_into(tag, &mut out);
    out
}

/// Writes the counting form of `tag` into `out`, replacing its contents (see [`normalize`]).
///
/// Allocates only when `out` must grow; ASCII tags never need more than `tag.len()` bytes.
pub fn normalize_into(tag: &str, out: &mut String) {
    out.clear();
    let tag = tag.strip_prefix(['#', FULLWIDTH_SIGN]).unwrap_or(tag);
    fold_into(tag, out);
}

/// Appends NFKC + lowercase of `s` to `out`, normalized again when lowercasing broke NFKC.
fn fold_into(s: &str, out: &mut String) {
    let start = out.len();
    if s.is_ascii() {
        out.push_str(s);
        out[start..].make_ascii_lowercase();
        return;
    }
    if !fold_fast_into(s, out) {
        out.truncate(start);
        fold_general_into(s, out);
    }
}

/// The fast path of [`fold_into`]: appends the counting form of `s` and returns true when
/// every character of `s` is one it can fold alone (most tags in most scripts), else returns
/// false, having appended part of it. Those characters are:
/// - the NFKC-stable starters ([`FOLD_KEEP`], copied) and those whose lowercase is one
///   ([`FOLD_LOWER`]);
/// - fullwidth ASCII letters, digits and `＿` (U+FF10–U+FF19, U+FF21–U+FF3A, U+FF3F,
///   U+FF41–U+FF5A), whose NFKC is their ASCII letter, digit or `_`, lowercased;
/// - combining marks that NFKC keeps and that never compose with what precedes them
///   ([`FOLD_MARK`]: `NFKC_Quick_Check=Yes`, so no character composes with them, and their own
///   lowercase), as long as the marks after each starter come in non-decreasing canonical
///   combining class (else NFKC would reorder them): Devanagari's virama, Arabic and Hebrew
///   vowel marks, most Thai and Tibetan signs.
///
/// Why that is exact: NFKC never joins a character to the one before it when it is a starter
/// with `NFKC_Quick_Check=Yes` (as every kept, lowered or fullwidth-ASCII result is), so the
/// text falls into segments of one starter and its marks, normalized apart; a segment of
/// quick-check-Yes characters in canonical order is NFKC already, and a fullwidth letter's
/// segment is its ASCII letter and the same marks (which compose with nothing). Lowercasing
/// then maps each starter to a stable starter and leaves the marks, so the result passes the
/// NFKC quick check and the general path's second normalization changes nothing.
/// `tests::the_fold_fast_path_agrees_with_the_general_path_on_every_bmp_character` and the
/// proptest `fold_fast_path_agrees_with_the_general_path` check it against
/// [`fold_general_into`].
fn fold_fast_into(s: &str, out: &mut String) -> bool {
    let table = fold_table();
    // `s[kept_from..]` up to the current character is appended as it is, in one copy.
    let mut kept_from = 0;
    // The canonical combining class of the last mark since the last starter (0: none).
    let mut last_class = 0;
    for (i, c) in s.char_indices() {
        let cp = c as u32;
        if cp < 0x80 {
            last_class = 0;
            if c.is_ascii_uppercase() {
                out.push_str(&s[kept_from..i]);
                out.push(c.to_ascii_lowercase());
                kept_from = i + 1;
            }
            continue;
        }
        match fold_kind(table, c) {
            FOLD_KEEP => last_class = 0,
            FOLD_LOWER => {
                last_class = 0;
                out.push_str(&s[kept_from..i]);
                out.push(lowercase_of_lower(c));
                kept_from = i + c.len_utf8();
            }
            FOLD_MARK => {
                let class = canonical_combining_class(c);
                if class < last_class {
                    return false;
                }
                last_class = class;
            }
            _ => {
                let Some(ascii) = fullwidth_ascii(cp) else {
                    return false;
                };
                last_class = 0;
                out.push_str(&s[kept_from..i]);
                out.push(char::from(ascii.to_ascii_lowercase()));
                kept_from = i + c.len_utf8();
            }
        }
    }
    out.push_str(&s[kept_from..]);
    true
}

/// The ASCII letter, digit or `_` that NFKC makes of a fullwidth one.
#[inline]
fn fullwidth_ascii(cp: u32) -> Option<u8> {
    match cp {
        0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF3F | 0xFF41..=0xFF5A => {
            u8::try_from(cp - 0xFEE0).ok()
        }
        _ => None,
    }
}

/// The lowercase of a [`FOLD_LOWER`] character: computed for the common blocks (Latin-1,
/// Greek, Cyrillic capitals are their lowercase minus a constant), `char::to_lowercase` (a
/// binary search of std's table) for the rest.
#[inline]
fn lowercase_of_lower(c: char) -> char {
    let cp = c as u32;
    let lower = match cp {
        // Latin-1 capitals (U+00D7 `×` is no letter and never FOLD_LOWER), Greek capitals
        // (U+03A2 is unassigned), Cyrillic `А`–`Я`.
        0xC0..=0xDE | 0x391..=0x3AB | 0x410..=0x42F => char::from_u32(cp + 0x20),
        // Cyrillic `Ѐ`–`Џ`.
        0x400..=0x40F => char::from_u32(cp + 0x50),
        _ => None,
    };
    lower.unwrap_or_else(|| c.to_lowercase().next().unwrap_or(c))
}

/// [`fold_into`] without the fast path: NFKC (skipped when the quick check allows), lowercase,
/// and NFKC again when lowercasing broke it.
fn fold_general_into(s: &str, out: &mut String) {
    let start = out.len();
    if is_nfkc_quick(s.chars()) == IsNormalized::Yes {
        out.extend(s.chars().flat_map(char::to_lowercase));
    } else {
        out.extend(s.nfkc().flat_map(char::to_lowercase));
    }
    if !is_nfkc(&out[start..]) {
        // E.g. `J` + U+030C is NFKC, its lowercase `j` + U+030C is not (it composes to `ǰ`).
        let lowered = out.split_off(start);
        out.extend(lowered.nfkc());
    }
}

/// A character that needs the general path (or lies beyond the BMP).
const FOLD_GENERAL: u8 = 0;
/// A character that NFKC and lowercasing leave alone, and that never combines with its
/// neighbours: canonical combining class 0 and `NFKC_Quick_Check=Yes`.
const FOLD_KEEP: u8 = 1;
/// Such a character whose lowercase is a single [`FOLD_KEEP`] character (`Д` → `д`).
const FOLD_LOWER: u8 = 2;
/// A combining mark (canonical combining class above 0) that NFKC keeps and no character
/// composes with (`NFKC_Quick_Check=Yes`), and that is its own lowercase: Devanagari's virama
/// `्`, Arabic's shadda `ّ`. NFKC still reorders such marks when their classes decrease.
const FOLD_MARK: u8 = 3;

/// What [`fold_into`] does with a character.
#[inline]
fn fold_kind(table: &[u8; 0x4000], c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x10000 {
        (table[(cp >> 2) as usize] >> ((cp & 3) * 2)) & 3
    } else {
        FOLD_GENERAL
    }
}

/// The BMP's [`fold_kind`]s, two bits per code point, computed once on first use (a few
/// milliseconds) from the very normalization and case tables `fold_general_into` uses, so the
/// fast path cannot disagree with it.
fn fold_table() -> &'static [u8; 0x4000] {
    static TABLE: OnceLock<[u8; 0x4000]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [FOLD_GENERAL; 0x4000];
        for c in '\0'..='\u{FFFF}' {
            let cp = c as usize;
            table[cp >> 2] |= fold_kind_of(c) << ((cp & 3) * 2);
        }
        table
    })
}

/// [`fold_kind`] from first principles.
fn fold_kind_of(c: char) -> u8 {
    let quick_yes = |c: char| is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes;
    let stable = |c: char| canonical_combining_class(c) == 0 && quick_yes(c);
    let lowercase_of = |c: char| {
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => Some(l),
            _ => None,
        }
    };
    if !stable(c) {
        let mark = canonical_combining_class(c) != 0 && quick_yes(c) && lowercase_of(c) == Some(c);
        return if mark { FOLD_MARK } else { FOLD_GENERAL };
    }
    match lowercase_of(c) {
        Some(l) if l == c => FOLD_KEEP,
        Some(l) if stable(l) && lowercase_of(l) == Some(l) => FOLD_LOWER,
        _ => FOLD_GENERAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

    // ---- extraction rules, one test per rule -------------------------------------------------

    #[test]
    fn extracts_in_order_as_written_with_repeats() {
        assert_eq!(
            extract_hashtags("#Rust then #日本語 then #rust"),
            ["Rust", "日本語", "rust"]
        );
        assert_eq!(extract_hashtags("#start middle #end"), ["start", "end"]);
        assert!(extract_hashtags("").is_empty());
        assert!(extract_hashtags("no tags here").is_empty());
    }

    #[test]
    fn sign_is_ascii_or_fullwidth_but_not_a_keycap() {
        assert_eq!(extract_hashtags("#rust ＃kafka"), ["rust", "kafka"]);
        assert_eq!(extract_hashtags("＃ｔｒｅｎｄ"), ["ｔｒｅｎｄ"]);
        // Keycap emoji: # + U+FE0F + U+20E3, and the bare # + U+20E3.
        assert!(extract_hashtags("#\u{FE0F}\u{20E3} #\u{20E3}abc #\u{FE0F}abc").is_empty());
        assert_eq!(extract_hashtags("press #️⃣ then #call"), ["call"]);
        assert!(extract_hashtags("# spaced ＃ spaced #").is_empty());
    }

    #[test]
    fn bodies_in_many_scripts() {
        assert_eq!(
            extract_hashtags("#東京オリンピック #Москва2026 #كرة_القدم #क्रिकेट"),
            ["東京オリンピック", "Москва2026", "كرة_القدم", "क्रिकेट"]
        );
        assert_eq!(
            extract_hashtags("#กรุงเทพ #서울맛집 #Αθήνα #שלום #ñandú"),
            ["กรุงเทพ", "서울맛집", "Αθήνα", "שלום", "ñandú"]
        );
        // Japanese punctuation ends a body and may precede a sign.
        assert_eq!(
            extract_hashtags("楽しかった！#夏祭り、＃花火。"),
            ["夏祭り", "花火"]
        );
    }

    #[test]
    fn a_body_needs_a_letter_and_digits_of_any_script_count() {
        assert_eq!(
            extract_hashtags("#web3 #2024goals #rust_lang #1st"),
            ["web3", "2024goals", "rust_lang", "1st"]
        );
        assert!(extract_hashtags("#42 #_ #1_000 #٢٠٢٦ #२०२६ #３ #·").is_empty());
        assert_eq!(
            extract_hashtags("#كأس٢٠٢٦ #चुनाव२०२४ #ｆ１"),
            ["كأس٢٠٢٦", "चुनाव२०२४", "ｆ１"]
        );
    }

    #[test]
    fn underscores_joiners_and_other_special_characters_stay_inside() {
        assert_eq!(extract_hashtags("#__init__"), ["__init__"]);
        // ZWNJ in Persian, ZWJ in a Devanagari conjunct.
        assert_eq!(
            extract_hashtags("#نمی\u{200C}دانم #क्\u{200D}ष"),
            ["نمی\u{200C}دانم", "क्\u{200D}ष"]
        );
        // Middle dot (Catalan), katakana middle dot, wave dash, fullwidth tilde, maqaf, gershayim,
        // tsheg, ditto mark.
        assert_eq!(
            extract_hashtags(
                "#col·lecció #ロック・フェス #東京〜大阪 #ワ～イ #בית־ספר #צה״ל #ལྷ་ས #各〃"
            ),
            [
                "col·lecció",
                "ロック・フェス",
                "東京〜大阪",
                "ワ～イ",
                "בית־ספר",
                "צה״ל",
                "ལྷ་ས",
                "各〃"
            ]
        );
        // Special characters alone are no hashtag.
        assert!(extract_hashtags("#〃 #\u{200D} #〜").is_empty());
    }

    #[test]
    fn what_may_precede_the_sign() {
        assert_eq!(
            extract_hashtags("(#a) [#b] \"#c\" '#d' ,#e .#f !#g ?#h /#i"),
            ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        );
        assert_eq!(extract_hashtags("line\n#one\t#two"), ["one", "two"]);
        // A letter, digit, mark, underscore or `&` may not.
        assert!(extract_hashtags("word#glued 東京#tag 7#up _#x é#y").is_empty());
        assert!(extract_hashtags("a\u{301}#acute").is_empty());
    }

    #[test]
    fn emoji_neighbours() {
        // An emoji (a symbol) may precede; so may the variation selectors, though they are marks.
        assert_eq!(
            extract_hashtags("🔥#fire ❤️#love ☺\u{FE0E}#text 👍🏽#thumbs 👩‍💻#devs"),
            ["fire", "love", "text", "thumbs", "devs"]
        );
        // An emoji ends the body.
        assert_eq!(extract_hashtags("#fire🔥 #party🎉🎉"), ["fire", "party"]);
    }

    #[test]
    fn html_entities() {
        // `&` may not precede the sign: numeric character references are not hashtags.
        assert!(extract_hashtags("it&#39;s &#x27;quoted&#x27; &#8217;").is_empty());
        // A doubly escaped reference puts `;` before the sign: digits alone still are not a
        // hashtag, but `x27` is one, as in twitter-text.
        assert!(extract_hashtags("it&amp;#39;s").is_empty());
        assert_eq!(extract_hashtags("it&amp;#x27;s"), ["x27"]);
    }

    #[test]
    fn a_candidate_followed_by_a_sign_or_scheme_separator_is_dropped() {
        assert!(extract_hashtags("#foo#bar #baz＃ #qux＃quux").is_empty());
        assert!(extract_hashtags("#web://x #ftp://host").is_empty());
        assert_eq!(extract_hashtags("#note: #time:/"), ["note", "time"]);
        // Matches do not overlap, so a rejected candidate's characters cannot precede a sign.
        assert_eq!(extract_hashtags("#a##b"), ["b"]);
        assert!(extract_hashtags("#a\u{FE0F}#b").is_empty());
        assert_eq!(extract_hashtags("##double"), ["double"]);
    }

    #[test]
    fn hashtags_inside_urls_do_not_count() {
        for text in [
            "https://example.com/#section",
            "HTTP://EXAMPLE.COM/#TOP",
            "see www.example.org/docs/#setup",
            "example.com/#frag",
            "https://example.com:8080/a/b/#c",
            "https://example.com/search?q=rust&tab=#results",
            "example.com/?tab=#d",
            "https://en.wikipedia.org/wiki/Rust_(language)#History",
            "(https://example.com/#paren)",
            "http://пример.рф/#якорь",
            "https://例え.jp/#テスト",
            "https://xn--r8jz45g.xn--zckzah/#a",
        ] {
            assert!(extract_hashtags(text).is_empty(), "{text}");
        }
        assert_eq!(
            extract_hashtags("read https://example.com/#intro then #rust and #kafka"),
            ["rust", "kafka"]
        );
        assert_eq!(
            extract_hashtags("#one https://a.example/x/#no #two"),
            ["one", "two"]
        );
    }

    #[test]
    fn what_is_not_taken_for_a_url() {
        // No dot, or no letters in the last label: no URL (like twitter-text).
        assert_eq!(extract_hashtags("http://localhost/#dev"), ["dev"]);
        assert_eq!(extract_hashtags("http://127.0.0.1/#ip"), ["ip"]);
        // A blank ends a URL.
        assert_eq!(extract_hashtags("https://example.com #tag"), ["tag"]);
        // twitter-text ignores a scheme-less URL right after `-`, `_`, `.` or `/`.
        assert_eq!(extract_hashtags("a/example.com/#kept"), ["kept"]);
        // An unbalanced parenthesis ends the path.
        assert_eq!(extract_hashtags("https://example.com/(#open"), ["open"]);
        // Other schemes are not URLs.
        assert_eq!(extract_hashtags("ftp://example.com/#files"), ["files"]);
        // Known deviation: any alphabetic TLD is taken (twitter-text checks the IANA list).
        assert!(extract_hashtags("notes.txt/#a").is_empty());
    }

    #[test]
    fn pathological_inputs_stay_fast() {
        let n = 20_000;
        let inputs = [
            "a.".repeat(n) + "/#x",
            "a-".repeat(n) + "#x",
            "https://example.com/".to_string() + &"/#x".repeat(n),
            "x.co/(#a".repeat(n),
            "#".repeat(n) + "a",
            "&#a ".repeat(n),
            "é.".repeat(n) + "com/#x",
        ];
        let started = std::time::Instant::now();
        for text in &inputs {
            let _ = extract_hashtags(text);
        }
        // Quadratic behaviour would take minutes here; linear takes milliseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    // ---- normalization ----------------------------------------------------------------------

    #[test]
    fn normalization_folds_width_case_and_compatibility_forms() {
        assert_eq!(normalize("Rust"), "rust");
        assert_eq!(normalize("#RUST"), "rust");
        assert_eq!(normalize("＃Ｒｕｓｔ"), "rust");
        assert_eq!(normalize("ｶﾀｶﾅ"), "カタカナ");
        assert_eq!(normalize("ﬁnance"), "finance");
        assert_eq!(normalize("e\u{301}té"), "été");
        assert_eq!(normalize("МОСКВА"), "москва");
        assert_eq!(normalize("東京"), "東京");
        assert_eq!(normalize("#"), "");
        assert_eq!(normalize("##a"), "#a");
    }

    #[test]
    fn normalization_corner_cases() {
        assert_eq!(normalize("İstanbul"), "i\u{307}stanbul");
        assert_eq!(normalize("ılık"), "ılık");
        assert_eq!(normalize("Straße"), "straße");
        assert_eq!(normalize("STRAẞE"), "straße");
        assert_eq!(normalize("ΟΔΟΣ"), "οδοσ");
        assert_eq!(normalize("οδός"), "οδός");
        // Lowercasing J + caron makes it composable: the result is normalized again.
        assert_eq!(normalize("J\u{30C}"), "\u{1F0}");
        assert_eq!(normalize(&normalize("J\u{30C}")), "\u{1F0}");
    }

    #[test]
    fn normalize_into_replaces_the_buffer_and_reuses_it() {
        let mut buf = String::with_capacity(32);
        normalize_into("#First", &mut buf);
        assert_eq!(buf, "first");
        normalize_into("ＳＥＣＯＮＤ", &mut buf);
        assert_eq!(buf, "second");
        assert_eq!(buf.capacity(), 32);
    }

    #[test]
    fn the_fold_fast_path_agrees_with_the_general_path_on_every_bmp_character() {
        let (mut fast, mut general) = (String::new(), String::new());
        // Each character alone, before a composing mark, after a letter, and before marks
        // that compose with nothing, in and out of canonical order (virama 9, U+0316 220).
        for c in '\0'..='\u{FFFF}' {
            for text in [
                c.to_string(),
                format!("{c}\u{301}"),
                format!("Ж{c}"),
                format!("{c}\u{316}\u{94D}"),
                format!("{c}\u{94D}\u{316}"),
                format!("\u{316}{c}\u{94D}"),
            ] {
                fast.clear();
                general.clear();
                fold_into(&text, &mut fast);
                fold_general_into(&text, &mut general);
                assert_eq!(fast, general, "{text:?}");
            }
        }
    }

    #[test]
    fn common_tags_take_the_fast_path() {
        for (tag, folded) in [
            ("Москва", "москва"),
            ("Ｒｕｓｔ", "rust"),
            ("ＷｏｒｌｄＣｕｐ２０２６", "worldcup2026"),
            ("क्रिकेट", "क्रिकेट"),
            ("दिल्ली", "दिल्ली"),
            ("كرة_القدم", "كرة_القدم"),
            ("ÉTÉ", "été"),
            ("ΑΘΗΝΑ", "αθηνα"),
            ("ワールドカップ", "ワールドカップ"),
        ] {
            let mut out = String::new();
            assert!(fold_fast_into(tag, &mut out), "{tag}");
            assert_eq!(out, folded);
        }
        // Marks out of canonical order, and compatibility forms beyond fullwidth ASCII, do not.
        assert!(!fold_fast_into("क\u{316}\u{94D}x", &mut String::new()));
        assert!(!fold_fast_into("ｶﾀｶﾅ", &mut String::new()));
    }

    #[test]
    fn find_sign_byte_finds_both_signs_at_any_alignment() {
        for len in 0..40 {
            for at in 0..len {
                for sign in [b'#', 0xEF] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = sign;
                    for from in 0..=len {
                        let expected = (from <= at).then_some(at);
                        assert_eq!(find_sign_byte(&bytes, from), expected, "{len} {at} {from}");
                    }
                }
            }
        }
        // Bytes next to the targets (0x22, 0x24, 0xEE, 0xF0, 0x80) are not taken for them.
        let near = [0x22, 0x24, 0xEE, 0xF0, 0x80, 0x00, 0xFF, 0x7F, 0x22, 0xEE];
        assert_eq!(find_sign_byte(&near, 0), None);
    }

    // ---- the character table ----------------------------------------------------------------

    /// The class each code point should have, from the UCD (via `unicode-properties`) and
    /// twitter-text's lists.
    fn expected_class(c: char) -> u8 {
        use GeneralCategory as G;
        const SPECIAL: &[char] = &[
            '_', '\u{200C}', '\u{200D}', '\u{A67E}', '\u{05BE}', '\u{05F3}', '\u{05F4}',
            '\u{FF5E}', '\u{301C}', '\u{309B}', '\u{309C}', '\u{30A0}', '\u{30FB}', '\u{3003}',
            '\u{0F0B}', '\u{0F0C}', '\u{00B7}',
        ];
        let private_use_extras = matches!(c,
            '\u{F870}'..='\u{F87F}' | '\u{F882}' | '\u{F884}'..='\u{F89F}' | '\u{F8B8}'
            | '\u{F8C1}'..='\u{F8D6}');
        match c.general_category() {
            G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark => L,
            G::DecimalNumber => D,
            _ if SPECIAL.contains(&c) => S,
            _ if private_use_extras => L,
            _ => NO,
        }
    }

    fn expected_ranges() -> Vec<(u32, u32, u8)> {
        let mut ranges: Vec<(u32, u32, u8)> = Vec::new();
        for c in ('\u{80}'..=char::MAX).filter(|&c| expected_class(c) != NO) {
            let (cp, class) = (c as u32, expected_class(c));
            match ranges.last_mut() {
                Some(last) if last.1 + 1 == cp && last.2 == class => last.1 = cp,
                _ => ranges.push((cp, cp, class)),
            }
        }
        ranges
    }

    #[test]
    fn char_ranges_match_unicode() {
        assert_eq!(
            unicode_properties::UNICODE_VERSION,
            (18, 0, 0),
            "the UCD changed: print the table anew (see the module docs)"
        );
        let expected = expected_ranges();
        assert!(
            CHAR_RANGES.to_vec() == expected,
            "CHAR_RANGES is stale; replace it with:\n{}",
            render_char_ranges(&expected)
        );
        for c in '\0'..=char::MAX {
            assert_eq!(class_of(c), expected_class(c), "{c:?} U+{:04X}", c as u32);
        }
    }

    /// `CHAR_RANGES` as Rust source, printed when the table is stale so it can be pasted in.
    fn render_char_ranges(ranges: &[(u32, u32, u8)]) -> String {
        let mut out = format!(
            "static CHAR_RANGES: [(u32, u32, u8); {}] = [\n",
            ranges.len()
        );
        let mut line = String::new();
        for &(first, last, class) in ranges {
            let name = ["NO", "L", "D", "S"][usize::from(class)];
            let item = format!("(0x{first:04X}, 0x{last:04X}, {name}),");
            if line.len() + item.len() + 1 > 96 {
                out.push_str(line.trim_end());
                out.push('\n');
                line.clear();
            }
            if line.is_empty() {
                line.push_str("    ");
            }
            line.push_str(&item);
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push_str("\n];");
        out
    }

    // ---- properties -------------------------------------------------------------------------

    /// A direct transcription of twitter-text's hashtag regex and `find()` loop (without the URL
    /// step), one code point at a time: the scanner must agree with it.
    fn reference_model(text: &str) -> Vec<String> {
        let cs: Vec<char> = text.chars().collect();
        let n = cs.len();
        let is_sign = |i: usize| i < n && (cs[i] == '#' || cs[i] == '＃');
        // The body of a match whose sign is at `g`: a maximal run with a letter.
        let body_at = |g: usize| -> Option<usize> {
            if !is_sign(g) || (g + 1 < n && matches!(cs[g + 1], '\u{FE0F}' | '\u{20E3}')) {
                return None;
            }
            let mut end = g + 1;
            while end < n && class_of(cs[end]) != NO {
                end += 1;
            }
            cs[g + 1..end]
                .iter()
                .any(|&c| class_of(c) == L)
                .then_some(end)
        };
        // The leftmost match starting at or after `from`: (sign, body end).
        let find = |from: usize| -> Option<(usize, usize)> {
            (from..=n).find_map(|s| {
                // Alternatives of the preceding group, in order: `^`, then one allowed char.
                let caret = (s == 0).then_some(0);
                let allowed = (s < n
                    && (matches!(cs[s], '\u{FE0E}' | '\u{FE0F}')
                        || (cs[s] != '&' && class_of(cs[s]) == NO)))
                    .then_some(s + 1);
                [caret, allowed]
                    .into_iter()
                    .flatten()
                    .find_map(|g| body_at(g).map(|end| (g, end)))
            })
        };
        let mut found = Vec::new();
        let mut from = 0;
        while let Some((g, end)) = find(from) {
            let after: String = cs[end..].iter().collect();
            if !(after.starts_with(['#', '＃']) || after.starts_with("://")) {
                found.push(cs[g + 1..end].iter().collect());
            }
            from = end;
        }
        found
    }

    /// Strings of characters that exercise every rule (but no `.`, so no URL).
    fn tricky_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "#", "#", "#", "#", "＃", "&", "a", "a", "a", "Z", "é", "日", "1", "1", "٣", "_",
            "\u{300}", "\u{FE0F}", "\u{FE0F}", "\u{FE0E}", "\u{20E3}", "\u{200D}", "·", "〃", " ",
            " ", "!", ":", "/", "/", "🔥", ";",
        ]);
        prop::collection::vec(pieces, 0..16).prop_map(|v| v.concat())
    }

    /// Strings that exercise normalization: case, width, compatibility, combining marks.
    fn foldable_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "A", "j", "J", "H", "T", "Y", "W", "İ", "ı", "ß", "ẞ", "Σ", "ς", "ﬁ", "Ｒ", "ｶ", "ﾞ",
            "\u{301}", "\u{30C}", "\u{331}", "\u{308}", "\u{30A}", "\u{344}", "\u{345}", "Ω", "Å",
            "ǅ", "²", "#", "＃",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    /// Strings that exercise the fast path's marks and fullwidth forms: starters (kept,
    /// lowered, fullwidth, composing with a following mark or not) and marks that compose
    /// with nothing, of several combining classes, in and out of canonical order.
    fn marked_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "K", "é", "Ж", "ж", "Σ", "क", "न", "ب", "ש", "ก", "ཀ", "東", "Ｒ", "ｒ", "７",
            "＿", "Ｊ", "ｶ", "\u{94D}", "\u{93C}", "\u{316}", "\u{317}", "\u{301}", "\u{30C}",
            "\u{323}", "\u{651}", "\u{64B}", "\u{5B0}", "\u{E38}", "\u{F71}", "\u{F72}", "\u{345}",
            "\u{200D}", "\u{FE0F}",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    fn is_inside(tag: &str, text: &str) -> bool {
        let outer = text.as_bytes().as_ptr_range();
        let inner = tag.as_bytes().as_ptr_range();
        outer.start <= inner.start && inner.end <= outer.end
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn never_panics_and_returns_slices_of_the_input(text in any::<String>()) {
            for tag in extract_hashtags(&text) {
                prop_assert!(is_inside(tag, &text));
                prop_assert!(tag.chars().any(|c| class_of(c) == L));
                prop_assert!(tag.chars().all(is_hashtag_char));
            }
        }

        #[test]
        fn tricky_strings_never_panic_and_give_slices(text in tricky_text()) {
            for tag in extract_hashtags(&text) {
                prop_assert!(is_inside(tag, &text));
            }
        }

        #[test]
        fn agrees_with_the_reference_model(text in tricky_text()) {
            let got: Vec<String> = extract_hashtags(&text).into_iter().map(String::from).collect();
            prop_assert_eq!(got, reference_model(&text));
        }

        #[test]
        fn for_each_and_extract_agree(text in any::<String>()) {
            let mut seen = Vec::new();
            for_each_hashtag(&text, |tag| seen.push(tag));
            prop_assert_eq!(seen, extract_hashtags(&text));
        }

        #[test]
        fn normalization_is_idempotent(
            text in prop_oneof![foldable_text(), marked_text(), "\\PC{0,20}"]
        ) {
            let once = normalize(&text);
            // Stripping a sign is part of normalizing an input, so compare without re-stripping.
            let mut twice = String::new();
            fold_into(&once, &mut twice);
            prop_assert_eq!(&once, &twice);
            prop_assert!(is_nfkc(&once));
            if !once.starts_with(['#', FULLWIDTH_SIGN]) {
                prop_assert_eq!(normalize(&once), once);
            }
        }

        #[test]
        fn normalize_into_matches_normalize(text in prop_oneof![foldable_text(), any::<String>()]) {
            let mut buf = String::from("leftover");
            normalize_into(&text, &mut buf);
            prop_assert_eq!(buf, normalize(&text));
        }

        #[test]
        fn fold_fast_path_agrees_with_the_general_path(
            text in prop_oneof![foldable_text(), marked_text(), any::<String>(), "\\PC{0,20}"]
        ) {
            let (mut fast, mut general) = (String::new(), String::new());
            fold_into(&text, &mut fast);
            fold_general_into(&text, &mut general);
            prop_assert_eq!(fast, general);
        }

        #[test]
        fn sign_search_agrees_with_a_plain_search(
            bytes in prop::collection::vec(
                prop::sample::select(vec![b'a', b'#', 0xEF, 0xEE, b'"', 0x80]),
                0..64,
            ),
            from in 0usize..70,
        ) {
            let plain = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|&(_, &b)| b == b'#' || b == 0xEF)
                .map(|(i, _)| i);
            prop_assert_eq!(find_sign_byte(&bytes, from), plain);
        }

        #[test]
        fn extracted_tags_normalize_idempotently(text in any::<String>()) {
            for tag in extract_hashtags(&text) {
                let once = normalize(tag);
                prop_assert_eq!(normalize(&once), once);
            }
        }
    }
}
