//! A post's trace, from the producer through the aggregator's transaction to the API, as an
//! OpenTelemetry backend receives it.
//!
//! The test runs an OTLP/HTTP receiver of its own (axum on a free port; every request body
//! decoded with `opentelemetry-proto`'s `ExportTraceServiceRequest`, the protocol's own
//! types) and the three services on the shared broker, each exporting to it:
//! - tweet-producer with `parentbased_traceidratio` at 0.2: about one post in five is traced;
//! - the aggregator and the API at ratio **0**: whatever they trace, they trace because a
//!   link is sampled (trends_common::trace_context::LinkAwareSampler).
//!
//! Then, against what the test reads itself from the topics:
//! - every `traceparent` header in the `tweets` topic is a producer span the receiver got
//!   (`send <tweets>`, kind producer, the messaging attributes), and no producer span lacks
//!   its record;
//! - every such post is linked from an aggregator span (`process <tweets>`, kind consumer,
//!   consumer group, batch size) — the link, not a parent, as the messaging conventions say
//!   for batches — and every aggregator span links to at least one of them;
//! - the checkpoint records (and no other counts record) carry the aggregator spans' contexts,
//!   and every aggregator span is linked from an API span (`process <counts>`);
//! - an HTTP request with a `traceparent` gets a server span that is its child.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use e2e::{ServiceProcess, Topics, free_port, wait_for};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use test_support::{KafkaBroker, unique_name};
use trends_core::counts_record::{CountsKey, CountsRecord};

const WAIT: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 2;
const POSTS: usize = 400;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
    /// (trace id, span id) of each link.
    links: Vec<(String, String)>,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value_text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// `POST /v1/traces`: decodes the protobuf request and keeps its spans.
async fn receive(State(received): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP export request");
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| value_text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                value_text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    received.lock().expect("receiver lock").extend(spans);
    // An empty ExportTraceServiceResponse.
    Vec::new()
}

async fn start_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the OTLP receiver");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("receiver address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn otel_env(endpoint: &str, service: &str, ratio: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_SERVICE_NAME", service.to_owned()),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", ratio.to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ]
}

fn spans_of(received: &Received, service: &str, name: &str) -> Vec<ReceivedSpan> {
    received
        .lock()
        .expect("receiver lock")
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .cloned()
        .collect()
}

/// The spans `name` of `service`, once together they link to every context in `wanted`.
async fn wait_until_linked(
    received: &Received,
    service: &str,
    name: &str,
    wanted: &BTreeSet<(String, String)>,
) -> Result<Vec<ReceivedSpan>, String> {
    wait_for(
        &format!("{service}'s {name} spans linking all"),
        WAIT,
        || {
            let spans = spans_of(received, service, name);
            async move {
                let linked: BTreeSet<(String, String)> =
                    spans.iter().flat_map(|s| s.links.iter().cloned()).collect();
                if wanted.is_subset(&linked) {
                    Ok(spans)
                } else {
                    Err(format!(
                        "{} of {} linked",
                        wanted.intersection(&linked).count(),
                        wanted.len()
                    ))
                }
            }
        },
    )
    .await
    .map_err(|e| e.to_string())
}

fn assert_attributes(span: &ReceivedSpan, expected: &[(&str, &str)]) {
    for (key, value) in expected {
        assert_eq!(
            span.attributes.get(*key).map(String::as_str),
            Some(*value),
            "{key} of {span:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_post_is_traced_from_the_producer_through_the_aggregator_to_the_api() {
    let (endpoint, received) = start_receiver().await;
    let topics = Topics::unique("traces-");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let group = unique_name("traces-aggregator");

    let mut aggregator = topics.start_aggregator(
        bootstrap,
        PARTITIONS,
        &group,
        &otel_env(&endpoint, "aggregator-under-test", "0"),
    );
    let api_port = free_port();
    let mut api_env = topics.env(
        bootstrap,
        PARTITIONS,
        &[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{api_port}"))],
    );
    api_env.extend(
        otel_env(&endpoint, "api-under-test", "0")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut api = ServiceProcess::start("trends-api", &api_env).expect("start trends-api");
    let mut producer_env: HashMap<String, String> = topics.env(
        bootstrap,
        PARTITIONS,
        &[
            ("TRENDS__SOURCE__KIND", "synthetic".into()),
            ("TRENDS__SOURCE__SYNTHETIC__RATE", "0".into()),
            ("TRENDS__SOURCE__SYNTHETIC__LIMIT", POSTS.to_string()),
            ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "100".into()),
            (
                "TRENDS__PRODUCER__METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
        ],
    );
    producer_env.extend(
        otel_env(&endpoint, "producer-under-test", "0.2")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut producer =
        ServiceProcess::start("tweet-producer", &producer_env).expect("start tweet-producer");

    // The producer stops at its limit; its last spans are exported on the way out.
    let exited = producer.wait_exit(WAIT).await;
    assert!(
        exited.as_ref().is_ok_and(|status| status.success()),
        "producer exit {exited:?}: {}",
        producer.log()
    );
    let sampled_posts: BTreeSet<(String, String)> = traceparents_to_end(&topics.tweets)
        .into_iter()
        .map(|(_, context)| context)
        .collect();
    assert!(
        (20..=160).contains(&sampled_posts.len()),
        "about one post in five is sampled at ratio 0.2, got {} of {POSTS}",
        sampled_posts.len()
    );

    let tweets_span = format!("send {}", topics.tweets);
    let producer_spans = wait_for("every sampled post's producer span", WAIT, || {
        let spans = spans_of(&received, "producer-under-test", &tweets_span);
        let wanted = sampled_posts.len();
        async move {
            let ids: BTreeSet<(String, String)> = spans
                .iter()
                .map(|s| (s.trace_id.clone(), s.span_id.clone()))
                .collect();
            if ids.len() >= wanted {
                Ok(spans)
            } else {
                Err(format!("{} of {wanted} producer spans", ids.len()))
            }
        }
    })
    .await
    .expect("producer spans");
    let producer_ids: BTreeSet<(String, String)> = producer_spans
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();
    assert_eq!(
        producer_ids, sampled_posts,
        "the producer's spans are exactly the posts whose records carry a traceparent"
    );
    for span in &producer_spans {
        assert_eq!(span.kind, SpanKind::Producer as i32, "{span:?}");
        assert_eq!(span.parent_span_id, "", "a post's span is its trace's root");
        assert_attributes(
            span,
            &[
                ("messaging.system", "kafka"),
                ("messaging.destination.name", &topics.tweets),
                ("messaging.operation.type", "send"),
            ],
        );
    }

    // The aggregator links every sampled post from a transaction span.
    let process_tweets = format!("process {}", topics.tweets);
    let aggregator_spans = wait_until_linked(
        &received,
        "aggregator-under-test",
        &process_tweets,
        &sampled_posts,
    )
    .await
    .expect("aggregator spans");
    for span in &aggregator_spans {
        assert_eq!(span.kind, SpanKind::Consumer as i32, "{span:?}");
        assert!(
            !span.links.is_empty() && span.links.iter().all(|l| sampled_posts.contains(l)),
            "at ratio 0 a transaction is traced only for the sampled posts it counted: {span:?}"
        );
        assert_attributes(
            span,
            &[
                ("messaging.system", "kafka"),
                ("messaging.destination.name", &topics.tweets),
                ("messaging.operation.type", "process"),
                ("messaging.consumer.group.name", &group),
            ],
        );
        let batch: u64 = span.attributes["messaging.batch.message_count"]
            .parse()
            .expect("a count");
        assert!(batch >= span.links.len() as u64, "{span:?}");
    }
    let transactions: BTreeSet<(String, String)> = aggregator_spans
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();

    // The checkpoint records carry the transactions' contexts, and only they do...
    let (checkpoints, counts): (Vec<_>, Vec<_>) = traceparents_to_end(&topics.counts)
        .into_iter()
        .partition(|(checkpoint, _)| *checkpoint);
    assert!(
        counts.is_empty(),
        "counts records carry no trace context, {} do",
        counts.len()
    );
    let in_checkpoints: BTreeSet<(String, String)> = checkpoints
        .into_iter()
        .map(|(_, context)| context)
        .collect();
    assert_eq!(
        in_checkpoints, transactions,
        "the checkpoint records carry exactly the traced transactions' contexts"
    );
    // ... and the API links each of them from a batch span.
    let process_counts = format!("process {}", topics.counts);
    let api_spans = wait_until_linked(&received, "api-under-test", &process_counts, &transactions)
        .await
        .expect("API batch spans");
    for span in &api_spans {
        assert_eq!(span.kind, SpanKind::Consumer as i32, "{span:?}");
        assert!(span.links.iter().all(|l| transactions.contains(l)));
        assert_attributes(
            span,
            &[
                ("messaging.system", "kafka"),
                ("messaging.destination.name", &topics.counts),
                ("messaging.operation.type", "process"),
            ],
        );
    }

    eprintln!(
        "traces: {} of {POSTS} posts sampled, {} transaction spans, {} API batch spans",
        sampled_posts.len(),
        transactions.len(),
        api_spans.len()
    );
    // One post, followed end to end.
    let post = sampled_posts.iter().next().expect("a sampled post");
    let transaction = aggregator_spans
        .iter()
        .find(|s| s.links.contains(post))
        .expect("the post's transaction");
    let transaction_id = (transaction.trace_id.clone(), transaction.span_id.clone());
    assert!(
        api_spans.iter().any(|s| s.links.contains(&transaction_id)),
        "post {post:?} → transaction {transaction_id:?} → an API batch"
    );

    // An HTTP request carrying a traceparent gets a child span.
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let response = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{api_port}/api/v1/trends?window=all&limit=5"
        ))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .send()
        .await
        .expect("GET /api/v1/trends");
    assert!(response.status().is_success(), "{response:?}");
    let http_span = wait_for("the request's server span", WAIT, || {
        let spans: Vec<ReceivedSpan> = received
            .lock()
            .expect("receiver lock")
            .iter()
            .filter(|s| s.service == "api-under-test" && s.trace_id == caller_trace)
            .cloned()
            .collect();
        async move {
            spans
                .into_iter()
                .next()
                .ok_or_else(|| "no span of the trace yet".to_string())
        }
    })
    .await
    .expect("HTTP span");
    assert_eq!(http_span.parent_span_id, caller_span);
    assert_eq!(http_span.kind, SpanKind::Server as i32);
    assert_eq!(http_span.name, "GET /api/v1/trends");
    assert_attributes(
        &http_span,
        &[
            ("http.request.method", "GET"),
            ("http.route", "/api/v1/trends"),
            ("http.response.status_code", "200"),
        ],
    );

    for service in [&mut aggregator.process, &mut api] {
        let _ = service.terminate(Duration::from_secs(20));
    }
    assert_startup_logged(&aggregator.process.log());
}

/// The aggregator's INFO lines all reach its log with tracing on (a per-layer log filter once
/// lost some of them).
pub(crate) fn assert_startup_logged(log: &str) {
    for line in [
        "hashtag-aggregator starting",
        "initializing transactional producer",
        "partitions assigned",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
}

/// (trace id, span id) of every `traceparent` in `topic`'s committed records, read to the end
/// of every partition, each with whether its record is a counts topic checkpoint.
fn traceparents_to_end(topic: &str) -> Vec<(bool, (String, String))> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .set("group.id", unique_name("traces-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut at_end = BTreeSet::new();
    let mut found = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while at_end.len() < PARTITIONS as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "reading {topic} to its end"
        );
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                let checkpoint =
                    CountsRecord::decode(message.key().unwrap_or_default(), message.payload())
                        .is_ok_and(|r| matches!(r.key, CountsKey::Checkpoint { .. }));
                found.extend(traceparent_of(&message).map(|context| (checkpoint, context)));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    found
}

/// The (trace id, span id) of a record's `traceparent`, checked to be a sampled W3C one.
fn traceparent_of(message: &rdkafka::message::BorrowedMessage<'_>) -> Option<(String, String)> {
    let value = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == "traceparent"))
        .and_then(|h| h.value)?;
    let text = String::from_utf8_lossy(value).into_owned();
    let parts: Vec<&str> = text.split('-').collect();
    assert_eq!(parts.len(), 4, "a W3C traceparent: {text}");
    assert_eq!(parts[3], "01", "only sampled contexts are written: {text}");
    Some((parts[1].to_owned(), parts[2].to_owned()))
}
