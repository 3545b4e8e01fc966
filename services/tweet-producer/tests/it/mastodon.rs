//! The `mastodon` source against local fake Mastodon servers ([`test_support::fakes::mastodon`])
//! speaking the real wire format: the instance document pointing at a separate streaming host, and
//! Server-Sent Events (`event: update` / `data: <Status JSON>`, `:thump` heartbeats, events
//! split across chunks) with statuses shaped like the streaming API documentation's examples;
//! and a real Kafka broker (from `test_support`). What reaches the topic is exactly the expected
//! set of posts, through 429 and 503 refusals, a dropped connection, malformed events and a
//! re-delivered status; the token is sent on every request and appears in no log or error.

use std::collections::BTreeSet;

use test_support::{KafkaBroker, unique_name};

use crate::support::{ids, logs, read_posts, settings, start, wait_until};
use test_support::fakes::Plan;
use test_support::fakes::mastodon::FakeMastodon;

const TOKEN: &str = "mastodon-user-token-7c1e5b0f";

/// The hashtag-timeline `update` of Mastodon's streaming documentation.
const DOC_HASHTAG_STATUS: &str = r#"{"id":"108914430312582020","created_at":"2022-08-30T23:31:58.006Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://mastodon.social/users/trwnh/statuses/108914430312582020","url":"https://mastodon.social/@trwnh/108914430312582020","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":null,"content":"<p><a href=\"https://mastodon.social/tags/test\" class=\"mention hashtag\" rel=\"tag\">#<span>test</span></a></p>","reblog":null,"application":{"name":"Web","website":null},"account":{"id":"14715","username":"trwnh","acct":"trwnh","display_name":"infinite love ⴳ","locked":false,"bot":false,"discoverable":true,"group":false,"created_at":"2016-11-24T00:00:00.000Z","note":"<p>i have approximate knowledge of many things. perpetual student. (nb/ace/they)</p>","url":"https://mastodon.social/@trwnh","avatar":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","avatar_static":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","header":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","header_static":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","followers_count":2520,"following_count":266,"statuses_count":59817,"last_status_at":"2022-08-30","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[{"name":"test","url":"https://mastodon.social/tags/test"}],"emojis":[],"card":null,"poll":null}"#;

/// The `status.update` of the same documentation (ruby.social): rich content, four tags.
const DOC_RICH_STATUS: &str = r#"{"id":"109348684737626801","created_at":"2022-11-15T16:08:30.000Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://ruby.social/users/chrismo/statuses/109348684454557541","url":"https://ruby.social/@chrismo/109348684454557541","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":"2022-11-15T16:10:43.000Z","content":"<p><a href=\"https://ruby.social/tags/musicTuesday\" class=\"mention hashtag\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">#<span>musicTuesday</span></a> </p><p>Here's a solo <a href=\"https://ruby.social/tags/piano\" class=\"mention hashtag\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">#<span>piano</span></a> track of mine called Gravity Assist</p><p><a href=\"https://ruby.social/tags/neoclassical\" class=\"mention hashtag\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">#<span>neoclassical</span></a> (<a href=\"https://ruby.social/tags/jazz\" class=\"mention hashtag\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">#<span>jazz</span></a> ish)</p><p><a href=\"https://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2\" rel=\"nofollow noopener noreferrer\" target=\"_blank\"><span class=\"invisible\">https://</span><span class=\"ellipsis\">cstudios.bandcamp.com/track/ce</span><span class=\"invisible\">lestia-gravity-assist-no-19-var-2</span></a></p>","reblog":null,"account":{"id":"795442","username":"chrismo","acct":"chrismo@ruby.social","display_name":"chrismo","locked":false,"bot":false,"discoverable":true,"group":false,"created_at":"2019-04-25T00:00:00.000Z","note":"<p>i mash keys</p>","url":"https://ruby.social/@chrismo","avatar":"https://files.mastodon.social/cache/accounts/avatars/000/795/442/original/12084217a7eb7513.png","avatar_static":"https://files.mastodon.social/cache/accounts/avatars/000/795/442/original/12084217a7eb7513.png","header":"https://static-cdn.mastodon.social/headers/original/missing.png","header_static":"https://static-cdn.mastodon.social/headers/original/missing.png","followers_count":40,"following_count":62,"statuses_count":42,"last_status_at":"2022-11-15","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[{"name":"MUSICTUESDAY","url":"https://mastodon.social/tags/MUSICTUESDAY"},{"name":"piano","url":"https://mastodon.social/tags/piano"},{"name":"neoclassical","url":"https://mastodon.social/tags/neoclassical"},{"name":"jazz","url":"https://mastodon.social/tags/jazz"}],"emojis":[],"card":null,"poll":null}"#;

/// A documented status (as published, field order and all) with status id `1000 + i`.
fn status(i: u64) -> String {
    let (template, id, created_at) = if i % 2 == 0 {
        (
            DOC_RICH_STATUS,
            "109348684737626801",
            "2022-11-15T16:08:30.000Z",
        )
    } else {
        (
            DOC_HASHTAG_STATUS,
            "108914430312582020",
            "2022-08-30T23:31:58.006Z",
        )
    };
    template
        .replacen(
            &format!("{{\"id\":\"{id}\""),
            &format!("{{\"id\":\"{}\"", 1000 + i),
            1,
        )
        .replacen(created_at, &format!("2022-11-15T16:08:{i:02}.000Z"), 1)
}

/// An `update` event of status `i`.
fn update(i: u64) -> String {
    format!("event: update\ndata: {}\n\n", status(i))
}

fn mastodon_settings<'a>(
    bootstrap: &'a str,
    topic: &'a str,
    base_url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("TRENDS__TOPICS__TWEETS", topic),
        ("TRENDS__PRODUCER__METRICS_ADDR", "127.0.0.1:0"),
        ("TRENDS__SOURCE__KIND", "mastodon"),
        ("TRENDS__SOURCE__MASTODON__BASE_URL", base_url),
        (
            "TRENDS__SOURCE__MASTODON__TOKEN__ENV",
            "TEST_MASTODON_TOKEN",
        ),
        ("TEST_MASTODON_TOKEN", TOKEN),
        ("TRENDS__SOURCE__RECONNECT__MIN_MS", "1"),
        ("TRENDS__SOURCE__RECONNECT__MAX_MS", "20"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_reach_kafka_exactly_through_refusals_drops_and_malformed_events()
-> anyhow::Result<()> {
    let logs = logs();
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-mastodon");

    // Connection 3 delivers statuses 1–3 among heartbeats, ignored events and two malformed
    // updates, then drops; connection 4 re-delivers status 3, then 4 and 5, and stays open.
    let first = vec![
        ":thump\n".to_owned(),
        update(1),
        // Status 2 split across chunks, mid-line and between the two lines.
        {
            let u = update(2);
            u[..40].to_owned()
        },
        {
            let u = update(2);
            u[40..].to_owned()
        },
        "event: delete\ndata: 107214471804101576\n\n".to_owned(),
        format!("event: status.update\ndata: {}\n\n", status(9)),
        "event: update\ndata: {\"id\":\n\n".to_owned(),
        "event: update\ndata: {\"id\":\"77\",\"created_at\":\"2022-11-15T16:08:30.000Z\",\"content\":\"<p>no account</p>\"}\n\n".to_owned(),
        ":thump\n".to_owned(),
        update(3),
    ];
    let second = vec![
        update(3),
        ":thump\n".to_owned(),
        update(4),
        "event: filters_changed\ndata: undefined\n\n".to_owned(),
        update(5),
    ];
    // The streaming API is on its own host, as on mastodon.social; the instance document says
    // where.
    let streaming = FakeMastodon::start(
        None,
        vec![
            Plan::Refuse(429, vec![], "{\"error\":\"Too many requests\"}"),
            Plan::Refuse(503, vec![], "<html>Service Unavailable</html>"),
            Plan::ServeThenDrop(first),
            Plan::ServeThenHold(second),
        ],
    )
    .await?;
    let server =
        FakeMastodon::start(Some(streaming.url.replace("http://", "ws://")), vec![]).await?;
    let host = server.url.trim_start_matches("http://").to_owned();

    let pairs = mastodon_settings(&bootstrap, &topic, &server.url, &[]);
    let settings = settings(&pairs)?;
    assert!(!format!("{settings:?}").contains(TOKEN));
    let running = start(settings, "mastodon");
    wait_until("statuses 1–3 published", || {
        running.metrics.published.get() == 3
    })
    .await?;
    streaming.drop_connection();
    wait_until("statuses 1–5 published after 4 connections", || {
        running.metrics.published.get() == 5 && streaming.stream_requests().len() == 4
    })
    .await?;
    let (summary, metrics) = running.stop().await?;

    assert_eq!(summary.published, 5);
    assert_eq!(summary.skipped, 2, "the two malformed updates");
    assert_eq!(metrics.malformed.get(), 2);
    assert_eq!(metrics.received.get(), 6, "statuses 1–5 and status 3 again");
    assert_eq!(metrics.duplicates.get(), 1, "status 3 re-delivered");
    assert_eq!(
        metrics.reconnects.get(),
        3,
        "429, 503 and the drop each led to a reconnect"
    );

    // The instance document was read once, on the server; every stream request went to the
    // streaming host with the token.
    let on_server: Vec<String> = server
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(on_server, ["/api/v2/instance"]);
    let requests = streaming.stream_requests();
    assert_eq!(requests.len(), 4);
    for request in &requests {
        assert_eq!(request.path_and_query, "/api/v1/streaming/public");
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    let posts = read_posts(&bootstrap, &topic)?;
    let expected: Vec<String> = (1..=5)
        .map(|i| format!("mastodon:{host}/{}", 1000 + i))
        .collect();
    assert_eq!(ids(&posts), expected, "exactly statuses 1–5, once each");
    let by_id = |i: u64| {
        posts
            .iter()
            .find(|p| p.id == format!("mastodon:{host}/{}", 1000 + i))
            .cloned()
    };
    let rich = by_id(2).expect("status 2");
    assert_eq!(
        rich.text,
        "#musicTuesday\n\nHere's a solo #piano track of mine called Gravity Assist\n\n#neoclassical (#jazz ish)\n\nhttps://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2"
    );
    assert_eq!(rich.created_at, "2022-11-15T16:08:02.000Z");
    assert_eq!(rich.lang.as_deref(), Some("en"));
    assert_eq!(rich.author_id.as_deref(), Some("795442"));
    assert_eq!(rich.source.as_deref(), Some("mastodon"));
    assert_eq!(
        rich.hashtags,
        Some(vec![
            "MUSICTUESDAY".to_owned(),
            "piano".to_owned(),
            "neoclassical".to_owned(),
            "jazz".to_owned()
        ])
    );
    let simple = by_id(1).expect("status 1");
    assert_eq!(simple.text, "#test");
    assert_eq!(simple.author_id.as_deref(), Some("14715"));
    assert_eq!(simple.hashtags, Some(vec!["test".to_owned()]));
    assert_eq!(
        posts
            .iter()
            .map(|p| p.id.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        5
    );

    let text = logs.text();
    assert!(
        text.contains("connecting to the Mastodon streaming API"),
        "the logs are captured"
    );
    assert!(!text.contains(TOKEN), "the token is never logged");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_source_with_an_error_that_does_not_show_it() -> anyhow::Result<()>
{
    let logs = logs();
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-mastodon-401");
    // A server that does not say where its streaming API is (404): base_url is used.
    let server = FakeMastodon::start(
        None,
        vec![Plan::Refuse(
            401,
            vec![],
            "{\"error\":\"The access token is invalid\"}",
        )],
    )
    .await?;
    let pairs = mastodon_settings(
        &bootstrap,
        &topic,
        &server.url,
        &[
            ("TRENDS__SOURCE__MASTODON__STREAM", "hashtag"),
            ("TRENDS__SOURCE__MASTODON__TAG", "#Rust"),
        ],
    );
    let running = start(settings(&pairs)?, "mastodon");
    let error = running.ended().await.expect_err("a refused token is fatal");
    let message = format!("{error:#}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("The access token is invalid"), "{message}");
    assert!(message.contains("source.mastodon.token"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
    let seen: Vec<String> = server
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(
        seen,
        ["/api/v2/instance", "/api/v1/streaming/hashtag?tag=Rust"],
        "no retry after a 401"
    );
    assert!(!logs.text().contains(TOKEN));
    Ok(())
}
