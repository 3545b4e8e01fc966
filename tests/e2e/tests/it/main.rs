//! The end-to-end tests, one test binary: the product's real binaries as processes against a
//! real Kafka broker (one broker for the whole binary, `test_support::KafkaBroker::shared`), and
//! the compose file checked offline. One binary rather than one per file: librdkafka and the
//! rest are linked once, and the broker starts once.
//!
//! Run one module with a filter, e.g. `cargo test -p e2e --test it browser -- --nocapture`.

mod bounded;
mod browser;
mod compose;
mod durability;
mod exactly_once;
mod failover;
mod helm;
mod hostile;
mod live_source;
mod observability;
mod pipeline;
mod prometheus_page;
mod restore;
mod secured;
mod source_exactly_once;
mod standalone;
mod traces;
mod trending;
