//! Word lists for the synthetic source: the languages posts are written in, and the syllables
//! generated hashtag names are made of.
//!
//! Why several scripts: hashtag extraction and normalization are where a trends pipeline gets
//! Unicode wrong (combining marks in Devanagari, no spaces in Japanese, right-to-left Arabic,
//! case in Cyrillic, `ß`), so the demo data exercises all of them instead of ASCII only.
//! The lists are small on purpose; variety comes from combining them.

/// One language posts can be written in.
#[derive(Debug)]
pub struct Language {
    /// BCP 47 code, the post's `lang`.
    pub code: &'static str,
    /// Relative share of posts in this language.
    pub weight: f64,
    /// Whether words are separated by spaces (not in Japanese).
    pub spaced: bool,
    /// Words the body text is made of.
    pub words: &'static [&'static str],
    /// Punctuation that ends a sentence (attached to the preceding word).
    pub sentence_ends: &'static [&'static str],
    /// Syllables of generated hashtag names in this language's script.
    pub syllables: &'static [&'static str],
}

/// The languages of synthetic posts, with their share of the traffic.
pub const LANGUAGES: &[Language] = &[
    Language {
        code: "en",
        weight: 40.0,
        spaced: true,
        words: &[
            "just", "watched", "the", "new", "release", "and", "honestly", "it", "was", "great",
            "today", "with", "friends", "coffee", "morning", "love", "this", "team", "game",
            "code", "build", "shipping", "weekend", "finally", "people", "really", "think",
            "about", "music", "city", "night", "what", "a", "match", "deploy", "on", "Friday",
        ],
        sentence_ends: &[".", "!", "?"],
        syllables: &[
            "ka", "lo", "mi", "ra", "ton", "ver", "sun", "del", "pix", "zen", "bar", "no", "va",
            "tek", "lab", "go", "star", "byte", "cloud", "wave", "fy", "ly",
        ],
    },
    Language {
        code: "es",
        weight: 12.0,
        spaced: true,
        words: &[
            "hoy",
            "fue",
            "un",
            "día",
            "increíble",
            "con",
            "amigos",
            "la",
            "música",
            "del",
            "partido",
            "mañana",
            "gracias",
            "por",
            "todo",
            "qué",
            "bonito",
            "vamos",
            "ciudad",
            "noche",
            "mucho",
            "trabajo",
            "el",
            "café",
            "año",
            "nuevo",
        ],
        sentence_ends: &[".", "!", "?"],
        syllables: &[
            "sol", "mar", "vi", "da", "fies", "ta", "lu", "na", "pla", "ya", "ño", "ción", "rí",
            "o", "cora", "zón",
        ],
    },
    Language {
        code: "de",
        weight: 8.0,
        spaced: true,
        words: &[
            "heute",
            "war",
            "ein",
            "schöner",
            "Tag",
            "mit",
            "Freunden",
            "das",
            "Spiel",
            "morgen",
            "endlich",
            "Wochenende",
            "Straße",
            "wirklich",
            "gut",
            "Kaffee",
            "Arbeit",
            "Stadt",
            "Nacht",
            "über",
            "Grüße",
            "aus",
            "München",
        ],
        sentence_ends: &[".", "!", "?"],
        syllables: &[
            "berg", "wald", "über", "grün", "haus", "schön", "bahn", "feld", "märz", "straß", "e",
            "zeit", "licht", "stadt",
        ],
    },
    Language {
        code: "ja",
        weight: 12.0,
        spaced: false,
        words: &[
            "今日",
            "は",
            "とても",
            "楽しい",
            "一日",
            "でした",
            "友達",
            "と",
            "東京",
            "で",
            "ラーメン",
            "を",
            "食べ",
            "ました",
            "明日",
            "も",
            "頑張り",
            "ます",
            "新しい",
            "ゲーム",
            "音楽",
            "最高",
        ],
        sentence_ends: &["。", "！", "、"],
        syllables: &[
            "さ", "く", "ら", "ま", "つ", "り", "は", "な", "び", "カ", "タ", "ナ", "ラ", "メ",
            "ン", "東", "京", "山", "川", "夏", "祭",
        ],
    },
    Language {
        code: "ru",
        weight: 7.0,
        spaced: true,
        words: &[
            "сегодня",
            "был",
            "отличный",
            "день",
            "с",
            "друзьями",
            "новый",
            "матч",
            "музыка",
            "город",
            "ночь",
            "спасибо",
            "за",
            "всё",
            "очень",
            "интересно",
            "работа",
            "кофе",
        ],
        sentence_ends: &[".", "!", "?"],
        syllables: &[
            "мо", "ска", "ва", "ра", "лес", "нов", "день", "ми", "ро", "сла", "зи", "ма", "ко",
            "те",
        ],
    },
    Language {
        code: "ar",
        weight: 7.0,
        spaced: true,
        words: &[
            "اليوم",
            "كان",
            "يوما",
            "رائعا",
            "مع",
            "الأصدقاء",
            "مباراة",
            "جديدة",
            "موسيقى",
            "المدينة",
            "شكرا",
            "على",
            "كل",
            "شيء",
            "جميل",
            "جدا",
            "القهوة",
        ],
        sentence_ends: &[".", "!", "؟"],
        syllables: &[
            "سا", "لم", "كت", "اب", "نور", "قمر", "بحر", "شمس", "حب", "دار", "ريم", "ليل", "فجر",
        ],
    },
    Language {
        code: "hi",
        weight: 7.0,
        spaced: true,
        words: &[
            "आज",
            "का",
            "दिन",
            "बहुत",
            "अच्छा",
            "था",
            "दोस्तों",
            "के",
            "साथ",
            "नया",
            "मैच",
            "संगीत",
            "शहर",
            "धन्यवाद",
            "सब",
            "कुछ",
            "कॉफी",
            "काम",
        ],
        sentence_ends: &["।", "!"],
        syllables: &[
            "का",
            "मा",
            "रा",
            "ना",
            "सि",
            "वि",
            "ली",
            "पु",
            "गं",
            "गा",
            "दे",
            "शी",
            "नी",
            "रो",
            "हि",
            "मे",
            "क्ष",
        ],
    },
    Language {
        code: "ko",
        weight: 7.0,
        spaced: true,
        words: &[
            "오늘",
            "정말",
            "좋은",
            "하루",
            "였어요",
            "친구들과",
            "새로운",
            "경기",
            "음악",
            "도시",
            "밤",
            "감사합니다",
            "모두",
            "커피",
            "일",
            "최고",
        ],
        sentence_ends: &[".", "!"],
        syllables: &[
            "서", "울", "사", "랑", "하", "늘", "바", "다", "노", "래", "별", "꽃", "빛", "봄",
            "여", "름",
        ],
    },
];

/// Emoji used in posts, some glued to hashtags. Single code points only: a variation selector
/// (U+FE0F) or a zero-width joiner is a hashtag character, so `❤️#tag` would not be a hashtag.
pub const EMOJI: &[&str] = &[
    "🔥", "🚀", "⚽", "🎉", "😂", "👀", "💯", "✨", "🙌", "📈", "🦀", "☕",
];

/// The recognizable tags at the top of the popularity ranking, in rank order, as parts (so a
/// CamelCase spelling such as `#RustLang` can be rendered).
pub const TOP_TAGS: &[&[&str]] = &[
    &["rust"],
    &["ai"],
    &["kafka"],
    &["world", "cup"],
    &["rust", "lang"],
    &["fútbol"],
    &["東京"],
    &["open", "source"],
    &["fuß", "ball"],
    &["k", "pop"],
    &["новости"],
    &["machine", "learning"],
    &["música"],
    &["क्रिकेट"],
    &["رمضان"],
    &["アニメ"],
    &["한국"],
    &["bundes", "liga"],
    &["climate", "action"],
    &["bit", "coin"],
    &["москва"],
    &["bolly", "wood"],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_non_empty_and_free_of_hash_signs() {
        for lang in LANGUAGES {
            assert!(lang.weight > 0.0);
            for list in [lang.words, lang.sentence_ends, lang.syllables] {
                assert!(!list.is_empty(), "{}", lang.code);
                assert!(
                    list.iter()
                        .all(|w| !w.is_empty() && !w.contains(['#', '＃', '&']))
                );
            }
        }
        assert!(EMOJI.iter().all(|e| e.chars().count() == 1));
    }
}
