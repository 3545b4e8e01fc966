//! Hashtag extraction and normalization throughput on a generated, realistic corpus.
//!
//! `cargo bench -p trends-core --bench extract`
//!
//! The corpus is built here from a fixed seed (no files): posts in English, Spanish, Japanese,
//! Russian, Arabic, Hindi and Korean, 80–280 characters, ~15% without hashtags and 1–5
//! otherwise, some in upper, lower or fullwidth form or with the fullwidth sign, some URLs with
//! `#fragments`, some emoji. It holds 2,000 posts (about 700 KB of text): small enough to stay
//! in L2, as a post's text does right after it was parsed on the hot path; a corpus streamed
//! from L3 or memory would measure cache misses rather than this code. Each group reports
//! posts per second (`Throughput::Elements`):
//! - `extract`: `for_each_hashtag` over each post's text;
//! - `extract+normalize`: the same, normalizing each tag into one reused `String`, as the
//!   aggregator's hot path would;
//! - `parse_post`: parsing each post from its raw JSON (the `tweets` topic contract) alone,
//!   with serde_json into an owned `RawPost`;
//! - `parse_post_ref`: the same with the aggregator's fast parser (`parse_post_ref`: borrowed
//!   strings, one pass), run right after it for an A/B on the same machine state;
//! - `parse+extract+normalize` and `parse_ref+extract+normalize`: parsing, extraction and
//!   normalization, with either parser;
//! - `whole_path`: the aggregator's whole per-record work, parse + event time at ingest + the
//!   post's tags (extract, normalize, deduplicate, limit) + `PartitionCounter::record`, the
//!   changed counts taken once per 2,000 posts, on the corpus dated 1 ms apart: `parse_post`
//!   (before issue 14: `parse_post` + `extract_post_tags`), `parse_post_ref` (+
//!   `extract_post_ref_tags`) and `parse_post_ref+extractor` (+ a reused `TagExtractor`: what
//!   the aggregator runs).
//!
//! And `hostile_post`: the per-record work (`parse_post` + `extract_post_tags` with the default
//! limit of 30 tags) on one post of about 1 MB, the largest the broker accepts, built to cost
//! the most (issue 12's goal: under 10 ms each), and `hostile_post_ref`, the same through
//! `parse_post_ref` and a `TagExtractor`:
//! - `distinct_tags`: ~166,000 distinct tags in the text (`#t0 #t1 …`);
//! - `one_tag_repeated`: `#a ` 333,000 times;
//! - `case_variants`: 60,000 different spellings of one 16-letter tag;
//! - `supplied_distinct`: ~110,000 distinct tags in the `hashtags` array;
//! - `long_tag`: `#A` and 1,000,000 letters.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trends_core::counter::PartitionCounter;
use trends_core::format_rfc3339_millis;
use trends_core::hashtag::{for_each_hashtag, normalize_into};
use trends_core::post::{RawPost, event_time_at_ingest, parse_post, parse_post_ref};
use trends_core::tags::{
    DEFAULT_MAX_TAGS_PER_POST, TagExtractor, extract_post_ref_tags, extract_post_tags,
};
use trends_core::window::BucketLayout;

const POSTS: usize = 2_000;
const SEED: u64 = 0x5EED_2026_0522;

/// SplitMix64: small, deterministic, good enough to pick words.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`%.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

struct Language {
    code: &'static str,
    /// Joins words: Japanese is written without spaces.
    separator: &'static str,
    words: &'static [&'static str],
    tags: &'static [&'static str],
}

const LANGUAGES: &[Language] = &[
    Language {
        code: "en",
        separator: " ",
        words: &[
            "the", "morning", "coffee", "is", "great", "our", "team", "ships", "today", "weekend",
            "project", "finally", "working", "new", "release", "amazing", "game", "love", "this",
            "city", "news", "watching", "with", "friends", "again!", "so", "much", "fun,",
        ],
        tags: &[
            "Rust",
            "AI",
            "WorldCup",
            "Monday",
            "TechNews",
            "GameDay",
            "coffee",
            "NowPlaying",
            "100DaysOfCode",
            "OpenSource",
        ],
    },
    Language {
        code: "es",
        separator: " ",
        words: &[
            "hoy",
            "el",
            "partido",
            "fue",
            "increíble",
            "mañana",
            "vamos",
            "con",
            "amigos",
            "la",
            "ciudad",
            "nueva",
            "canción",
            "¡qué",
            "día!",
            "trabajo",
            "café",
            "playa",
            "y",
            "por",
        ],
        tags: &["Fútbol", "LaLiga", "Mañana", "Música", "Viernes", "España"],
    },
    Language {
        code: "ja",
        separator: "",
        words: &[
            "今日",
            "は",
            "とても",
            "楽しい",
            "一日",
            "でした",
            "。",
            "新しい",
            "曲",
            "を",
            "聴いて",
            "いる",
            "東京",
            "の",
            "天気",
            "最高",
            "！",
            "みんな",
            "ありがとう",
            "、",
            "カフェ",
        ],
        tags: &[
            "東京",
            "夏祭り",
            "ワールドカップ",
            "新曲",
            "今日のご飯",
            "ラーメン",
        ],
    },
    Language {
        code: "ru",
        separator: " ",
        words: &[
            "сегодня",
            "отличный",
            "день",
            "новый",
            "проект",
            "погода",
            "в",
            "Москве",
            "друзья",
            "спасибо",
            "матч",
            "был",
            "очень",
            "интересный",
            "смотрим",
            "и",
            "все",
        ],
        tags: &["Москва", "футбол", "новости", "погода", "СПб"],
    },
    Language {
        code: "ar",
        separator: " ",
        words: &[
            "اليوم",
            "يوم",
            "جميل",
            "في",
            "المدينة",
            "مع",
            "الأصدقاء",
            "مباراة",
            "رائعة",
            "شكرا",
            "جديد",
            "العمل",
            "القهوة",
            "و",
        ],
        tags: &["كرة_القدم", "الرياض", "رمضان", "أخبار", "مصر"],
    },
    Language {
        code: "hi",
        separator: " ",
        words: &[
            "आज",
            "का",
            "दिन",
            "बहुत",
            "अच्छा",
            "है",
            "नया",
            "गाना",
            "मैच",
            "दोस्तों",
            "के",
            "साथ",
            "धन्यवाद",
            "मौसम",
            "।",
        ],
        tags: &["क्रिकेट", "भारत", "बॉलीवुड", "दिल्ली", "चुनाव२०२४"],
    },
    Language {
        code: "ko",
        separator: " ",
        words: &[
            "오늘",
            "날씨",
            "정말",
            "좋다",
            "새로운",
            "노래",
            "친구들과",
            "함께",
            "경기",
            "최고",
            "감사합니다",
            "커피",
            "주말",
            "!",
        ],
        tags: &["서울", "맛집", "케이팝", "월드컵", "주말"],
    },
];

const URLS: &[&str] = &[
    "https://example.com/docs#intro",
    "https://news.example.org/2026/05/article/#comments",
    "www.example.net/path?q=rust#top",
    "https://t.co/AbCdEf123",
    "example.com/#frag",
    "https://en.wikipedia.org/wiki/Hashtag#History",
];

const EMOJI: &[&str] = &["🔥", "🎉", "😂", "❤️", "👍🏽", "⚽", "🇯🇵", "👨‍👩‍👧", "✨"];

/// Fullwidth form of ASCII letters and digits (`Rust` → `Ｒｕｓｔ`).
fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// One post's text and the number of hashtags written into it.
fn generate_post(rng: &mut Rng) -> (String, &'static str, usize) {
    let lang = &LANGUAGES[rng.below(LANGUAGES.len())];
    let target_chars = 80 + rng.below(201);
    let tag_count = if rng.chance(15) { 0 } else { 1 + rng.below(5) };

    let mut tags: Vec<String> = Vec::with_capacity(tag_count);
    for _ in 0..tag_count {
        // A few tags shared by every language, as trends are.
        let base = if rng.chance(20) {
            rng.pick(LANGUAGES[0].tags)
        } else {
            rng.pick(lang.tags)
        };
        let written = match rng.below(20) {
            0..=2 => base.to_uppercase(),
            3..=4 => base.to_lowercase(),
            5..=6 => fullwidth(base),
            _ => base.to_string(),
        };
        let sign = if rng.chance(5) { "＃" } else { "#" };
        tags.push(format!("{sign}{written}"));
    }
    let url = rng.chance(12).then(|| rng.pick(URLS));
    let emoji = rng.chance(25).then(|| rng.pick(EMOJI));

    let budget = target_chars
        .saturating_sub(tags.iter().map(|t| t.chars().count() + 1).sum::<usize>())
        .saturating_sub(url.map_or(0, |u| u.len() + 1))
        .max(10);
    let mut body = String::new();
    while body.chars().count() < budget {
        if !body.is_empty() {
            body.push_str(lang.separator);
        }
        body.push_str(rng.pick(lang.words));
    }

    // Tags go at the start, in the middle (between blanks) or, most often, at the end.
    let mut text = String::with_capacity(body.len() + 128);
    let mut trailing = Vec::new();
    for tag in tags {
        match rng.below(10) {
            0 => {
                text.push_str(&tag);
                text.push(' ');
            }
            1..=2 => {
                body.push(' ');
                body.push_str(&tag);
                body.push(' ');
            }
            _ => trailing.push(tag),
        }
    }
    text.push_str(&body);
    if let Some(emoji) = emoji {
        text.push_str(emoji);
    }
    if let Some(url) = url {
        text.push(' ');
        text.push_str(url);
    }
    for tag in trailing {
        text.push(' ');
        text.push_str(&tag);
    }
    (text, lang.code, tag_count)
}

struct Corpus {
    texts: Vec<String>,
    json: Vec<Vec<u8>>,
    /// The same posts dated 1 ms apart from [`STREAM_T0_MS`], as a partition of a live
    /// stream sees them: what the whole-path bench counts.
    stream: Vec<Vec<u8>>,
}

fn corpus() -> Corpus {
    let mut rng = Rng(SEED);
    let mut texts = Vec::with_capacity(POSTS);
    let mut json = Vec::with_capacity(POSTS);
    let mut stream = Vec::with_capacity(POSTS);
    let mut written_tags = 0;
    for n in 0..POSTS {
        let (text, lang, tags) = generate_post(&mut rng);
        written_tags += tags;
        let post = RawPost {
            id: (1_850_000_000_000_000_000_u64 + n as u64).to_string(),
            text: text.clone(),
            created_at: format!(
                "2026-11-22T10:{:02}:{:02}.{:03}Z",
                n / 60 % 60,
                n % 60,
                n % 1000
            ),
            author_id: Some((rng.below(100_000)).to_string()),
            lang: Some(lang.to_string()),
            source: Some("synthetic".to_string()),
            hashtags: None,
        };
        json.push(serde_json::to_vec(&post).expect("a post serializes"));
        // The same post in a stream of 1,000 posts a second (the count bench's rate).
        let post = RawPost {
            created_at: format_rfc3339_millis(STREAM_T0_MS + n as i64),
            ..post
        };
        stream.push(serde_json::to_vec(&post).expect("a post serializes"));
        texts.push(text);
    }

    // The corpus is what it claims to be: every written tag is found, URL fragments are not.
    let mut found = 0;
    for text in &texts {
        for_each_hashtag(text, |_| found += 1);
    }
    assert_eq!(
        found, written_tags,
        "the extractor finds every generated tag"
    );
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let bytes: usize = texts.iter().map(String::len).sum();
    let untagged = texts
        .iter()
        .filter(|t| {
            let mut any = false;
            for_each_hashtag(t, |_| any = true);
            !any
        })
        .count();
    eprintln!(
        "corpus: {POSTS} posts, {:.0} chars ({:.0} bytes) per post on average, {:.1}% without \
         hashtags, {:.2} hashtags per post, {:.0} JSON bytes per post",
        chars as f64 / POSTS as f64,
        bytes as f64 / POSTS as f64,
        100.0 * untagged as f64 / POSTS as f64,
        found as f64 / POSTS as f64,
        json.iter().map(Vec::len).sum::<usize>() as f64 / POSTS as f64,
    );
    Corpus {
        texts,
        json,
        stream,
    }
}

fn benches(c: &mut Criterion) {
    let corpus = corpus();
    let elements = Throughput::Elements(corpus.texts.len() as u64);

    let mut group = c.benchmark_group("extract");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        b.iter(|| {
            for text in &corpus.texts {
                for_each_hashtag(text, |tag| {
                    black_box(tag);
                });
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("extract+normalize");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        let mut buf = String::with_capacity(256);
        b.iter(|| {
            for text in &corpus.texts {
                for_each_hashtag(text, |tag| {
                    normalize_into(tag, &mut buf);
                    black_box(&buf);
                });
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse_post");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        b.iter(|| {
            for json in &corpus.json {
                let _ = black_box(parse_post(json));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse_post_ref");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        b.iter(|| {
            for json in &corpus.json {
                let _ = black_box(parse_post_ref(json));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse_ref+extract+normalize");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        let mut buf = String::with_capacity(256);
        b.iter(|| {
            for json in &corpus.json {
                if let Ok(parsed) = parse_post_ref(json) {
                    for_each_hashtag(&parsed.text, |tag| {
                        normalize_into(tag, &mut buf);
                        black_box(&buf);
                    });
                }
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse+extract+normalize");
    group.throughput(elements.clone());
    group.bench_function("posts", |b| {
        let mut buf = String::with_capacity(256);
        b.iter(|| {
            for json in &corpus.json {
                if let Ok(parsed) = parse_post(json) {
                    for_each_hashtag(&parsed.post.text, |tag| {
                        normalize_into(tag, &mut buf);
                        black_box(&buf);
                    });
                }
            }
        })
    });
    group.finish();

    // The aggregator's whole per-record work, old path against new, back to back: parse,
    // event time at ingest, the post's tags (extract, normalize, deduplicate, limit), count
    // into the partition's counter. The posts are the corpus dated 1 ms apart (`stream`); the
    // changed counts are taken once per pass, as a commit every 2,000 posts would. The
    // counter lives across iterations: the steady state of a partition whose vocabulary is
    // known.
    let mut group = c.benchmark_group("whole_path");
    group.throughput(elements);
    group.bench_function("parse_post", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        b.iter(|| whole_path_owned(&corpus.stream, &mut counter))
    });
    group.bench_function("parse_post_ref", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        b.iter(|| whole_path_borrowed(&corpus.stream, &mut counter))
    });
    group.bench_function("parse_post_ref+extractor", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        let mut extractor = TagExtractor::new();
        b.iter(|| whole_path_reused(&corpus.stream, &mut counter, &mut extractor))
    });
    group.finish();
}

/// One pass of the aggregator's per-record work as it was before issue 14: `parse_post`
/// (serde_json, owned strings) and `extract_post_tags`.
fn whole_path_owned(posts: &[Vec<u8>], counter: &mut PartitionCounter) {
    for json in posts {
        let Ok(parsed) = parse_post(json) else {
            continue;
        };
        let Ok(event_time) = event_time_at_ingest(&parsed, INGEST_MS, MAX_SKEW_MS) else {
            continue;
        };
        let tags = extract_post_tags(&parsed.post, DEFAULT_MAX_TAGS_PER_POST);
        black_box(counter.record(event_time, &tags.tags));
    }
    black_box(counter.take_updates());
}

/// The same with `parse_post_ref` and `extract_post_ref_tags` (a new `PostTags` per post).
fn whole_path_borrowed(posts: &[Vec<u8>], counter: &mut PartitionCounter) {
    for json in posts {
        let Ok(parsed) = parse_post_ref(json) else {
            continue;
        };
        let Ok(event_time) = parsed.event_time_at_ingest(INGEST_MS, MAX_SKEW_MS) else {
            continue;
        };
        let tags = extract_post_ref_tags(&parsed, DEFAULT_MAX_TAGS_PER_POST);
        black_box(counter.record(event_time, &tags.tags));
    }
    black_box(counter.take_updates());
}

/// The aggregator's path since issue 14: `parse_post_ref` and a reused `TagExtractor`.
fn whole_path_reused(
    posts: &[Vec<u8>],
    counter: &mut PartitionCounter,
    extractor: &mut TagExtractor,
) {
    for json in posts {
        let Ok(parsed) = parse_post_ref(json) else {
            continue;
        };
        let Ok(event_time) = parsed.event_time_at_ingest(INGEST_MS, MAX_SKEW_MS) else {
            continue;
        };
        let tags = extractor.extract(&parsed, DEFAULT_MAX_TAGS_PER_POST);
        black_box(counter.record(event_time, &tags.tags));
    }
    black_box(counter.take_updates());
}

/// The time the benchmark's thread spent on a CPU, from `/proc/thread-self/schedstat`
/// (Linux; 0 elsewhere), instead of wall time: on a shared machine wall time also counts
/// the time other processes held the core, which swings by 2× from one minute to the next.
/// The kernel updates the figure at every tick and context switch, so it lags by a few
/// milliseconds at most, against samples of about 200 ms. Caches and memory bandwidth are
/// still shared: this is not a figure for an idle machine either.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().saturating_sub(started))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

/// In on-CPU time (`on_cpu/…`): parsing, old and new, back to back; the new path's other
/// stages apart (`tags`: a reused `TagExtractor` on parsed posts; `count`: `record` of
/// extracted tags, `take_updates` once per pass); the whole path, old and new.
fn on_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let corpus = corpus();
    let mut group = c.benchmark_group("on_cpu");
    group.throughput(Throughput::Elements(corpus.json.len() as u64));
    group.bench_function("parse_post", |b| {
        b.iter(|| {
            for json in &corpus.json {
                let _ = black_box(parse_post(json));
            }
        })
    });
    group.bench_function("parse_post_ref", |b| {
        b.iter(|| {
            for json in &corpus.json {
                let _ = black_box(parse_post_ref(json));
            }
        })
    });
    // The new path's stages apart: tags of parsed posts, then counting extracted tags.
    let parsed: Vec<_> = corpus
        .stream
        .iter()
        .filter_map(|json| parse_post_ref(json).ok())
        .collect();
    group.bench_function("tags", |b| {
        let mut extractor = TagExtractor::new();
        b.iter(|| {
            for post in &parsed {
                black_box(
                    extractor
                        .extract(post, DEFAULT_MAX_TAGS_PER_POST)
                        .tags
                        .len(),
                );
            }
        })
    });
    let extracted: Vec<_> = parsed
        .iter()
        .map(|post| {
            let tags = extract_post_ref_tags(post, DEFAULT_MAX_TAGS_PER_POST).tags;
            (post.event_time, tags)
        })
        .collect();
    group.bench_function("count", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        b.iter(|| {
            for (event_time, tags) in &extracted {
                black_box(counter.record(*event_time, tags));
            }
            black_box(counter.take_updates());
        })
    });
    group.bench_function("whole_path/parse_post", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        b.iter(|| whole_path_owned(&corpus.stream, &mut counter))
    });
    group.bench_function("whole_path/parse_post_ref+extractor", |b| {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        let mut extractor = TagExtractor::new();
        b.iter(|| whole_path_reused(&corpus.stream, &mut counter, &mut extractor))
    });
    group.finish();
}

/// When the whole-path bench's stream starts: 2026-11-22T10:00:00Z.
const STREAM_T0_MS: i64 = 1_795_341_600_000;
/// Its posts' ingest time, a second after the last was written: all count at their own time.
const INGEST_MS: i64 = STREAM_T0_MS + POSTS as i64 + 1_000;
/// The aggregator's default `max_future_skew_secs`.
const MAX_SKEW_MS: i64 = 300_000;

/// About `bytes` of text made of `unit(i)` for i = 0, 1, 2, ….
fn fill(bytes: usize, unit: impl Fn(usize) -> String) -> String {
    let mut text = String::with_capacity(bytes + 64);
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&unit(i));
        i += 1;
    }
    text
}

fn post_json(text: &str, hashtags: Option<Vec<String>>) -> Vec<u8> {
    serde_json::to_vec(&RawPost {
        id: "hostile".into(),
        text: text.into(),
        created_at: "2026-11-22T10:00:00.000Z".into(),
        author_id: None,
        lang: None,
        source: None,
        hashtags,
    })
    .expect("serializes")
}

fn hostile(c: &mut Criterion) {
    const MB: usize = 1_000_000;
    let variants = |i: usize| {
        let letters: String = "abcdefghijklmnop"
            .chars()
            .enumerate()
            .map(|(k, ch)| {
                if i >> k & 1 == 1 {
                    ch.to_ascii_uppercase()
                } else {
                    ch
                }
            })
            .collect();
        format!("#{letters} ")
    };
    let supplied: Vec<String> = {
        let mut list = Vec::new();
        let mut size = 0;
        while size < MB {
            let tag = format!("s{}", list.len());
            size += tag.len() + 3;
            list.push(tag);
        }
        list
    };
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "distinct_tags",
            post_json(&fill(MB, |i| format!("#t{i} ")), None),
        ),
        (
            "one_tag_repeated",
            post_json(&fill(MB, |_| "#a ".into()), None),
        ),
        ("case_variants", post_json(&fill(MB, variants), None)),
        ("supplied_distinct", post_json("", Some(supplied))),
        (
            "long_tag",
            post_json(&format!("#A{}", "b".repeat(MB)), None),
        ),
    ];
    let mut group = c.benchmark_group("hostile_post");
    group.throughput(Throughput::Elements(1));
    for (name, json) in &cases {
        assert!(json.len() >= MB, "{name} is {} bytes", json.len());
        group.bench_function(*name, |b| {
            b.iter(|| {
                let parsed = parse_post(json).expect("valid");
                black_box(extract_post_tags(&parsed.post, DEFAULT_MAX_TAGS_PER_POST))
            })
        });
    }
    group.finish();
    // The same posts through the aggregator's path since issue 14.
    let mut group = c.benchmark_group("hostile_post_ref");
    group.throughput(Throughput::Elements(1));
    for (name, json) in &cases {
        let mut extractor = TagExtractor::new();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let parsed = parse_post_ref(json).expect("valid");
                black_box(
                    extractor
                        .extract(&parsed, DEFAULT_MAX_TAGS_PER_POST)
                        .tags
                        .len(),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = extract;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(2))
        .measurement_time(std::time::Duration::from_secs(6));
    targets = benches, hostile
}
criterion_group! {
    name = extract_on_cpu;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(2))
        .measurement_time(std::time::Duration::from_secs(6));
    targets = on_cpu
}
criterion_main!(extract, extract_on_cpu);
