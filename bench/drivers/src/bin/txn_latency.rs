//! Where the time of a Kafka transaction goes: a transactional `BaseProducer` loop shaped like
//! the aggregator's commit cycle, timed phase by phase (issue 14, "why does
//! `commit_transaction` take ~100 ms?"). Not a test: it prints figures, nothing passes or fails
//! on them.
//!
//! **Why it exists.** The aggregator's latency to the counts topic is bounded by its commit
//! cycle, and `commit_transaction` alone took ~100 ms of it whatever the load. This driver
//! takes the service out of the picture: one producer, one consumer group, a fixed small
//! transaction every `TXN_INTERVAL_MS`, so that a fixed delay shows as a flat median and one
//! setting can be changed at a time.
//!
//! **What it showed** (issue 14): the ~100 ms was not the broker. rdkafka's
//! `commit_transaction` flushes first, and its flush polls in 100 ms slices with a `poll`
//! that never returns before its timeout (rdkafka 0.38+): with any delivery report
//! outstanding, every commit took 100 ms plus the EndTxn round trip (~1.5 ms in the debug
//! log). `TXN_FLUSH=poll` shows the cure. A second fixed delay: a transaction that starts
//! right after a commit gets CONCURRENT_TRANSACTIONS from the coordinator until the previous
//! one is completed, and librdkafka retries after `retry.backoff.ms` (100 ms by default).
//!
//! **What one cycle does** (as `Engine::try_commit` does): `begin_transaction` →
//! produce `TXN_RECORDS` records round-robin to the `TXN_PARTITIONS` partitions of an output
//! topic → `send_offsets_to_transaction` with the group metadata of a real consumer that is a
//! member of a real group (unless `TXN_OFFSETS=0`) → `commit_transaction`. Timed phases:
//!
//! - `begin`: `begin_transaction` (local to the client);
//! - `produce`: handing the records to librdkafka (enqueue only);
//! - `send_offsets`: `send_offsets_to_transaction` (AddOffsetsToTxn to the transaction
//!   coordinator, then TxnOffsetCommit to the group coordinator);
//! - `flush` (only with `TXN_FLUSH=poll`): waiting for every delivery report by polling the
//!   producer in 1 ms slices before `commit_transaction`;
//! - `commit`: `commit_transaction` (rdkafka flushes first, then EndTxn);
//! - `first_ack`: from the first record handed over to its delivery report being served (with
//!   `TXN_FLUSH=rdkafka` reports are only served inside `commit`, so this includes
//!   `send_offsets`);
//! - `cycle`: the whole transaction, begin to commit returned.
//!
//! **Settings** (environment; defaults are the aggregator's producer):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TXN_CYCLES` | 200 | transactions measured |
//! | `TXN_WARMUP` | 10 | transactions run first and not counted |
//! | `TXN_INTERVAL_MS` | 100 | one transaction starts every interval (at once if the last overran) |
//! | `TXN_RECORDS` | 1000 | records per transaction |
//! | `TXN_RECORD_BYTES` | 100 | value size of each record |
//! | `TXN_PARTITIONS` | 2 | partitions of the output topic, all written in every transaction |
//! | `TXN_OFFSETS` | 1 | 0 = no `send_offsets_to_transaction` |
//! | `TXN_FLUSH` | `rdkafka` | `rdkafka`: `commit_transaction` straight away, its own flush waits; `poll`: poll delivery reports in 1 ms slices until none is in flight, then `commit_transaction` |
//! | `TXN_PRODUCER_CONFIG` | | extra producer settings, `key=value,key=value` (e.g. `linger.ms=0,retry.backoff.ms=10`) |
//! | `TXN_DEBUG` | | librdkafka debug contexts (e.g. `eos,protocol,msg`): logged to stderr with the ms since start, and phase marks |
//! | `TRENDS_TEST_BOOTSTRAP_SERVERS` | | use this broker instead of starting one as the tests do |
//!
//! ```sh
//! cargo run --release -p bench-drivers --bin txn_latency
//! TXN_FLUSH=poll cargo run --release -p bench-drivers --bin txn_latency
//! TXN_DEBUG=eos,protocol TXN_CYCLES=5 cargo run --release -p bench-drivers --bin txn_latency 2> txn.log
//! ```
//!
//! librdkafka's log lines reach rdkafka's log callback only when the producer is polled (its
//! log queue is the main queue), so their timestamps here are when they were served; the
//! `rtt` in each "Received …Response" line is librdkafka's own measure of the round trip.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use test_support::{KafkaBroker, unique_name};

/// Limit of every blocking Kafka call, as the aggregator's `TRANSACTION_CALL_TIMEOUT`.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll slice of `TXN_FLUSH=poll`: rdkafka's `BaseProducer::poll` returns only at its
/// deadline, so the slice bounds how late the last delivery report is noticed.
const FLUSH_SLICE: Duration = Duration::from_millis(1);

/// How `commit_transaction` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushMode {
    /// `commit_transaction` straight away: rdkafka flushes inside it.
    Rdkafka,
    /// Poll delivery reports in [`FLUSH_SLICE`]s until none is in flight, then commit.
    Poll,
}

#[derive(Debug)]
struct Options {
    cycles: usize,
    warmup: usize,
    interval: Duration,
    records: usize,
    record_bytes: usize,
    partitions: i32,
    offsets: bool,
    flush: FlushMode,
    producer_config: Vec<(String, String)>,
    debug: Option<String>,
}

fn env_text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match env_text(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
    }
}

impl Options {
    fn from_env() -> anyhow::Result<Options> {
        let flush = match env_text("TXN_FLUSH").as_deref().map(str::trim) {
            None | Some("rdkafka") => FlushMode::Rdkafka,
            Some("poll") => FlushMode::Poll,
            Some(other) => bail!("TXN_FLUSH={other}: expected rdkafka or poll"),
        };
        let mut producer_config = Vec::new();
        for pair in env_text("TXN_PRODUCER_CONFIG")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("TXN_PRODUCER_CONFIG: {pair:?} is not key=value"))?;
            producer_config.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        let partitions = env_number("TXN_PARTITIONS", 2)?;
        ensure!(
            (1..=1000).contains(&partitions),
            "TXN_PARTITIONS must be 1..=1000"
        );
        Ok(Options {
            cycles: env_number("TXN_CYCLES", 200)?.max(1),
            warmup: env_number("TXN_WARMUP", 10)?,
            interval: Duration::from_millis(env_number("TXN_INTERVAL_MS", 100)? as u64),
            records: env_number("TXN_RECORDS", 1000)?.max(1),
            record_bytes: env_number("TXN_RECORD_BYTES", 100)?,
            partitions: i32::try_from(partitions)?,
            offsets: env_number("TXN_OFFSETS", 1)? != 0,
            flush,
            producer_config,
            debug: env_text("TXN_DEBUG"),
        })
    }
}

/// The producer's context: counts delivery reports, notes when the first of a transaction was
/// served, and prints librdkafka's debug log with a timestamp.
#[derive(Debug)]
struct Probe {
    start: Instant,
    delivered: AtomicUsize,
    failed: AtomicUsize,
    /// Nanoseconds since `start` when the first delivery report of the current transaction was
    /// served; 0 = none yet.
    first_report: AtomicU64,
}

impl Probe {
    fn since_start(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    fn mark(&self, what: &str) {
        eprintln!("{:>11.3} ms ==== {what}", self.since_start());
    }
}

impl ClientContext for Probe {
    fn log(&self, _level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("{:>11.3} ms {fac} {log_message}", self.since_start());
    }
}

impl ProducerContext for Probe {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self
            .first_report
            .compare_exchange(0, nanos, Ordering::Relaxed, Ordering::Relaxed);
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Milliseconds per phase, one entry per measured transaction.
#[derive(Debug, Default)]
struct Phases(BTreeMap<&'static str, Vec<f64>>);

impl Phases {
    fn add(&mut self, phase: &'static str, took: Duration) {
        self.0
            .entry(phase)
            .or_default()
            .push(took.as_secs_f64() * 1000.0);
    }

    fn print(&mut self) {
        println!("| phase | n | mean | p50 | p90 | p99 | max |");
        println!("|---|---|---|---|---|---|---|");
        const ORDER: [&str; 7] = [
            "begin",
            "produce",
            "send_offsets",
            "flush",
            "commit",
            "first_ack",
            "cycle",
        ];
        for phase in ORDER {
            let Some(values) = self.0.get_mut(phase) else {
                continue;
            };
            values.sort_by(f64::total_cmp);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            println!(
                "| {phase} | {} | {mean:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
                values.len(),
                percentile(values, 50.0),
                percentile(values, 90.0),
                percentile(values, 99.0),
                values.last().copied().unwrap_or(f64::NAN),
            );
        }
    }
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("create admin client")?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT)),
    ))?;
    for result in results {
        result.map_err(|(topic, e)| anyhow::anyhow!("cannot create topic {topic}: {e}"))?;
    }
    Ok(())
}

/// A consumer that has joined a group and owns the input topic's partition, so that its group
/// metadata (generation, member id) is what the aggregator's would be.
fn group_member(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("create consumer")?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        if consumer.assignment()?.count() > 0 {
            return Ok(consumer);
        }
        ensure!(
            Instant::now() < deadline,
            "the consumer got no partition within {CALL_TIMEOUT:?}"
        );
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_env()?;
    let probe = Probe {
        start: Instant::now(),
        delivered: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        first_report: AtomicU64::new(0),
    };
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers();
    let (input, output) = (unique_name("txn-in"), unique_name("txn-out"));
    create_topics(bootstrap, &[(&input, 1), (&output, options.partitions)])?;
    let consumer = group_member(bootstrap, &unique_name("txn-group"), &input)?;

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", unique_name("txn-latency"))
        // The aggregator's producer (engine.rs, `transactional_producer`).
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("transaction.timeout.ms", "30000");
    for (key, value) in &options.producer_config {
        config.set(key, value);
    }
    if let Some(debug) = &options.debug {
        config
            .set("debug", debug)
            .set_log_level(RDKafkaLogLevel::Debug);
    }
    let producer: BaseProducer<Probe> = config
        .create_with_context(probe)
        .context("create producer")?;
    producer.init_transactions(CALL_TIMEOUT)?;
    let probe = producer.context().clone();
    let logging = options.debug.is_some();
    println!(
        "broker {bootstrap}; {} transactions (after {} warm-up) every {:?}: {} records of {} B \
         to {} partitions, offsets {}, flush {:?}, producer config {:?}",
        options.cycles,
        options.warmup,
        options.interval,
        options.records,
        options.record_bytes,
        options.partitions,
        if options.offsets { "on" } else { "off" },
        options.flush,
        options.producer_config,
    );

    let payload = vec![b'x'; options.record_bytes];
    let keys: Vec<String> = (0..options.records).map(|i| format!("key-{i}")).collect();
    let mut phases = Phases::default();
    let mut next_start = Instant::now();
    for cycle in 0..options.warmup + options.cycles {
        // Wait for the tick, keeping the consumer in its group as the aggregator's loop does.
        loop {
            let now = Instant::now();
            if now >= next_start {
                break;
            }
            let _ = consumer.poll((next_start - now).min(Duration::from_millis(10)));
        }
        next_start = Instant::now().max(next_start) + options.interval;
        let measured = cycle >= options.warmup;
        let mut took = Vec::new();
        if logging {
            probe.mark(&format!("transaction {cycle}: begin"));
        }
        probe.first_report.store(0, Ordering::Relaxed);
        let delivered_before = probe.delivered.load(Ordering::Relaxed);

        let cycle_start = Instant::now();
        producer.begin_transaction()?;
        took.push(("begin", cycle_start.elapsed()));

        let started = Instant::now();
        let first_sent = probe.since_start();
        for (i, key) in keys.iter().enumerate() {
            let partition = i32::try_from(i)? % options.partitions;
            let mut record = BaseRecord::to(&output)
                .partition(partition)
                .key(key.as_str())
                .payload(payload.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        ensure!(
                            started.elapsed() < CALL_TIMEOUT,
                            "cannot produce for {CALL_TIMEOUT:?}: {e}"
                        );
                        record = back;
                        producer.poll(FLUSH_SLICE);
                    }
                }
            }
        }
        took.push(("produce", started.elapsed()));

        if options.offsets {
            if logging {
                probe.mark("send_offsets_to_transaction");
            }
            let started = Instant::now();
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(&input, 0, Offset::Offset(i64::try_from(cycle)? + 1))?;
            let metadata = consumer
                .group_metadata()
                .context("the consumer has no group metadata")?;
            producer.send_offsets_to_transaction(&offsets, &metadata, CALL_TIMEOUT)?;
            took.push(("send_offsets", started.elapsed()));
        }

        if options.flush == FlushMode::Poll {
            if logging {
                probe.mark("flush (poll 1 ms slices)");
            }
            let started = Instant::now();
            while producer.in_flight_count() > 0 {
                ensure!(
                    started.elapsed() < CALL_TIMEOUT,
                    "records still in flight after {CALL_TIMEOUT:?}"
                );
                producer.poll(FLUSH_SLICE);
            }
            took.push(("flush", started.elapsed()));
        }

        if logging {
            probe.mark("commit_transaction");
        }
        let started = Instant::now();
        producer.commit_transaction(CALL_TIMEOUT)?;
        took.push(("commit", started.elapsed()));
        took.push(("cycle", cycle_start.elapsed()));
        if logging {
            probe.mark("committed");
        }

        let first_report = probe.first_report.load(Ordering::Relaxed);
        ensure!(first_report > 0, "transaction {cycle}: no delivery report");
        let first_ack_ms = (first_report as f64 / 1e6 - first_sent).max(0.0);
        took.push(("first_ack", Duration::from_secs_f64(first_ack_ms / 1000.0)));
        ensure!(
            probe.failed.load(Ordering::Relaxed) == 0,
            "transaction {cycle}: a record failed"
        );
        let delivered = probe.delivered.load(Ordering::Relaxed) - delivered_before;
        ensure!(
            delivered == options.records,
            "transaction {cycle}: {delivered} of {} records delivered",
            options.records
        );
        if measured {
            for (phase, duration) in took {
                phases.add(phase, duration);
            }
        }
    }
    phases.print();
    Ok(())
}
