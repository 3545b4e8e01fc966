//! Test support: a real Apache Kafka broker for integration tests, without Docker, and
//! fake servers of the live sources ([`fakes`]: Jetstream, Mastodon, X) on loopback.
//!
//! Tests in this workspace talk to the same Kafka the product runs against (version 4.3.1,
//! KRaft mode, see `scripts/kafka/pom.xml`), started as a plain `java` process on loopback.
//!
//! # Using it
//!
//! Most tests share one broker per test binary and isolate themselves by naming:
//!
//! ```no_run
//! use test_support::{KafkaBroker, unique_name};
//!
//! let broker = KafkaBroker::shared(); // started on first call, a few seconds
//! let topic = unique_name("posts"); // e.g. "posts-4242-7-1763888000123456789"
//! let group = unique_name("aggregator");
//! // Point the code under test at `broker.bootstrap_servers()` and create `topic` with an
//! // AdminClient: auto topic creation is off, as in production.
//! # let _ = (broker, topic, group);
//! ```
//!
//! A test that stops and restarts Kafka (to check that the product survives it) owns a
//! private broker instead:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let mut broker = test_support::KafkaBroker::start()?;
//! // ... produce ...
//! broker.restart()?; // same port, same data
//! // ... the records are still there ...
//! # Ok(()) }
//! ```
//!
//! Processes a test starts itself (the product's service binaries) should be spawned with
//! [`spawn_killed_on_parent_exit`] so that they, like the brokers, never outlive the test
//! process.
//!
//! # How it works
//!
//! - **Jars.** On first use `scripts/kafka-jars.sh` has Maven copy the broker and its runtime
//!   dependencies into `~/.cache/hashtag-trends/kafka-<version>` (or `$TRENDS_KAFKA_JARS_DIR`).
//!   Later runs find the cache complete and return at once; a `flock` keeps parallel test
//!   binaries from downloading twice. Needs `mvn`, Maven Central and a JDK 17+.
//! - **Start.** Each broker gets a temp dir `$TMPDIR/test-kafka-*` holding `server.properties`
//!   (one node that is both broker and controller, two free loopback ports, replication
//!   factor 1 everywhere), `log4j2.properties`, the broker's output in `broker.log`, and the
//!   partition data in `data/`, formatted with `kafka.tools.StorageTool format`. Startup ends
//!   when a metadata request lists the broker, within 60 s; otherwise the error shows the tail
//!   of `broker.log`.
//! - **Cleanup.** Dropping a [`KafkaBroker`] kills the JVM and deletes its dir. The shared
//!   broker is a static and never dropped, so every JVM is also spawned with
//!   `PR_SET_PDEATHSIG = SIGKILL`: the kernel kills it when the test process ends, however it
//!   ends. Dirs left behind that way are deleted by the next [`KafkaBroker::start`].
//! - **External broker.** With `TRENDS_TEST_BOOTSTRAP_SERVERS=host:port` set,
//!   [`KafkaBroker::shared`] uses that broker and starts nothing (handy with
//!   `docker compose up`, or to keep a broker running across test runs).
//!   [`KafkaBroker::start`] still starts a private one.
//!
//! Linux only (`prctl`, `/proc`).

mod broker;
pub mod fakes;
mod jars;
mod spawn;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use broker::{BOOTSTRAP_ENV, KafkaBroker};
pub use spawn::spawn_killed_on_parent_exit;

/// A name no other test, test process or earlier run will use: `<prefix>-<pid>-<n>-<nanos>`,
/// where `n` counts calls in this process and `nanos` is the current time.
///
/// Use it for topics, consumer groups and transactional ids on a shared broker. The result is
/// a legal topic name if `prefix` is (letters, digits, `.`, `_`, `-`).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{}", std::process::id(), now_nanos())
}

/// Nanoseconds since the Unix epoch.
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
