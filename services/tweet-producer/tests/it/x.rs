//! The `x` source against a local fake X API ([`test_support::fakes::x`]) speaking the real wire
//! format: the filtered-stream rules endpoints (GET, and POST with `add` / `delete`, answered
//! as documented) and the stream itself, a chunked body of JSON posts one per line with bare
//! `\r\n` keep-alives, posts shaped like the documentation's examples; and a real Kafka broker
//! (from `test_support`). The rules end up exactly the configured ones through exactly the
//! expected calls; what reaches the topic is exactly the expected set of posts through a 429, a
//! 503, a dropped connection, malformed lines and a re-delivered post; the token is sent on
//! every request and appears in no log or error.

use serde_json::json;
use test_support::{KafkaBroker, unique_name};

use crate::support::{ids, logs, read_posts, settings, start, wait_until};
use test_support::fakes::Plan;
use test_support::fakes::x::FakeX;

const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAx-bearer-9d2c41";
const STREAM_QUERY: &str = "tweet.fields=created_at,entities,lang,author_id";

/// A post as the filtered stream delivers it with `tweet.fields=created_at,entities,lang,author_id`
/// (the documentation's example shape), id `1570124790212898800 + i`.
fn post(i: u64) -> String {
    let id = 1_570_124_790_212_898_800u64 + i;
    format!(
        r##"{{"data":{{"author_id":"22449949{i:02}","created_at":"2022-09-14T19:00:{i:02}.000Z","edit_history_tweet_ids":["{id}"],"entities":{{"hashtags":[{{"start":20,"end":29,"tag":"RustLang"}},{{"start":30,"end":36,"tag":"kafka"}}],"urls":[{{"start":37,"end":60,"url":"https://t.co/Hg8nkfoizN","expanded_url":"https://developer.x.com","display_url":"developer.x.com"}}]}},"id":"{id}","lang":"en","text":"Streaming post {i:02} #RustLang #kafka https://t.co/Hg8nkfoizN"}},"matching_rules":[{{"id":"1570124786375143424","tag":"hashtag-trends"}}]}}"##
    )
}

fn post_id(i: u64) -> String {
    format!("x:{}", 1_570_124_790_212_898_800u64 + i)
}

fn x_settings<'a>(
    bootstrap: &'a str,
    topic: &'a str,
    base_url: &'a str,
    rules: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("TRENDS__TOPICS__TWEETS", topic),
        ("TRENDS__PRODUCER__METRICS_ADDR", "127.0.0.1:0"),
        ("TRENDS__SOURCE__KIND", "x"),
        ("TRENDS__SOURCE__X__BASE_URL", base_url),
        ("TRENDS__SOURCE__X__RULES", rules),
        ("TRENDS__SOURCE__X__TOKEN__ENV", "TEST_X_BEARER_TOKEN"),
        ("TEST_X_BEARER_TOKEN", TOKEN),
        // X's policy, scaled down to milliseconds so the test is quick.
        ("TRENDS__SOURCE__X__BACKOFF__NETWORK_STEP_MS", "1"),
        ("TRENDS__SOURCE__X__BACKOFF__NETWORK_MAX_MS", "5"),
        ("TRENDS__SOURCE__X__BACKOFF__HTTP_MIN_MS", "1"),
        ("TRENDS__SOURCE__X__BACKOFF__HTTP_MAX_MS", "5"),
        ("TRENDS__SOURCE__X__BACKOFF__RATE_LIMIT_MIN_MS", "1"),
        ("TRENDS__SOURCE__X__BACKOFF__RATE_LIMIT_MAX_MS", "5"),
    ]
}

const TOO_MANY: &str = r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#;
const UNAVAILABLE: &str = r#"{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_synced_and_posts_reach_kafka_exactly_through_429_503_drops_and_bad_lines()
-> anyhow::Result<()> {
    let logs = logs();
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-x");

    // Connection 3 delivers posts 1–3 among keep-alives, an operational notice and two bad
    // lines, then drops; connection 4 re-delivers post 3, then 4 and 5, and stays open.
    let two = post(2);
    let first = vec![
        "\r\n".to_owned(),
        format!("{}\r\n", post(1)),
        two[..50].to_owned(),
        format!("{}\r\n\r\n", &two[50..]),
        "{\"data\":{\"id\":\"9\",\"text\":\r\n".to_owned(),
        "not json at all\r\n".to_owned(),
        r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#.to_owned() + "\r\n",
        format!("{}\r\n", post(3)),
        "\r\n".to_owned(),
    ];
    let second = vec![
        format!("{}\r\n", post(3)),
        "\r\n".to_owned(),
        format!("{}\r\n", post(4)),
        "\r\n\r\n".to_owned(),
        format!("{}\r\n", post(5)),
    ];
    // The reset time of the 429 is already past: the documented exponential policy applies.
    let past_reset = vec![
        ("x-rate-limit-limit", "50".to_owned()),
        ("x-rate-limit-remaining", "0".to_owned()),
        ("x-rate-limit-reset", "1663182000".to_owned()),
    ];
    let server = FakeX::start(
        &[
            (
                "1273026480692322304",
                "cat has:images",
                Some("cats with images"),
            ),
            ("1273028376882589696", "#rust", Some("hashtag-trends")),
        ],
        vec![
            Plan::Refuse(429, past_reset, TOO_MANY),
            Plan::Refuse(503, vec![], UNAVAILABLE),
            Plan::ServeThenDrop(first),
            Plan::ServeThenHold(second),
        ],
        None,
    )
    .await?;

    let pairs = x_settings(&bootstrap, &topic, &server.url, "#rust, #kafka lang:en");
    let loaded = settings(&pairs)?;
    assert!(!format!("{loaded:?}").contains(TOKEN));
    let running = start(loaded, "x");
    wait_until("posts 1–3 published", || {
        running.metrics.published.get() == 3
    })
    .await?;
    server.drop_connection();
    wait_until("posts 1–5 published after 4 connections", || {
        running.metrics.published.get() == 5 && server.stream_calls().len() == 4
    })
    .await?;
    let (summary, metrics) = running.stop().await?;

    // Exactly: read the rules, delete the one not configured, add the missing one.
    assert_eq!(
        server.rule_calls(),
        [
            ("GET".to_owned(), None),
            (
                "POST".to_owned(),
                Some(json!({"delete": {"ids": ["1273026480692322304"]}}))
            ),
            (
                "POST".to_owned(),
                Some(json!({"add": [{"value": "#kafka lang:en", "tag": "hashtag-trends"}]}))
            ),
        ]
    );
    assert_eq!(
        server.rules(),
        [
            ("#rust".to_owned(), Some("hashtag-trends".to_owned())),
            (
                "#kafka lang:en".to_owned(),
                Some("hashtag-trends".to_owned())
            ),
        ]
    );
    let streams = server.stream_calls();
    assert_eq!(
        streams.len(),
        4,
        "429, 503, a drop, then the last connection"
    );
    for call in server.calls() {
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{call:?}"
        );
    }
    for call in &streams {
        assert_eq!(
            call.path_and_query,
            format!("/2/tweets/search/stream?{STREAM_QUERY}")
        );
    }

    assert_eq!(summary.published, 5);
    assert_eq!(summary.skipped, 2, "the two bad lines");
    assert_eq!(metrics.malformed.get(), 2);
    assert_eq!(metrics.received.get(), 6, "posts 1–5 and post 3 again");
    assert_eq!(metrics.duplicates.get(), 1);
    assert_eq!(metrics.reconnects.get(), 3);

    let posts = read_posts(&bootstrap, &topic)?;
    let mut expected: Vec<String> = (1..=5).map(post_id).collect();
    expected.sort();
    assert_eq!(ids(&posts), expected, "exactly posts 1–5, once each");
    let fourth = posts.iter().find(|p| p.id == post_id(4)).expect("post 4");
    assert_eq!(
        fourth.text,
        "Streaming post 04 #RustLang #kafka https://t.co/Hg8nkfoizN"
    );
    assert_eq!(fourth.created_at, "2022-09-14T19:00:04.000Z");
    assert_eq!(fourth.author_id.as_deref(), Some("2244994904"));
    assert_eq!(fourth.lang.as_deref(), Some("en"));
    assert_eq!(fourth.source.as_deref(), Some("x"));
    assert_eq!(
        fourth.hashtags,
        Some(vec!["RustLang".to_owned(), "kafka".to_owned()])
    );

    // A restart with the rules already in sync only reads them.
    let in_sync = FakeX::start(
        &[
            ("1", "#rust", Some("hashtag-trends")),
            ("2", "#kafka lang:en", Some("hashtag-trends")),
        ],
        vec![Plan::ServeThenHold(vec!["\r\n".to_owned()])],
        None,
    )
    .await?;
    let pairs = x_settings(&bootstrap, &topic, &in_sync.url, "#kafka lang:en,#rust");
    let running = start(settings(&pairs)?, "x");
    wait_until("the stream connected", || in_sync.stream_calls().len() == 1).await?;
    running.stop().await?;
    assert_eq!(in_sync.rule_calls(), [("GET".to_owned(), None)]);

    let text = logs.text();
    assert!(
        text.contains("connecting to the X filtered stream"),
        "logs are captured"
    );
    assert!(!text.contains(TOKEN), "the token is never logged");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_rule_stops_the_source_with_x_s_reason_never_the_token()
-> anyhow::Result<()> {
    let logs = logs();
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-x-refused");

    let unauthorized = FakeX::start(
        &[],
        vec![],
        Some((
            401,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
        )),
    )
    .await?;
    let pairs = x_settings(&bootstrap, &topic, &unauthorized.url, "#rust");
    let error = start(settings(&pairs)?, "x")
        .ended()
        .await
        .expect_err("a refused token is fatal");
    let message = format!("{error:#}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("source.x.token"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
    assert_eq!(
        unauthorized.rule_calls(),
        [("GET".to_owned(), None)],
        "no retry, no stream"
    );
    assert!(unauthorized.stream_calls().is_empty());

    let invalid = FakeX::start(&[], vec![], None).await?;
    let pairs = x_settings(&bootstrap, &topic, &invalid.url, "#rust, nosuchop:1");
    let error = start(settings(&pairs)?, "x")
        .ended()
        .await
        .expect_err("a rule X refuses is fatal");
    let message = format!("{error:#}");
    assert!(message.contains("nosuchop"), "{message}");
    assert!(message.contains("source.x.rules"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
    assert!(invalid.stream_calls().is_empty());
    assert!(!logs.text().contains(TOKEN));
    Ok(())
}
