//! The trends-api benchmark: throughput and latency of `/api/v1/trends` with 100,000 distinct
//! hashtags loaded, and the memory cost of 10,000 concurrent SSE clients.
//!
//! Not a test (timings never decide a test's outcome): a program that prints figures.
//! Run it with `scripts/bench-api.sh`, which builds the release binaries, raises the
//! file-descriptor limit and installs `wrk` if needed.
//!
//! What it does, on this machine, with real parts:
//! 1. a real Kafka broker (`test-support`), a release `hashtag-aggregator` and a release
//!    `trends-api` as processes;
//! 2. produces `TAGS` posts, post *i* carrying the distinct tag `#t<i>` and, for one post in
//!    ten, one of 20 popular tags, spread over the last hour of event time; waits until the API
//!    serves every tag (checked through the API itself);
//! 3. runs `wrk` (2 threads, 64 connections, 30 s, `--latency`) against
//!    `/api/v1/trends?window=5m&limit=10` and `…window=all&limit=100` — on the same 2 cores as
//!    the API, so the figure is what one small machine does end to end;
//! 4. opens `SSE_CLIENTS` connections to `/api/v1/stream`, waits until every one has received
//!    its first snapshot, reads the API's resident memory before and after (`/proc/<pid>`),
//!    publishes one more post and waits until every client has received the update.
//!
//! Environment: `BENCH_TAGS` (100000), `BENCH_SSE_CLIENTS` (10000), `BENCH_SECONDS` (30).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use trends_common::time::now_ms;

use anyhow::{Context as _, bail};
use e2e::{ServiceProcess, free_port, get_json, wait_for};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use test_support::{KafkaBroker, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PARTITIONS: i32 = 12;
const POPULAR: usize = 20;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing")
}

fn rfc3339(ms: i64) -> String {
    trends_core::format_rfc3339_millis(ms)
}

async fn produce(producer: &FutureProducer, topic: &str, posts: &[(String, String, i64)]) {
    for chunk in posts.chunks(10_000) {
        let mut pending = Vec::with_capacity(chunk.len());
        for (id, payload, ts) in chunk {
            let record = FutureRecord::to(topic)
                .key(id)
                .payload(payload)
                .timestamp(*ts);
            match producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => panic!("enqueue {id}: {e}"),
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                other => panic!("delivery failed: {other:?}"),
            }
        }
    }
}

fn post(i: usize, text: String, time: i64) -> (String, String, i64) {
    let id = format!("bench-{i}");
    let payload = json!({"id": id, "text": text, "created_at": rfc3339(time)}).to_string();
    (id, payload, time)
}

/// Runs `wrk` and prints its report.
fn wrk(url: &str, seconds: usize) -> anyhow::Result<()> {
    println!("\n$ wrk -t2 -c64 -d{seconds}s --latency '{url}'");
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .context("run wrk (scripts/bench-api.sh installs it)")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One SSE client: connects, sends the request, counts `event: trends` events as they come;
/// gives back its set-up permit once the first event arrived.
async fn sse_client(
    port: u16,
    setting_up: tokio::sync::OwnedSemaphorePermit,
    first: Arc<AtomicUsize>,
    second: Arc<AtomicUsize>,
    hold: tokio_util_free::Hold,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(
            b"GET /api/v1/stream?window=5m&limit=10 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = String::new();
    let mut events = 0;
    let mut setting_up = Some(setting_up);
    loop {
        let n = tokio::select! {
            n = stream.read(&mut buf) => n?,
            () = hold.released() => return Ok(()),
        };
        if n == 0 {
            bail!("the server closed the stream after {events} events");
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.starts_with("HTTP/1.1 ") && !seen.starts_with("HTTP/1.1 200") {
            bail!("{}", seen.lines().next().unwrap_or_default());
        }
        while let Some(at) = seen.find("event: trends") {
            seen.drain(..at + "event: trends".len());
            events += 1;
            if events == 1 {
                setting_up.take();
            }
            match events {
                1 => first.fetch_add(1, Ordering::Relaxed),
                2 => second.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
        // Keep the buffer small: only a partial event marker can matter.
        if seen.len() > 64 {
            let keep = seen.len() - 16;
            let cut = (keep..seen.len())
                .find(|&i| seen.is_char_boundary(i))
                .unwrap_or(0);
            seen.drain(..cut);
        }
    }
}

/// A tiny "hold until released" signal without extra dependencies.
mod tokio_util_free {
    use std::sync::Arc;
    use tokio::sync::watch;

    #[derive(Clone)]
    pub struct Hold(Arc<watch::Sender<bool>>, watch::Receiver<bool>);

    impl Hold {
        pub fn new() -> Hold {
            let (tx, rx) = watch::channel(false);
            Hold(Arc::new(tx), rx)
        }
        pub fn release(&self) {
            let _ = self.0.send(true);
        }
        pub async fn released(&self) {
            let mut rx = self.1.clone();
            let _ = rx.wait_for(|v| *v).await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let tags = env_number("BENCH_TAGS", 100_000);
    let clients = env_number("BENCH_SSE_CLIENTS", 10_000);
    let seconds = env_number("BENCH_SECONDS", 30);
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_string();
    let (tweets, counts, dlq) = (
        unique_name("bench-tweets"),
        unique_name("bench-counts"),
        unique_name("bench-dlq"),
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    for r in admin
        .create_topics(
            &[NewTopic::new(
                &tweets,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    let base_env: HashMap<String, String> = [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap.clone()),
        ("TRENDS__TOPICS__TWEETS", tweets.clone()),
        ("TRENDS__TOPICS__COUNTS", counts.clone()),
        ("TRENDS__TOPICS__DLQ", dlq.clone()),
        ("TRENDS__LOG__FILTER", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut aggregator_env = base_env.clone();
    aggregator_env.insert(
        "TRENDS__AGGREGATOR__METRICS_ADDR".into(),
        format!("127.0.0.1:{}", free_port()),
    );
    aggregator_env.insert("TRENDS__AGGREGATOR__GROUP_ID".into(), unique_name("bench"));
    let _aggregator = ServiceProcess::start("hashtag-aggregator", &aggregator_env)?;
    let port = free_port();
    let mut api_env = base_env.clone();
    api_env.insert("TRENDS__HTTP__ADDR".into(), format!("127.0.0.1:{port}"));
    api_env.insert(
        "TRENDS__API__MAX_STREAM_CLIENTS".into(),
        (clients + 100).to_string(),
    );
    // Every client comes from 127.0.0.1: lift the per-address cap (and the connection cap,
    // which must hold the streams plus wrk's connections).
    api_env.insert(
        "TRENDS__API__MAX_STREAMS_PER_IP".into(),
        (clients + 100).to_string(),
    );
    api_env.insert(
        "TRENDS__HTTP__MAX_CONNECTIONS".into(),
        (2 * clients + 1000).to_string(),
    );
    let api = ServiceProcess::start("trends-api", &api_env)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // Posts: #t<i> each; one in ten also has a popular tag (#pop0 the most frequent).
    let now = now_ms();
    let posts: Vec<(String, String, i64)> = (0..tags)
        .map(|i| {
            let popular = if i % 10 == 0 {
                // Skewed towards low numbers: #pop0 is the most frequent.
                let j = i / 10;
                format!(" #pop{}", j % (1 + j % POPULAR))
            } else {
                String::new()
            };
            let time = now - 1_000 - ((i * 37) % 3_540_000) as i64;
            post(i, format!("bench post #t{i:06}{popular}"), time)
        })
        .collect();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .create()?;
    let started = Instant::now();
    produce(&producer, &tweets, &posts).await;
    println!("produced {tags} posts in {:.1?}", started.elapsed());

    let last = format!("{base}/api/v1/hashtags/t{:06}", tags - 1);
    let first = format!("{base}/api/v1/hashtags/t{:06}", 0);
    wait_for("every tag served", Duration::from_secs(600), || async {
        for url in [&first, &last] {
            let (status, body) = get_json(&http, url).await?;
            if status != 200 || body["counts"]["all"] != 1 {
                return Err(format!("{url}: {status}"));
            }
        }
        Ok(())
    })
    .await?;
    let (_, top) = get_json(&http, &format!("{base}/api/v1/trends?window=all&limit=3"))
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "API serves {tags} distinct #t tags + {POPULAR} popular ones after {:.1?}; top of `all`: {}",
        started.elapsed(),
        top["trends"]
    );
    let rss_loaded = rss_kib(api.pid())?;
    println!(
        "trends-api RSS with the data loaded: {} MiB",
        rss_loaded / 1024
    );

    wrk(&format!("{base}/api/v1/trends?window=5m&limit=10"), seconds)?;
    wrk(
        &format!("{base}/api/v1/trends?window=all&limit=100"),
        seconds,
    )?;

    // SSE clients.
    let rss_before = rss_kib(api.pid())?;
    let first_events = Arc::new(AtomicUsize::new(0));
    let second_events = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let hold = tokio_util_free::Hold::new();
    let connecting = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (first, second, failures, hold, gate) = (
            first_events.clone(),
            second_events.clone(),
            failures.clone(),
            hold.clone(),
            gate.clone(),
        );
        // At most 256 connections being set up at once (the listener's backlog is finite).
        let permit = gate.acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = sse_client(port, permit, first, second, hold).await {
                if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("SSE client failed: {e:#}");
                }
            }
        }));
    }
    wait_for(
        "every SSE client got its first snapshot",
        Duration::from_secs(300),
        || async {
            let (got, failed) = (
                first_events.load(Ordering::Relaxed),
                failures.load(Ordering::Relaxed),
            );
            if failed > 0 {
                panic!("{failed} SSE clients failed");
            }
            if got == clients {
                Ok(())
            } else {
                Err(format!("{got}/{clients}"))
            }
        },
    )
    .await?;
    println!(
        "\n{clients} SSE clients connected and got their first snapshot in {:.1?}",
        connecting.elapsed()
    );
    let metrics = e2e::get_text(&http, &format!("{base}/metrics"))
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "trends_api_stream_clients = {:?}",
        e2e::metric_value(&metrics, "trends_api_stream_clients")
    );
    let rss_after = rss_kib(api.pid())?;
    println!(
        "trends-api RSS: {} MiB before, {} MiB with {clients} SSE clients: {:.1} KiB per client",
        rss_before / 1024,
        rss_after / 1024,
        (rss_after.saturating_sub(rss_before)) as f64 / clients as f64
    );

    // One more post: every held client must receive the update.
    let update = Instant::now();
    let extra = post(
        tags,
        "one more #pop0 #pop0extra".to_string(),
        now_ms() - 1_000,
    );
    produce(&producer, &tweets, &[extra]).await;
    wait_for(
        "every SSE client got the update",
        Duration::from_secs(300),
        || async {
            let got = second_events.load(Ordering::Relaxed);
            if got == clients {
                Ok(())
            } else {
                Err(format!("{got}/{clients}"))
            }
        },
    )
    .await?;
    println!(
        "all {clients} SSE clients received the next snapshot {:.1?} after the post was acknowledged",
        update.elapsed()
    );
    hold.release();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
