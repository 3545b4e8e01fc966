//! Keyword and language filters, applied in the producer to every source.
//!
//! Why in the producer: the original system filtered its stream by keyword and language, and
//! of today's sources only some can filter server-side (X's rules can, Jetstream cannot). Doing
//! it here gives every source the same semantics, and each drop is counted by reason, so a
//! filter that removes everything is visible in the metrics rather than looking like a dead
//! stream.
//!
//! Semantics: keywords are any-of, case-insensitive substrings of the text (hashtags are part of
//! the text, so `rust` also keeps `#RustLang`); languages are any-of, compared case-insensitively
//! on the primary tag too (`en` keeps `en-US`); a post without a language is dropped when a
//! language filter is set. Empty lists filter nothing.

/// Why a post was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Keyword,
    Language,
}

/// The configured filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    keywords: Vec<String>,
    languages: Vec<String>,
}

impl Filters {
    /// Filters from keyword and language lists (any case; empty entries ignored).
    pub fn new(keywords: &[String], languages: &[String]) -> Filters {
        let clean = |items: &[String]| {
            items
                .iter()
                .map(|k| k.trim().to_lowercase())
                .filter(|k| !k.is_empty())
                .collect()
        };
        Filters {
            keywords: clean(keywords),
            languages: clean(languages),
        }
    }

    /// `Ok` if the post is kept, else the first filter that drops it (language before keyword:
    /// it is the cheaper check).
    pub fn check(&self, text: &str, lang: Option<&str>) -> Result<(), Drop> {
        if !self.languages.is_empty() {
            let Some(lang) = lang.map(str::to_lowercase) else {
                return Err(Drop::Language);
            };
            let primary = lang.split(['-', '_']).next().unwrap_or("");
            if !self.languages.iter().any(|l| *l == lang || *l == primary) {
                return Err(Drop::Language);
            }
        }
        if !self.keywords.is_empty() {
            let text = text.to_lowercase();
            if !self.keywords.iter().any(|k| text.contains(k.as_str())) {
                return Err(Drop::Keyword);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_filters_keep_everything() {
        let f = Filters::new(&[], &list(&["  ", ""]));
        assert_eq!(f.check("", None), Ok(()));
    }

    #[test]
    fn keywords_are_any_of_and_case_insensitive() {
        let f = Filters::new(&list(&["Rust", "kafka"]), &[]);
        assert_eq!(f.check("Loving #RustLang", None), Ok(()));
        assert_eq!(f.check("KAFKA streams", Some("en")), Ok(()));
        assert_eq!(f.check("Straße", None), Err(Drop::Keyword));
    }

    #[test]
    fn languages_match_the_primary_tag_and_require_a_language() {
        let f = Filters::new(&[], &list(&["en", "pt-BR"]));
        assert_eq!(f.check("x", Some("en")), Ok(()));
        assert_eq!(f.check("x", Some("EN-us")), Ok(()));
        assert_eq!(f.check("x", Some("pt-br")), Ok(()));
        assert_eq!(f.check("x", Some("pt")), Err(Drop::Language));
        assert_eq!(f.check("x", Some("ja")), Err(Drop::Language));
        assert_eq!(f.check("x", None), Err(Drop::Language));
    }

    #[test]
    fn language_is_checked_before_keywords() {
        let f = Filters::new(&list(&["rust"]), &list(&["en"]));
        assert_eq!(f.check("nothing", Some("ja")), Err(Drop::Language));
        assert_eq!(f.check("nothing", Some("en")), Err(Drop::Keyword));
        assert_eq!(f.check("rust", Some("en")), Ok(()));
    }
}
