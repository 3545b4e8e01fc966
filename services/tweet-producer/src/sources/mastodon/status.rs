//! Mastodon's statuses, mapped to the raw post contract: pure, no I/O.
//!
//! Mapping ([`map_status`]): id `mastodon:<host>/<status id>` (status ids are per server; the
//! host is `base_url`'s), text the HTML `content` as plain text ([`super::html`]) after the
//! content warning (`spoiler_text`) if any, `created_at`, `lang` = `language`, `author_id` =
//! `account.id`, `source` = `mastodon`, `hashtags` = `tags[].name` (absent when empty, so the
//! aggregator extracts from the text). Boosts are not new posts.

use serde::Deserialize;
use trends_core::post::{RawPost, parse_rfc3339_millis};

use super::html;
use crate::sources::contract::SourcePost;
use crate::sources::live::tags;

/// The fields of a Status we use.
#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    created_at: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: String,
    account: Account,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    reblog: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
}

/// Maps the payload of an `update` event (a Status as a JSON string): `Ok(None)` for a status
/// that is not a new post (a boost), `Err` (the reason) for one that is not a valid status.
pub fn map_status(host: &str, data: &str) -> Result<Option<SourcePost>, String> {
    let status: Status = serde_json::from_str(data).map_err(|e| format!("not a status: {e}"))?;
    if status.reblog.is_some() {
        return Ok(None);
    }
    if status.id.is_empty() || status.account.id.is_empty() {
        return Err("a status without id or account id".into());
    }
    let event_time = parse_rfc3339_millis(&status.created_at)
        .ok_or_else(|| format!("created_at {:?} is not RFC 3339", status.created_at))?;
    let content = html::to_text(&status.content);
    let text = match status.spoiler_text.trim() {
        "" => content,
        warning => format!("{warning}\n\n{content}"),
    };
    let hashtags = tags(status.tags.into_iter().map(|tag| tag.name));
    let post = RawPost {
        id: format!("mastodon:{host}/{}", status.id),
        text,
        created_at: status.created_at,
        author_id: Some(status.account.id),
        lang: status.language.filter(|l| !l.is_empty()),
        source: Some("mastodon".to_owned()),
        hashtags,
    };
    Ok(Some(SourcePost::new(post, event_time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::contract::assert_publishable;

    /// The federated-timeline update of Mastodon's streaming documentation.
    const PUBLIC_UPDATE: &str = r#"{"id":"108914354907984653","created_at":"2022-08-30T23:12:47.000Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://mstdn.jp/users/aiueohisama/statuses/108914354891945610","url":"https://mstdn.jp/@aiueohisama/108914354891945610","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":null,"content":"<p>処女の子が「処女だからキモい絡み方しちゃうかもだけど許して🥺」なんて言ってるのわたしは見たことない、童貞の甘えだよそれは 嫌われたくないなら最低限のマナーくらい身につけた方がいい</p>","reblog":null,"account":{"id":"272619","username":"aiueohisama","acct":"aiueohisama@mstdn.jp","display_name":"💎🌻陽菜💙💛","locked":false,"bot":false,"discoverable":false,"group":false,"created_at":"2017-04-15T00:00:00.000Z","note":"<p>とっても素直で真面目なOLでし！</p>","url":"https://mstdn.jp/@aiueohisama","avatar":"https://files.mastodon.social/cache/accounts/avatars/000/272/619/original/573669a325c87b8b.jpeg","avatar_static":"https://files.mastodon.social/cache/accounts/avatars/000/272/619/original/573669a325c87b8b.jpeg","header":"https://files.mastodon.social/cache/accounts/headers/000/272/619/original/5d5dad59a9fd1531.jpeg","header_static":"https://files.mastodon.social/cache/accounts/headers/000/272/619/original/5d5dad59a9fd1531.jpeg","followers_count":182,"following_count":20,"statuses_count":1128,"last_status_at":"2022-08-30","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[],"emojis":[],"card":null,"poll":null,"filter_results":[]}"#;

    /// The hashtag-timeline update of the same documentation.
    const HASHTAG_UPDATE: &str = r#"{"id":"108914430312582020","created_at":"2022-08-30T23:31:58.006Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://mastodon.social/users/trwnh/statuses/108914430312582020","url":"https://mastodon.social/@trwnh/108914430312582020","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":null,"content":"<p><a href=\"https://mastodon.social/tags/test\" class=\"mention hashtag\" rel=\"tag\">#<span>test</span></a></p>","reblog":null,"application":{"name":"Web","website":null},"account":{"id":"14715","username":"trwnh","acct":"trwnh","display_name":"infinite love ⴳ","locked":false,"bot":false,"discoverable":true,"group":false,"created_at":"2016-11-24T00:00:00.000Z","note":"","url":"https://mastodon.social/@trwnh","avatar":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","avatar_static":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","header":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","header_static":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","followers_count":2520,"following_count":266,"statuses_count":59817,"last_status_at":"2022-08-30","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[{"name":"test","url":"https://mastodon.social/tags/test"}],"emojis":[],"card":null,"poll":null}"#;

    #[test]
    fn documented_updates_map_to_the_contract() {
        let Ok(Some(post)) = map_status("mastodon.social", HASHTAG_UPDATE) else {
            panic!("a post");
        };
        assert_eq!(post.event_time, 1_661_902_318_006);
        assert_eq!(post.position, None);
        assert_eq!(
            post.post,
            RawPost {
                id: "mastodon:mastodon.social/108914430312582020".into(),
                text: "#test".into(),
                created_at: "2022-08-30T23:31:58.006Z".into(),
                author_id: Some("14715".into()),
                lang: Some("en".into()),
                source: Some("mastodon".into()),
                hashtags: Some(vec!["test".into()]),
            }
        );
        assert_publishable(&post);

        let Ok(Some(post)) = map_status("mastodon.social", PUBLIC_UPDATE) else {
            panic!("a post");
        };
        assert_eq!(post.post.id, "mastodon:mastodon.social/108914354907984653");
        assert!(
            post.post.text.starts_with("処女の子が"),
            "{}",
            post.post.text
        );
        assert!(!post.post.text.contains("<p>"));
        assert_eq!(post.post.hashtags, None, "no tags: extracted from the text");
        assert_eq!(post.post.author_id.as_deref(), Some("272619"));
    }

    #[test]
    fn content_warnings_lead_the_text_and_boosts_are_not_posts() {
        let warned = r#"{"id":"1","created_at":"2022-08-30T23:31:58.006Z","spoiler_text":"CW: spoilers","language":null,"content":"<p>the end</p>","account":{"id":"2"},"tags":[{"name":"Films"},{"name":"Films"}]}"#;
        let Ok(Some(post)) = map_status("h", warned) else {
            panic!("a post");
        };
        assert_eq!(post.post.text, "CW: spoilers\n\nthe end");
        assert_eq!(post.post.lang, None);
        assert_eq!(post.post.hashtags, Some(vec!["Films".to_owned()]));
        let boost = r#"{"id":"3","created_at":"2022-08-30T23:31:58.006Z","content":"","account":{"id":"2"},"reblog":{"id":"1"}}"#;
        assert_eq!(map_status("h", boost), Ok(None));
    }

    #[test]
    fn malformed_statuses_are_errors_never_panics() {
        for data in [
            "",
            "undefined",
            "107214471804101576",
            "{}",
            r#"{"id":"1","created_at":"2022-08-30T23:31:58.006Z","content":"x"}"#,
            r#"{"id":"","created_at":"2022-08-30T23:31:58.006Z","content":"x","account":{"id":"2"}}"#,
            r#"{"id":"1","created_at":"yesterday","content":"x","account":{"id":"2"}}"#,
            r#"{"id":1,"created_at":"2022-08-30T23:31:58.006Z","content":"x","account":{"id":"2"}}"#,
        ] {
            assert!(map_status("h", data).is_err(), "{data}");
        }
    }
}
