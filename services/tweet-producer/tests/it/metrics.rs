//! `/metrics` of a running producer: OpenMetrics text from its own registry, every series
//! labelled with the source, the publisher's counts (published posts, committed
//! transactions) among them; and `/healthz` beside it.

use test_support::{KafkaBroker, unique_name};

use crate::support::{self, wait_until};

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The value of the series `name` (the whole name with its labels) in `text`.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_as_openmetrics_with_the_source_label() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-metrics");
    let offsets = format!("{topic}-offsets");
    let addr = format!("127.0.0.1:{}", free_port()?);
    let settings = support::settings(&[
        (
            "TRENDS__KAFKA__BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        ),
        ("TRENDS__TOPICS__TWEETS", &topic),
        ("TRENDS__TOPICS__SOURCE_OFFSETS", &offsets),
        ("TRENDS__PRODUCER__METRICS_ADDR", &addr),
        ("TRENDS__SOURCE__SYNTHETIC__RATE", "200"),
    ])?;
    let running = support::start(settings, "synthetic");
    // The listener is bound before anything is published.
    wait_until("a committed transaction", || {
        running.metrics.transactions.get() >= 1
    })
    .await?;

    let response = reqwest::get(format!("http://{addr}/metrics")).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(trends_common::metrics::CONTENT_TYPE)
    );
    let text = response.text().await?;
    for name in [
        "events_received",
        "events_published",
        "transactions_committed",
        "events_duplicate",
        "events_malformed",
        "events_oversized",
        "reconnects",
    ] {
        let series = format!("trends_producer_{name}_total{{source=\"synthetic\"}}");
        assert!(value(&text, &series).is_some(), "{series} in\n{text}");
    }
    for reason in ["keyword", "language"] {
        let series = format!(
            "trends_producer_events_filtered_total{{source=\"synthetic\",reason=\"{reason}\"}}"
        );
        assert_eq!(value(&text, &series), Some(0.0), "{series} in\n{text}");
    }
    let published = value(
        &text,
        "trends_producer_events_published_total{source=\"synthetic\"}",
    );
    assert!(published.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        value(
            &text,
            "trends_producer_transactions_committed_total{source=\"synthetic\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    let health = reqwest::get(format!("http://{addr}/healthz")).await?;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await?, "ok");

    let (summary, metrics) = running.stop().await?;
    assert!(summary.published >= 1);
    assert_eq!(summary.published, metrics.published.get());
    Ok(())
}
