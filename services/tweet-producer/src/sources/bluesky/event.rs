//! Jetstream's events, mapped to the raw post contract: pure, no I/O.
//!
//! Mapping ([`map_event`]): id `bsky:<did>/<rkey>`, text `record.text`, `created_at`
//! `record.createdAt` (when it is not RFC 3339, the event's `time_us` instead), `lang` the
//! first of `record.langs`, `author_id` the DID, `source` `bluesky`, `hashtags` the tags of
//! `record.facets[].features[]` of type `app.bsky.richtext.facet#tag` plus `record.tags` (once
//! each, in order; absent when there are none, so the aggregator extracts from the text). Only
//! `kind: "commit"` events whose `commit.operation` is `create` in collection
//! `app.bsky.feed.post` are posts; everything else (deletes, updates, `identity` and `account`
//! events) only moves the resume position ([`Mapped::Other`]).

use serde::Deserialize;
use trends_core::EpochMillis;
use trends_core::post::{RawPost, parse_rfc3339_millis};

use crate::sources::contract::SourcePost;
use crate::sources::live::tags;
use crate::sources::position::Mark;

/// The collection subscribed to.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
/// The facet feature type of a hashtag.
pub const TAG_FEATURE: &str = "app.bsky.richtext.facet#tag";

/// The subscribe URL for a `cursor` (none: live).
pub fn subscribe_url(host: &str, cursor: Option<i64>) -> String {
    let mut url = format!("{host}/subscribe?wantedCollections={POST_COLLECTION}");
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={}", cursor.max(0)));
    }
    url
}

/// One Jetstream event, as far as we read it.
#[derive(Debug, Deserialize)]
struct Event {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    operation: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    record: Option<serde_json::Value>,
}

/// The fields of an `app.bsky.feed.post` record we use.
#[derive(Debug, Deserialize)]
struct PostRecord {
    text: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(default)]
    langs: Option<Vec<String>>,
    #[serde(default)]
    facets: Option<Vec<Facet>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Facet {
    #[serde(default)]
    features: Vec<Feature>,
}

#[derive(Debug, Deserialize)]
struct Feature {
    #[serde(rename = "$type", default)]
    kind: String,
    #[serde(default)]
    tag: Option<String>,
}

/// What one frame means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A new post, and the event's `time_us`.
    Post(Box<SourcePost>),
    /// Any other event: only its `time_us` matters.
    Other { time_us: i64 },
}

/// Maps one Jetstream text frame; `Err` (the reason) for a frame that is not a valid event.
pub fn map_event(frame: &str) -> Result<Mapped, String> {
    let event: Event = serde_json::from_str(frame).map_err(|e| format!("not an event: {e}"))?;
    let time_us = event.time_us;
    let commit = match (event.kind.as_str(), event.commit) {
        ("commit", Some(commit)) => commit,
        ("commit", None) => return Err("a commit event without a commit".into()),
        _ => return Ok(Mapped::Other { time_us }),
    };
    if commit.operation != "create" || commit.collection != POST_COLLECTION {
        return Ok(Mapped::Other { time_us });
    }
    let record = commit.record.ok_or("a created post without a record")?;
    let record: PostRecord =
        serde_json::from_value(record).map_err(|e| format!("not a post record: {e}"))?;
    if event.did.is_empty() || commit.rkey.is_empty() {
        return Err("a post without did or rkey".into());
    }
    let (created_at, event_time) = match parse_rfc3339_millis(&record.created_at) {
        Some(ms) => (record.created_at, ms),
        None => {
            let ms: EpochMillis = time_us.div_euclid(1000);
            let text = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or("time_us out of range")?
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            (text, ms)
        }
    };
    let facet_tags = record
        .facets
        .iter()
        .flatten()
        .flat_map(|f| f.features.iter())
        .filter(|f| f.kind == TAG_FEATURE)
        .filter_map(|f| f.tag.clone());
    let hashtags = tags(facet_tags.chain(record.tags.into_iter().flatten()));
    let post = RawPost {
        id: format!("bsky:{}/{}", event.did, commit.rkey),
        text: record.text,
        created_at,
        author_id: Some(event.did),
        lang: record.langs.and_then(|l| l.into_iter().next()),
        source: Some("bluesky".to_owned()),
        hashtags,
    };
    let post = SourcePost::new(post, event_time).at(Mark::TimeUs(time_us));
    Ok(Mapped::Post(Box::new(post)))
}

/// Only the cursor of an event.
#[derive(Debug, Deserialize)]
struct TimeOnly {
    time_us: i64,
}

/// The `time_us` of a frame, reading nothing else into memory (for frames too large to map).
pub fn frame_time_us(frame: &str) -> Result<i64, String> {
    serde_json::from_str::<TimeOnly>(frame)
        .map(|event| event.time_us)
        .map_err(|e| format!("not an event: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::contract::assert_publishable;

    /// A post as Jetstream documents its commit events (field order and shape as published).
    const POST: &str = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1725911162329308,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.post","createdAt":"2024-09-09T19:46:02.102Z","langs":["en","pt"],"text":"Loving #RustLang and #kafka","facets":[{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"RustLang"}],"index":{"byteEnd":15,"byteStart":7}},{"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com"}],"index":{"byteEnd":26,"byteStart":20}},{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"kafka"}],"index":{"byteEnd":26,"byteStart":20}}],"tags":["streaming","kafka"]},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}"#;

    #[test]
    fn a_created_post_maps_to_the_contract() {
        let Ok(Mapped::Post(post)) = map_event(POST) else {
            panic!("a post");
        };
        assert_eq!(post.position, Some(Mark::TimeUs(1_725_911_162_329_308)));
        assert_eq!(post.event_time, 1_725_911_162_102);
        assert_eq!(post.payload, None);
        assert_eq!(
            post.post,
            RawPost {
                id: "bsky:did:plc:eygmaihciaxprqvxpfvl6flk/3l3qo2vuowo2b".into(),
                text: "Loving #RustLang and #kafka".into(),
                created_at: "2024-09-09T19:46:02.102Z".into(),
                author_id: Some("did:plc:eygmaihciaxprqvxpfvl6flk".into()),
                lang: Some("en".into()),
                source: Some("bluesky".into()),
                hashtags: Some(vec!["RustLang".into(), "kafka".into(), "streaming".into()]),
            }
        );
        // What is published passes the aggregator's own parser.
        assert_publishable(&post);
    }

    #[test]
    fn other_events_only_move_the_position() {
        let like = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1725911162329308,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.like","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.like","createdAt":"2024-09-09T19:46:02.102Z","subject":{"cid":"bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4","uri":"at://did:plc:wa7b35aakoll7hugkrjtf3xf/app.bsky.feed.post/3l3pte3p2e325"}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}"#;
        let delete = r#"{"did":"did:plc:rfov6bpyztcnedeyyzgfq42k","time_us":1725516666833633,"kind":"commit","commit":{"rev":"3l3f6nzl3cv2s","operation":"delete","collection":"app.bsky.feed.post","rkey":"3l3f6nzl3cv2s"}}"#;
        let identity = r#"{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","time_us":1725516665234703,"kind":"identity","identity":{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","handle":"yohenrique.bsky.social","seq":1409752997,"time":"2024-09-05T06:11:04.870Z"}}"#;
        let account = r#"{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","time_us":1725516665333808,"kind":"account","account":{"active":true,"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","seq":1409753013,"time":"2024-09-05T06:11:04.870Z"}}"#;
        assert_eq!(
            map_event(like),
            Ok(Mapped::Other {
                time_us: 1_725_911_162_329_308
            })
        );
        assert_eq!(
            map_event(delete),
            Ok(Mapped::Other {
                time_us: 1_725_516_666_833_633
            })
        );
        assert_eq!(
            map_event(identity),
            Ok(Mapped::Other {
                time_us: 1_725_516_665_234_703
            })
        );
        assert_eq!(
            map_event(account),
            Ok(Mapped::Other {
                time_us: 1_725_516_665_333_808
            })
        );
    }

    #[test]
    fn a_post_without_tags_or_valid_created_at_still_maps() {
        let frame = r#"{"did":"did:plc:a","time_us":1725911162329308,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"$type":"app.bsky.feed.post","createdAt":"yesterday","text":"plain #text"},"cid":"c"}}"#;
        let Ok(Mapped::Post(post)) = map_event(frame) else {
            panic!("a post");
        };
        assert_eq!(
            post.post.hashtags, None,
            "the aggregator extracts from text"
        );
        assert_eq!(post.post.lang, None);
        assert_eq!(post.post.created_at, "2024-09-09T19:46:02.329Z");
        assert_eq!(post.event_time, 1_725_911_162_329);
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        for frame in [
            "",
            "not json",
            "[]",
            r#"{"did":"did:plc:a","kind":"commit"}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit"}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k"}}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":5}}}"#,
            r#"{"did":"","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":"x","createdAt":"2024-09-09T19:46:02.102Z"}}}"#,
            r#"{"did":"did:plc:a","time_us":9223372036854775807,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":"x","createdAt":"bad"}}}"#,
        ] {
            assert!(map_event(frame).is_err(), "{frame}");
        }
    }

    #[test]
    fn an_oversized_frame_yields_its_time_us_without_mapping() {
        let text = "x".repeat(3 << 20);
        let frame = format!(
            r#"{{"did":"did:plc:a","time_us":1725911162329308,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{{"text":"{text}","createdAt":"2024-09-09T19:46:02.102Z","nested":{{"a":[1,2,{{"b":null}}]}}}}}}}}"#
        );
        assert_eq!(frame_time_us(&frame), Ok(1_725_911_162_329_308));
        assert_eq!(frame_time_us(POST), Ok(1_725_911_162_329_308));
        for bad in ["", "{", r#"{"time_us":"soon"}"#, r#"{"did":"x"}"#, "[]"] {
            assert!(frame_time_us(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_url_carries_the_collection_and_cursor() {
        assert_eq!(
            subscribe_url("wss://jetstream2.us-east.bsky.network", None),
            "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post"
        );
        assert_eq!(
            subscribe_url("ws://127.0.0.1:1", Some(1_725_911_162_329_308)),
            "ws://127.0.0.1:1/subscribe?wantedCollections=app.bsky.feed.post&cursor=1725911162329308"
        );
    }
}
