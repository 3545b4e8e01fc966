//! The integration tests of trends-api, in one binary (one link of librdkafka instead of one
//! per file), one module per subject; [`helpers`] holds what they share.
//!
//! - [`routes`]: the HTTP contract through `app()`, no socket;
//! - [`stream`]: `/api/v1/stream` on a paused clock, and over a real socket;
//! - [`openapi`]: real responses validated against the generated document;
//! - [`server`]: the production server on raw sockets (timeouts, caps, listeners);
//! - [`follower`]: the counts follower against a real broker;
//! - [`catch_up`]: 503 until caught up, readiness lost past the lag threshold (real broker);
//! - [`estimates`]: counts with errors and floors served with their exact bounds (real broker);
//! - [`layering`]: the crate's module dependencies (one way, `api::types` a leaf).

mod catch_up;
mod estimates;
mod follower;
mod helpers;
mod layering;
mod moderation;
mod openapi;
mod routes;
mod server;
mod stream;
mod webhooks;
