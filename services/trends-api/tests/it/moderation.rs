//! Moderation against a real broker: the admin API writes the blocklist topic, the follower
//! reads it back, and `is_blocked` answers from what was applied. Each test uses its own
//! topic; the ground truth (which tags are blocked) is stated in the test.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trends_api::app::{HttpOptions, app};
use trends_api::moderation::{self, Moderation, ModerationMetrics, ModerationSettings};
use trends_common::kafka::{TopicSpec, client_config, ensure_topics};
use trends_common::settings::KafkaSettings;

use crate::helpers::{body_bytes, json_body, send, state, wait_for};

const TOKEN: &str = "test-admin-token-5f2c";

fn kafka() -> KafkaSettings {
    KafkaSettings::plaintext(KafkaBroker::shared().bootstrap_servers())
}

fn settings(topic: &str) -> ModerationSettings {
    ModerationSettings {
        topic: topic.to_string(),
        max_entries: 100,
        max_patterns: 10,
        write_timeout: Duration::from_secs(20),
        ..ModerationSettings::default()
    }
}

/// A replica: the handle, its follower, and the token that stops it.
struct Replica {
    moderation: Moderation,
    router: Router,
    follower: JoinHandle<anyhow::Result<()>>,
    shutdown: CancellationToken,
}

impl Replica {
    async fn start(settings: &ModerationSettings, token: Option<&str>) -> Replica {
        let shutdown = CancellationToken::new();
        let (moderation, follower) = moderation::start(
            settings,
            &kafka(),
            token.map(|t| SecretString::from(t.to_string())),
            ModerationMetrics::default(),
            shutdown.clone(),
        )
        .await
        .expect("moderation starts");
        // Wired as the lead does: after the app's own body limit.
        let router = app(state(true), &HttpOptions::default()).merge(moderation.admin_router());
        Replica {
            moderation,
            router,
            follower,
            shutdown,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let response = send(&self.router, admin_request(method, uri, body, token)).await;
        let status = response.status();
        let bytes = body_bytes(response).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn export(&self) -> String {
        let response = send(
            &self.router,
            admin_request("GET", "/api/v1/admin/blocked", "", Some(TOKEN)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/x-ndjson"
        );
        String::from_utf8(body_bytes(response).await.to_vec()).expect("UTF-8")
    }

    fn keys(&self) -> Vec<String> {
        self.moderation
            .blocklist()
            .entries()
            .map(|e| e.entry.clone())
            .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.follower)
            .await
            .expect("the follower stops")
            .expect("joined")
            .expect("the follower ends without error");
    }
}

fn admin_request(method: &str, uri: &str, body: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).expect("request")
}

/// The end offset of the blocklist topic's partition.
async fn end_offset(topic: &str) -> i64 {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&kafka(), "moderation-test")
            .create()
            .expect("consumer");
        consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .expect("watermarks")
            .1
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_tags_and_patterns_are_blocked_until_deleted() {
    let topic = unique_name("blocklist");
    let replica = Replica::start(&settings(&topic), Some(TOKEN)).await;

    let (status, body) = replica
        .call(
            "PUT",
            "/api/v1/admin/blocked/%23Spam",
            r#"{"reason":"flood"}"#,
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["entry"], &body["kind"], &body["reason"]),
        (&json!("spam"), &json!("exact"), &json!("flood"))
    );
    assert!(
        body["added_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    for pattern in ["*Porn*", "crypto*"] {
        let (status, body) = replica
            .call(
                "PUT",
                &format!("/api/v1/admin/blocked/{pattern}"),
                "",
                Some(TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (&body["kind"], &body["reason"]),
            (&json!("pattern"), &Value::Null)
        );
    }
    // Read your writes: the answers came after this replica applied them.
    let truth = [
        ("spam", true),
        ("spammy", false),
        ("porn", true),
        ("freepornnow", true),
        ("popcorn", false),
        ("crypto", true),
        ("cryptoscam", true),
        ("bitcrypto", false),
        ("rust", false),
    ];
    let list = replica.moderation.blocklist();
    for (tag, blocked) in truth {
        assert_eq!(list.is_blocked(tag), blocked, "{tag}");
    }
    assert_eq!(replica.keys(), ["*porn*", "crypto*", "spam"]);

    // Blocking again keeps added_at and replaces the reason.
    let (_, again) = replica
        .call(
            "PUT",
            "/api/v1/admin/blocked/spam",
            r#"{"reason":"still"}"#,
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        (&again["added_at"], &again["reason"]),
        (&body_added_at(&list), &json!("still"))
    );

    let (status, _) = replica
        .call("DELETE", "/api/v1/admin/blocked/SPAM", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = replica
        .call("DELETE", "/api/v1/admin/blocked/*porn*", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = replica.moderation.blocklist();
    for (tag, blocked) in truth {
        let still = blocked && tag.starts_with("crypto");
        assert_eq!(list.is_blocked(tag), still, "{tag} after the deletes");
    }
    let (status, body) = replica
        .call("DELETE", "/api/v1/admin/blocked/spam", "", Some(TOKEN))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("unknown_entry"))
    );

    // Bad entries and bodies: 400 with a code, nothing written.
    let before = end_offset(&topic).await;
    for (method, uri, body, code) in [
        ("PUT", "/api/v1/admin/blocked/***", "", "invalid_entry"),
        ("PUT", "/api/v1/admin/blocked/a%20b", "", "invalid_entry"),
        ("PUT", "/api/v1/admin/blocked/%23%23x", "", "invalid_entry"),
        ("DELETE", "/api/v1/admin/blocked/%20", "", "invalid_entry"),
        (
            "PUT",
            "/api/v1/admin/blocked/ok",
            "{\"why\":1}",
            "invalid_body",
        ),
        (
            "PUT",
            "/api/v1/admin/blocked/ok",
            "not json",
            "invalid_body",
        ),
    ] {
        let (status, body) = replica.call(method, uri, body, Some(TOKEN)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!(code)),
            "{method} {uri}: {body}"
        );
    }
    let long = "x".repeat(141);
    let (status, body) = replica
        .call(
            "PUT",
            &format!("/api/v1/admin/blocked/{long}"),
            "",
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_entry"))
    );
    let big = format!(r#"{{"reason":"{}"}}"#, "r".repeat(2000));
    let (status, body) = replica
        .call("PUT", "/api/v1/admin/blocked/ok", &big, Some(TOKEN))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large"))
    );
    assert_eq!(end_offset(&topic).await, before, "nothing written");
    replica.stop().await;
}

/// The `added_at` of `spam` in `list`, as JSON.
fn body_added_at(list: &moderation::Blocklist) -> Value {
    json!(list.get("spam").expect("spam").added_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_and_without_one_the_admin_api_is_off() {
    let topic = unique_name("blocklist");
    let replica = Replica::start(&settings(&topic), Some(TOKEN)).await;
    for token in [None, Some("wrong"), Some("test-admin-token-5f2")] {
        for (method, uri) in [
            ("GET", "/api/v1/admin/blocked"),
            ("POST", "/api/v1/admin/blocked"),
            ("PUT", "/api/v1/admin/blocked/spam"),
            ("DELETE", "/api/v1/admin/blocked/spam"),
        ] {
            let response = send(&replica.router, admin_request(method, uri, "", token)).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {uri} {token:?}"
            );
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            let body = json_body(response).await;
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(!body.to_string().contains(TOKEN));
        }
    }
    // Another scheme, and the scheme in any case.
    let basic = Request::builder()
        .method("GET")
        .uri("/api/v1/admin/blocked")
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        send(&replica.router, basic).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let lower = Request::builder()
        .method("GET")
        .uri("/api/v1/admin/blocked")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&replica.router, lower).await.status(), StatusCode::OK);
    assert!(
        !format!("{:?}", replica.moderation).contains(TOKEN),
        "the token in Debug"
    );
    assert_eq!(end_offset(&topic).await, 0, "nothing written");
    replica.stop().await;

    // No token, or an empty one: the admin API is off, its paths unknown routes.
    for token in [None, Some(" ")] {
        let off = Replica::start(&settings(&topic), token).await;
        for (method, uri) in [
            ("GET", "/api/v1/admin/blocked"),
            ("POST", "/api/v1/admin/blocked"),
            ("PUT", "/api/v1/admin/blocked/spam"),
            ("DELETE", "/api/v1/admin/blocked/spam"),
        ] {
            for bearer in [Some(TOKEN), Some(""), None] {
                let (status, body) = off.call(method, uri, "", bearer).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri} {token:?}");
                assert_eq!(body["error"]["code"], "not_found");
            }
        }
        off.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_fresh_topic_round_trips() {
    let source = Replica::start(&settings(&unique_name("blocklist")), Some(TOKEN)).await;
    let lines = [
        r#"{"entry":"Spam","reason":"flood"}"#,
        r#"{"entry":"*porn*","kind":"pattern"}"#,
        r##"{"entry":"#日本語スパム","kind":"exact","reason":"scam","added_at":"2026-01-02T03:04:05Z"}"##,
        "",
        r#"{"entry":"crypto*","reason":null}"#,
    ];
    let (status, body) = source
        .call(
            "POST",
            "/api/v1/admin/blocked",
            &lines.join("\n"),
            Some(TOKEN),
        )
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({"imported": 4})));
    assert_eq!(source.keys(), ["*porn*", "crypto*", "spam", "日本語スパム"]);
    let exported = source.export().await;
    assert_eq!(exported.lines().count(), 4);
    assert!(exported.contains(
        r#"{"entry":"日本語スパム","kind":"exact","reason":"scam","added_at":"2026-01-02T03:04:05.000Z"}"#
    ), "{exported}");

    let target = Replica::start(&settings(&unique_name("blocklist")), Some(TOKEN)).await;
    let (status, body) = target
        .call("POST", "/api/v1/admin/blocked", &exported, Some(TOKEN))
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({"imported": 4})));
    assert_eq!(
        target.export().await,
        exported,
        "the same entries, reasons and times"
    );
    // Importing it again changes nothing.
    let (status, _) = target
        .call("POST", "/api/v1/admin/blocked", &exported, Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(target.export().await, exported);
    source.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_import_line_is_named_and_nothing_is_written() {
    let topic = unique_name("blocklist");
    let replica = Replica::start(&settings(&topic), Some(TOKEN)).await;
    let (status, _) = replica
        .call("PUT", "/api/v1/admin/blocked/kept", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = end_offset(&topic).await;
    let exported = replica.export().await;
    let patterns: Vec<String> = (0..11).map(|i| format!(r#"{{"entry":"p{i}*"}}"#)).collect();
    for (body, status, code, says) in [
        (
            "{\"entry\":\"a\"}\n{\"entry\":\"b\"}\n{\"entry\":\"c d\"}\n",
            StatusCode::BAD_REQUEST,
            "invalid_import",
            "line 3: ",
        ),
        (
            "{\"entry\":\"a\"}\n\n{\"entry\":\"A\"}\n",
            StatusCode::BAD_REQUEST,
            "invalid_import",
            "line 3: ",
        ),
        (
            "{\"entry\":\"a\"}\n{\"entry\":\"b\",\"kind\":\"pattern\"}\n",
            StatusCode::BAD_REQUEST,
            "invalid_import",
            "line 2: ",
        ),
        (
            "[1,2]\n",
            StatusCode::BAD_REQUEST,
            "invalid_import",
            "line 1: ",
        ),
        // 11 patterns, 10 allowed: refused whole.
        (
            &patterns.join("\n"),
            StatusCode::CONFLICT,
            "blocklist_full",
            "patterns",
        ),
    ] {
        let (got, answer) = replica
            .call("POST", "/api/v1/admin/blocked", body, Some(TOKEN))
            .await;
        assert_eq!(
            (got, &answer["error"]["code"]),
            (status, &json!(code)),
            "{body}: {answer}"
        );
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with(says) || message.contains(says),
            "{message}"
        );
    }
    // Over the body limit (4 MiB by default): 413, JSON.
    let huge = format!(
        "{{\"entry\":\"a\",\"reason\":\"{}\"}}\n",
        "x".repeat(5 << 20)
    );
    let (status, body) = replica
        .call("POST", "/api/v1/admin/blocked", &huge, Some(TOKEN))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large"))
    );
    assert_eq!(end_offset(&topic).await, before, "nothing written");
    assert_eq!(replica.export().await, exported);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_on_the_same_topic_converges() {
    let topic = unique_name("blocklist");
    let first = Replica::start(&settings(&topic), Some(TOKEN)).await;
    for uri in ["spam", "ham", "*porn*", "eggs"] {
        let (status, _) = first
            .call(
                "PUT",
                &format!("/api/v1/admin/blocked/{uri}"),
                "",
                Some(TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = first
        .call("DELETE", "/api/v1/admin/blocked/ham", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A replica started later reads the topic to its end before it returns.
    let second = Replica::start(&settings(&topic), None).await;
    assert_eq!(second.keys(), ["*porn*", "eggs", "spam"]);
    assert_eq!(second.keys(), first.keys());

    // A write on the first reaches the second while it runs.
    let (status, _) = first
        .call("PUT", "/api/v1/admin/blocked/crypto*", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = first
        .call("DELETE", "/api/v1/admin/blocked/spam", "", Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let expected = first.keys();
    assert_eq!(expected, ["*porn*", "crypto*", "eggs"]);
    wait_for(
        "the second replica converges",
        Duration::from_secs(30),
        || second.keys() == expected,
    )
    .await;
    assert!(second.moderation.blocklist().is_blocked("cryptocoin"));
    assert!(!second.moderation.blocklist().is_blocked("spam"));
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_skipped_and_the_rest_applies() {
    let topic = unique_name("blocklist");
    let kafka = kafka();
    ensure_topics(&kafka, &[moderation::topic_spec(&topic)])
        .await
        .expect("topic");
    let producer: FutureProducer = client_config(&kafka, "moderation-test")
        .create()
        .expect("producer");
    let good = |entry: &str, kind: &str| {
        format!(
            r#"{{"entry":"{entry}","kind":"{kind}","reason":null,"added_at":"2026-11-23T12:00:00.000Z"}}"#
        )
    };
    let long_key = "k".repeat(1000);
    // (key, value, hostile). A record without a key cannot be written: a compacted topic
    // refuses it (the decoder's unit tests cover it).
    let spam = good("spam", "exact");
    let long = good(&long_key, "exact");
    let x = good("x", "exact");
    let mismatch = good("mismatch", "exact");
    let upper = good("Upper", "exact");
    let star = good("*", "pattern");
    let crypto = good("crypto*", "pattern");
    let ham = good("ham", "exact");
    let records: [(&[u8], Option<&str>, bool); 10] = [
        (b"spam", Some(&spam), false),
        (b"bad", Some("not json"), true),
        (long_key.as_bytes(), Some(&long), true),
        (b"\xff\xfe", Some(&x), true),
        (b"other", Some(&mismatch), true),
        (b"Upper", Some(&upper), true),
        (b"*", Some(&star), true),
        (b"crypto*", Some(&crypto), false),
        (b"ham", Some(&ham), false),
        (b"ham", None, false),
    ];
    let hostile = records.iter().filter(|r| r.2).count() as u64;
    for (key, value, _) in records {
        let mut record = FutureRecord::<[u8], str>::to(&topic).partition(0).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
    }
    let replica = Replica::start(&settings(&topic), Some(TOKEN)).await;
    assert_eq!(replica.keys(), ["crypto*", "spam"]);
    assert_eq!(replica.moderation.metrics().records_skipped.get(), hostile);
    assert_eq!(replica.moderation.metrics().entries.get(), 2);

    // While running: a hostile record, then a good one; the good one applies.
    for (key, value) in [
        (b"zz".to_vec(), b"{\"entry\":".to_vec()),
        (b"eggs".to_vec(), good("eggs", "exact").into_bytes()),
    ] {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
    }
    wait_for("eggs applied", Duration::from_secs(30), || {
        replica.moderation.blocklist().is_blocked("eggs")
    })
    .await;
    assert_eq!(
        replica.moderation.metrics().records_skipped.get(),
        hostile + 1
    );
    assert_eq!(replica.keys(), ["crypto*", "eggs", "spam"]);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_this_replica_cannot_apply_answers_503() {
    let topic = unique_name("blocklist");
    let replica = Replica::start(&settings(&topic), Some(TOKEN)).await;
    // The follower stops: nothing written from now on can be applied by this replica.
    replica.shutdown.cancel();
    wait_for("the follower ends", Duration::from_secs(30), || {
        replica.follower.is_finished()
    })
    .await;
    let response = send(
        &replica.router,
        admin_request("PUT", "/api/v1/admin/blocked/late", "", Some(TOKEN)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "blocklist_unavailable", "{body}");
    assert!(!replica.moderation.blocklist().is_blocked("late"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_more_than_one_partition_is_refused() {
    let topic = unique_name("blocklist");
    ensure_topics(
        &kafka(),
        &[TopicSpec {
            name: &topic,
            partitions: 2,
            config: vec![("cleanup.policy", "compact")],
        }],
    )
    .await
    .expect("topic");
    let err = moderation::start(
        &settings(&topic),
        &kafka(),
        None,
        ModerationMetrics::default(),
        CancellationToken::new(),
    )
    .await
    .expect_err("two partitions");
    let message = format!("{err:#}");
    assert!(
        message.contains("moderation.topic") && message.contains("2 partitions"),
        "{message}"
    );
}
