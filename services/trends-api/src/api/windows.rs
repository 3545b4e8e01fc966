//! `GET /api/v1/windows`: the windows, their length and their buckets, from the configured
//! bucket layout.

use axum::Json;
use axum::extract::State;
use trends_core::window::Window;

use super::types::{WindowInfo, WindowsResponse};
use crate::state::AppState;

/// The windows and their buckets.
#[utoipa::path(
    get,
    path = "/api/v1/windows",
    tag = "trends",
    responses((status = 200, description = "Windows, shortest first", body = WindowsResponse)),
)]
pub async fn windows(State(state): State<AppState>) -> Json<WindowsResponse> {
    let layout = state.layout;
    Json(WindowsResponse {
        fine_bucket_secs: layout.fine_ms / 1000,
        coarse_bucket_secs: layout.coarse_ms / 1000,
        windows: Window::ALL
            .iter()
            .map(|&w| {
                let bucket_ms = w.resolution().map(|r| layout.size_ms(r));
                WindowInfo {
                    name: w.as_str(),
                    seconds: w.duration_ms().map(|d| d / 1000),
                    bucket_secs: bucket_ms.map(|b| b / 1000),
                    buckets: w.duration_ms().zip(bucket_ms).map(|(d, b)| d / b),
                }
            })
            .collect(),
    })
}
