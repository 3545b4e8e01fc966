//! `GET /api/v1/stream`: the handler. It checks the query (as `/api/v1/trends` does) and hands
//! the connection to [`crate::sse`], which runs the stream and holds its caps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::Response;

use super::trends::{TrendsQuery, parse_query};
use super::types::{ErrorBody, TrendsResponse};
use crate::error::AppError;
use crate::sse;
use crate::state::AppState;

/// The `/trends` body as Server-Sent Events, whenever it changes.
///
/// Each event is `event: trends` with `data:` exactly the `/api/v1/trends` body for the same
/// parameters. The first comes at once (with a `retry:` hint), then one each time the body
/// changes, at most `api.stream_max_events_per_sec` per second (default 4); a `: keep-alive`
/// comment after 15 s without an event.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "trends",
    params(TrendsQuery),
    responses(
        (status = 200, description = "An event stream; each event's data is a TrendsResponse", body = TrendsResponse, content_type = "text/event-stream"),
        (status = 400, description = "As for /api/v1/trends", body = ErrorBody),
        (status = 429, description = "`too_many_streams_from_ip`: `api.max_streams_per_ip` streams are open from this client's address (IPv6: its /64); or `rate_limited` (only with a rate limit configured). See `Retry-After`", body = ErrorBody),
        (status = 503, description = "`too_many_streams`: `api.max_stream_clients` streams are open; or `not_ready`: the counts topic has not been read to its end yet. See `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let q = parse_query(query)?;
    super::complete_snapshot(&state)?;
    sse::open(
        &state.streams,
        state.snapshot.clone(),
        peer_ip(peer),
        state.shutdown.clone(),
        q,
    )
}

/// The TCP peer's address; unspecified when the request did not come through a socket (tests
/// calling the router directly), so such requests share one key.
fn peer_ip(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    peer.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(addr))| addr.ip(),
    )
}
