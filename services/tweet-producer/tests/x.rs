//! The `x` source against a local fake X API (axum on a loopback port) speaking the real wire
//! format: the filtered-stream rules endpoints (GET, and POST with `add` / `delete`, answered
//! as documented) and the stream itself, a chunked body of JSON posts one per line with bare
//! `\r\n` keep-alives, posts shaped like the documentation's examples; and a real Kafka broker
//! (from `test_kafka`). The rules end up exactly the configured ones through exactly the
//! expected calls; what reaches the topic is exactly the expected set of posts through a 429, a
//! 503, a dropped connection, malformed lines and a re-delivered post; the token is sent on
//! every request and appears in no log or error.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{ids, logs, read_posts, settings, start, wait_until};
use futures_util::StreamExt;
use serde_json::{Value, json};
use test_kafka::{KafkaBroker, unique_name};
use tokio::net::TcpListener;
use tweet_producer::metrics::get as count;

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

/// What the fake does with one stream request.
#[derive(Debug, Clone)]
enum Plan {
    /// Answer with this status, headers and body.
    Refuse(u16, Vec<(&'static str, String)>, &'static str),
    /// Send these chunks, then drop the connection when the test says so.
    ServeThenDrop(Vec<String>),
    /// Send these chunks, then keep the connection open.
    ServeThenHold(Vec<String>),
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    method: String,
    path_and_query: String,
    body: Option<Value>,
    authorization: Option<String>,
}

#[derive(Debug)]
struct Rule {
    id: String,
    value: String,
    tag: Option<String>,
}

#[derive(Debug)]
struct ServerState {
    rules: Mutex<Vec<Rule>>,
    next_id: Mutex<u64>,
    plans: Vec<Plan>,
    /// The answer to rule requests instead of the normal one, if set.
    refuse_rules: Option<(u16, &'static str)>,
    calls: Mutex<Vec<Call>>,
    drop_now: tokio::sync::Notify,
}

/// A fake X API on a loopback port.
struct FakeX {
    url: String,
    state: Arc<ServerState>,
}

impl FakeX {
    async fn start(
        rules: &[(&str, &str, Option<&str>)],
        plans: Vec<Plan>,
        refuse_rules: Option<(u16, &'static str)>,
    ) -> anyhow::Result<FakeX> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(ServerState {
            rules: Mutex::new(
                rules
                    .iter()
                    .map(|(id, value, tag)| Rule {
                        id: id.to_string(),
                        value: value.to_string(),
                        tag: tag.map(str::to_owned),
                    })
                    .collect(),
            ),
            next_id: Mutex::new(1_573_000_000_000_000_000),
            plans,
            refuse_rules,
            calls: Mutex::new(Vec::new()),
            drop_now: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route(
                "/2/tweets/search/stream/rules",
                get(rules_endpoint).post(rules_endpoint),
            )
            .route("/2/tweets/search/stream", get(stream))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeX { url, state })
    }

    fn calls(&self) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The calls to the rules endpoint: (method, body).
    fn rule_calls(&self) -> Vec<(String, Option<Value>)> {
        self.calls()
            .into_iter()
            .filter(|c| {
                c.path_and_query
                    .starts_with("/2/tweets/search/stream/rules")
            })
            .map(|c| (c.method, c.body))
            .collect()
    }

    fn stream_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path_and_query.starts_with("/2/tweets/search/stream?"))
            .collect()
    }

    /// The server's rules: (value, tag).
    fn rules(&self) -> Vec<(String, Option<String>)> {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| (r.value.clone(), r.tag.clone()))
            .collect()
    }

    fn drop_connection(&self) {
        self.state.drop_now.notify_one();
    }
}

async fn record(state: &ServerState, request: Request) -> Call {
    let method = request.method().to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or(String::new(), |p| p.to_string());
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let call = Call {
        method,
        path_and_query,
        body: serde_json::from_slice(&bytes).ok(),
        authorization,
    };
    state
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(call.clone());
    call
}

const SENT: &str = "2022-09-14T19:00:00.000Z";

/// `GET` and `POST /2/tweets/search/stream/rules`, answered as documented.
async fn rules_endpoint(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let is_post = request.method() == Method::POST;
    let call = record(&state, request).await;
    if let Some((code, body)) = state.refuse_rules {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, body).into_response();
    }
    let mut rules = state.rules.lock().unwrap_or_else(|p| p.into_inner());
    let rule_json = |r: &Rule| {
        let mut v = json!({"id": r.id, "value": r.value});
        if let Some(tag) = &r.tag {
            v["tag"] = json!(tag);
        }
        v
    };
    if !is_post {
        let data: Vec<Value> = rules.iter().map(rule_json).collect();
        let mut answer = json!({"meta": {"sent": SENT, "result_count": data.len()}});
        if !data.is_empty() {
            answer["data"] = json!(data);
        }
        return axum::Json(answer).into_response();
    }
    let body = call.body.unwrap_or(Value::Null);
    if let Some(ids) = body["delete"]["ids"].as_array() {
        let before = rules.len();
        rules.retain(|r| !ids.iter().any(|id| id.as_str() == Some(r.id.as_str())));
        let deleted = before - rules.len();
        return axum::Json(json!({"meta": {"sent": SENT, "summary": {"deleted": deleted, "not_deleted": ids.len() - deleted}}}))
            .into_response();
    }
    let Some(add) = body["add"].as_array() else {
        return (StatusCode::BAD_REQUEST, r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#).into_response();
    };
    let mut created = Vec::new();
    let mut errors = Vec::new();
    for rule in add {
        let value = rule["value"].as_str().unwrap_or("").to_owned();
        if value.contains("nosuchop:") {
            errors.push(json!({"value": value, "details": ["Reference to invalid operator 'nosuchop'. Operator is not available in current product or product packaging. Please refer to complete available operator list at https://developer.x.com/en/docs/x-api/tweets/filtered-stream/integrate/build-a-rule#list. (at position 1)"], "title": "UnprocessableEntity", "type": "https://api.x.com/2/problems/invalid-rules"}));
            continue;
        }
        let mut next = state.next_id.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let new = Rule {
            id: next.to_string(),
            value,
            tag: rule["tag"].as_str().map(str::to_owned),
        };
        created.push(rule_json(&new));
        rules.push(new);
    }
    let mut answer = json!({"meta": {"sent": SENT, "summary": {"created": created.len(), "not_created": errors.len(), "valid": created.len(), "invalid": errors.len()}}});
    if !created.is_empty() {
        answer["data"] = json!(created);
    }
    if !errors.is_empty() {
        answer["errors"] = json!(errors);
        return axum::Json(answer).into_response();
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /2/tweets/search/stream`: the plan of the n-th request (the last one repeats).
async fn stream(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    record(&state, request).await;
    let n = state
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|c| c.path_and_query.starts_with("/2/tweets/search/stream?"))
        .count();
    let plan = state.plans[(n - 1).min(state.plans.len() - 1)].clone();
    let (chunks, hold) = match plan {
        Plan::Refuse(code, headers, body) => {
            let mut response = Response::builder()
                .status(code)
                .header("content-type", "application/problem+json");
            for (name, value) in headers {
                response = response.header(name, value);
            }
            return response
                .body(Body::from(body))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Plan::ServeThenDrop(chunks) => (chunks, false),
        Plan::ServeThenHold(chunks) => (chunks, true),
    };
    let chunks = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<Bytes, std::io::Error>(Bytes::from(c))),
    );
    let body = if hold {
        Body::from_stream(chunks.chain(futures_util::stream::pending()))
    } else {
        let state = Arc::clone(&state);
        let drop = futures_util::stream::once(async move {
            state.drop_now.notified().await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "dropped",
            ))
        });
        Body::from_stream(chunks.chain(drop))
    };
    Response::builder()
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
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
        count(&running.metrics.stats().published) == 3
    })
    .await?;
    server.drop_connection();
    wait_until("posts 1–5 published after 4 connections", || {
        count(&running.metrics.stats().published) == 5 && server.stream_calls().len() == 4
    })
    .await?;
    let metrics = Arc::clone(&running.metrics);
    let summary = running.stop().await?;

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
    assert_eq!(count(&metrics.malformed), 2);
    assert_eq!(count(&metrics.received), 6, "posts 1–5 and post 3 again");
    assert_eq!(count(&metrics.duplicates), 1);
    assert_eq!(count(&metrics.reconnects), 3);

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
