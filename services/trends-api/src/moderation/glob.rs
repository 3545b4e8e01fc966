//! A glob matcher for blocklist patterns, linear in the tag: `*` matches any run of characters
//! (none included), everything else matches itself.
//!
//! Why not a regex or the textbook backtracking matcher: a pattern is untrusted admin input
//! (and the topic holding it untrusted too), and `*a*a*a*a*b` against `aaaa…a` makes a
//! backtracking matcher try every split. Here a pattern is cut at its stars into literal
//! pieces: the first must be a prefix of the tag (unless the pattern starts with `*`), the
//! last a suffix (unless it ends with `*`), and the ones between are found left to right, each
//! at its leftmost place after the previous one. Leftmost is always right: it leaves the most
//! text for what follows, so if any placement of the pieces works, this one does. Each search
//! (`str::find`, Two-Way) is linear in the text it looks at and the search resumes where the
//! last piece ended, so a match costs O(tag + pattern), whatever the pattern.
//!
//! Matching is on UTF-8 bytes of valid strings: a valid piece can only be found at character
//! boundaries of a valid tag, so this is matching by characters.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The piece before the first `*` (empty if the pattern starts with `*`).
    prefix: Box<str>,
    /// The non-empty pieces between stars, in order.
    middle: Box<[Box<str>]>,
    /// The piece after the last `*` (empty if the pattern ends with `*`); `None`: no `*` at
    /// all, the pattern is a literal (`prefix`).
    suffix: Option<Box<str>>,
    /// The shortest tag that can match: the pieces' total length.
    min_len: usize,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let mut pieces = pattern.split('*');
        let prefix: Box<str> = pieces.next().unwrap_or_default().into();
        let mut rest: Vec<&str> = pieces.collect();
        let suffix = rest.pop().map(Box::<str>::from);
        let middle: Box<[Box<str>]> = rest
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(Box::from)
            .collect();
        let min_len = prefix.len()
            + middle.iter().map(|p| p.len()).sum::<usize>()
            + suffix.as_deref().map_or(0, str::len);
        Glob {
            prefix,
            middle,
            suffix,
            min_len,
        }
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if text.len() < self.min_len {
            return false;
        }
        let Some(suffix) = &self.suffix else {
            return text == &*self.prefix;
        };
        let Some(mut rest) = text.strip_prefix(&*self.prefix) else {
            return false;
        };
        for piece in &self.middle {
            match rest.find(&**piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.ends_with(&**suffix)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    /// The textbook recursive matcher, exponential but obviously right: the reference.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn stars_match_any_run_and_the_rest_matches_itself() {
        for (pattern, text, expected) in [
            ("*porn*", "porn", true),
            ("*porn*", "freeporn", true),
            ("*porn*", "pornhub", true),
            ("*porn*", "popcorn", false),
            ("crypto*", "crypto", true),
            ("crypto*", "cryptocoin", true),
            ("crypto*", "bitcrypto", false),
            ("*coin", "bitcoin", true),
            ("*coin", "coins", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("*日本*", "ようこそ日本へ", true),
            ("*日本*", "日曜", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("x**y", "xy", true),
        ] {
            assert_eq!(matches(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn pathological_patterns_take_linear_time() {
        // A backtracking matcher tries ~n^4 splits here before failing.
        let text = "a".repeat(140);
        let glob = Glob::new("*a*a*a*a*b");
        let started = Instant::now();
        for _ in 0..1000 {
            assert!(!glob.matches(&text));
        }
        assert!(!matches(
            "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            &text
        ));
        assert!(matches("*a*a*a*a*b", &format!("{text}b")));
        // 1,000 failures over 140 characters: microseconds each, even unoptimized.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(
            pattern in "[ab*]{0,8}",
            text in "[ab]{0,10}",
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(matches(&pattern, &text), reference(&p, &t), "{} ~ {}", pattern, text);
        }

        #[test]
        fn agrees_with_the_reference_on_unicode(
            pattern in "[aé日*]{0,6}",
            text in "[aé日]{0,8}",
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(matches(&pattern, &text), reference(&p, &t), "{} ~ {}", pattern, text);
        }
    }
}
