//! The API's endpoints: one module per resource, each holding its handlers with their
//! `#[utoipa::path]` documentation, and [`types`], the bodies they answer with.
//!
//! A handler parses and checks its request, picks the answer from the [`AppState`] (almost
//! always a body [`crate::prepared::Prepared`] built or serialized once per snapshot), and
//! says which headers go with it. Nothing here knows the route table, the layers or the server
//! ([`crate::app`] routes to these functions, [`crate::openapi`] documents them), so adding an
//! endpoint is a handler here, its types in [`types`], and one line in each of those two.
//!
//! - [`trends`]: `/api/v1/trends` and the query it shares with the stream;
//! - [`hashtag`]: one tag, `/api/v1/hashtags/{tag}`;
//! - [`windows`]: the windows, `/api/v1/windows`;
//! - [`languages`]: the feed's languages and their volume, `/api/v1/languages`;
//! - [`stream`]: `/api/v1/stream` (the SSE machinery is [`crate::sse`]);
//! - [`health`]: `/healthz`, `/readyz` and `/metrics`, the endpoints of operators.
//!
//! [`AppState`]: crate::state::AppState

pub mod hashtag;
pub mod health;
pub mod languages;
pub mod stream;
pub mod trends;
pub mod types;
pub mod windows;

/// Longest accepted hashtag or prefix, in bytes (before normalization).
pub const MAX_TAG_BYTES: usize = 280;

/// The snapshot to answer a data request from, or 503 `not_ready` while the API has not yet
/// read the counts topic to its end (it never serves a partial sum).
pub fn complete_snapshot(
    state: &crate::state::AppState,
) -> Result<std::sync::Arc<crate::prepared::Prepared>, crate::error::AppError> {
    let prepared = state.current();
    if prepared.is_complete() {
        Ok(prepared)
    } else {
        Err(crate::error::AppError::NotReady)
    }
}
