//! What every service of hashtag-trends needs and none should write twice.
//!
//! - [`config`]: typed, layered settings (built-in defaults ← optional file ← `TRENDS__*`
//!   environment variables) that refuse unknown keys and name the key that is wrong.
//! - [`telemetry`]: `tracing` set-up, human-readable or JSON logs, and OpenTelemetry traces
//!   exported over OTLP when an endpoint is set.
//! - [`trace_context`]: a post's trace carried in Kafka record headers from service to service.
//! - [`shutdown`]: SIGTERM/Ctrl-C turned into a [`tokio_util::sync::CancellationToken`], and a
//!   task group where one failing task stops the others.
//! - [`kafka`]: the single place where Kafka clients are configured and topics created.
//! - [`settings`]: the config sections the services have in common, and their checks.
//! - [`service`]: the skeleton every `main` runs (load → telemetry → signals → run → exit code).
//! - [`metrics`]: a registry per service and the one `/metrics` server.
//! - [`memory`]: freed heap handed back to the operating system after a burst.
//! - [`time`]: the wall clock in the pipeline's unit.
//! - [`secret`]: tokens and keys as secret types, read from a variable or a file, never logged.

pub mod config;
pub mod config_error;
pub mod kafka;
pub mod kafka_security;
pub mod memory;
pub mod metrics;
pub mod secret;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod time;
pub mod trace_context;
