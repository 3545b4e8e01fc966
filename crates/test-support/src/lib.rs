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
//! ## Secured brokers
//!
//! Production clusters (Confluent Cloud, MSK, Aiven, Strimzi) authenticate clients; a test of
//! the product's security settings needs a broker that really refuses a wrong password, so
//! [`KafkaBroker::start_secured`] starts one whose only client listener is secured:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use test_support::{KafkaBroker, ScramUser, Security};
//!
//! let alice = ScramUser::new("alice", "alice-secret");
//! let broker = KafkaBroker::start_secured(Security::SaslSsl { users: vec![alice.clone()] })?;
//! let tls = broker.tls().expect("secured brokers have TLS files");
//! // The product's settings: security_protocol = "SASL_SSL", mechanism SCRAM-SHA-512,
//! // username/password = alice's, CA file = tls.ca_pem.
//! let admin = broker.client_config(); // bootstrap + SASL_SSL as the broker's admin user
//! let as_alice = broker.client_config_as(&alice);
//! # let _ = (tls, admin, as_alice);
//! # Ok(()) }
//! ```
//!
//! - [`Security::SaslSsl`]: TLS, then SCRAM-SHA-512. The users exist before the broker first
//!   starts: `kafka-storage format --add-scram` writes them into the metadata log, the same
//!   bootstrap a real KRaft cluster uses (there is no ZooKeeper to add them to later). The
//!   broker's own user [`ADMIN_USER`] (random password) is what the inter-broker listener, the
//!   readiness probe and [`KafkaBroker::client_config`] use. A client with a wrong password or
//!   an unknown user gets `RDKafkaErrorCode::Authentication` through its error callback
//!   within about half a second; its metadata requests only fail with a transport error or
//!   time out, so a product that wants to fail fast must watch the error callback.
//! - [`Security::MutualTls`]: TLS with `ssl.client.auth=required`. A client without a
//!   certificate fails the handshake (`BrokerTransportFailure`, "bad certificate").
//!
//! The certificates are generated in the test process (`rcgen`): a CA, a broker certificate
//! for `127.0.0.1` and `localhost` (so librdkafka's default hostname verification passes), and
//! a client certificate, all PEM in the broker's temp dir ([`TlsFiles`]). The broker reads
//! them as a PEM key store and trust store (`ssl.keystore.type=PEM`, KIP-651), so neither
//! `keytool` nor a JKS password is involved. Only the KRaft controller listener stays
//! PLAINTEXT, on loopback and never advertised to clients.
//!
//! ## A three-node cluster
//!
//! What the product does when a broker dies (leaders move, a transaction coordinator goes
//! away) can only be tested with replication, so [`KafkaCluster`] starts several nodes:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use test_support::KafkaCluster;
//!
//! let mut cluster = KafkaCluster::start(3)?; // RF 3, min ISR 2, internal topics alike
//! // ... point the services at cluster.bootstrap_servers(), create topics, produce ...
//! let leader = cluster.leader_of("counts", 0)?;
//! cluster.kill(leader)?; // SIGKILL: no clean shutdown
//! // ... the pipeline goes on with the two others (acks=all, min ISR 2) ...
//! cluster.start_node(leader)?; // same ports, same data; back in the metadata
//! cluster.wait_in_sync("counts", Duration::from_secs(60))?;
//! # Ok(()) }
//! ```
//!
//! Each node is broker and controller at once (combined mode) with every node in a static
//! `controller.quorum.voters`, formatted with one shared cluster id: the simplest KRaft
//! layout that still loses neither the metadata quorum nor any partition when one node dies.
//! A killed node is fenced after 4 s without heartbeats (`broker.session.timeout.ms`), after
//! which its partitions are led by in-sync replicas. rdkafka has no FindCoordinator call, so
//! [`KafkaCluster::transaction_coordinator`] computes the partition of `__transaction_state`
//! the broker uses (Java's `String.hashCode`, as `TransactionStateManager.partitionFor`) and
//! returns its leader from metadata; a test checks it against the coordinator the broker
//! names to librdkafka. Three JVMs with `-Xmx384m` start in 12-16 s on a 2-core machine.
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
//!   factor 1 everywhere), `log4j2.properties`, the broker's output in `broker.log`, the
//!   partition data in `data/`, formatted with `kafka.tools.StorageTool format`, and for a
//!   secured broker `tls/`. Startup ends when a metadata request (over the secured listener,
//!   authenticated, for a secured broker) lists the broker, within 60 s; otherwise the error
//!   shows the tail of `broker.log`. A cluster's temp dir `test-kafka-cluster-*` holds one
//!   such dir per node, `node-<id>/`.
//! - **Cleanup.** Dropping a [`KafkaBroker`] (or [`KafkaCluster`]) kills the JVM(s) and
//!   deletes the dir. The shared
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
mod cluster;
pub mod fakes;
mod jars;
mod security;
mod spawn;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use broker::{BOOTSTRAP_ENV, KafkaBroker};
pub use cluster::KafkaCluster;
pub use security::{ADMIN_USER, SCRAM_MECHANISM, ScramUser, Security, TlsFiles};
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
