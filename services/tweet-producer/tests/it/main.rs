//! The producer's integration tests, one binary (librdkafka is linked once, and one broker
//! serves every test): each against a real Kafka broker (`test_support`), the live sources
//! against fake servers of their APIs on loopback ports (`test_support::fakes`).
//!
//! - [`publish`]: the synthetic and file sources end to end, through the built binary too
//!   (SIGTERM, `kill -9`, exit codes), and posts too large for the topic or the client;
//! - [`bluesky`], [`mastodon`], [`x`]: each live source through drops, refusals, restarts,
//!   malformed and oversized input, with tokens never in a log or an error;
//! - [`metrics`]: `/metrics` of a running producer (OpenMetrics, the source label);
//! - [`support`]: settings, an in-process producer, waiting on conditions, reading topics back,
//!   captured logs.

mod bluesky;
mod mastodon;
mod metrics;
mod publish;
mod support;
mod x;
