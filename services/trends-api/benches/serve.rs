//! What serving costs with 100,000 distinct tags, in process (no socket): the prepared
//! `/trends` body through the whole router, a prefix query, a hashtag with its series, and
//! ranking a snapshot from scratch (`TrendsView::snapshot`: every name sorted afresh, as after
//! a start; the follower's steady state, which merges only new names, is `steady_snapshot` in
//! `cargo bench -p trends-core --bench view`). `cargo bench -p trends-api --bench serve`.
//! The end-to-end figure (HTTP over TCP with wrk) is `scripts/bench-api.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;
use trends_api::app::{HttpOptions, app};
use trends_api::prepared::Prepared;
use trends_api::state::AppState;
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::view::TrendsView;
use trends_core::window::{BucketLayout, Resolution};

const TAGS: i64 = 100_000;
const NOON: i64 = 1_795_435_200_000;

/// 100,000 tags `t0`…, tag *i* counted `1 + i % 50` times in a fine bucket of the last hour
/// and a coarse bucket of the last day, on one of 12 partitions.
fn view() -> TrendsView {
    let layout = BucketLayout::default();
    let mut view = TrendsView::new(layout);
    for i in 0..TAGS {
        let partition = (i % 12) as i32;
        let tag = format!("t{i}");
        let count = 1 + i % 50;
        let fine = layout.bucket_start(Resolution::Fine, NOON - (i % 360) * 10_000);
        let coarse = layout.bucket_start(Resolution::Coarse, NOON - (i % 288) * 300_000);
        for (resolution, start) in [(Resolution::Fine, fine), (Resolution::Coarse, coarse)] {
            view.apply(CountsRecord {
                key: CountsKey::Bucket {
                    partition,
                    resolution,
                    start,
                    tag: tag.clone(),
                },
                value: Some(count),
                spellings: vec![],
                error: 0,
            });
        }
        view.apply(CountsRecord {
            key: CountsKey::Total {
                partition,
                tag: tag.clone(),
            },
            value: Some(count),
            spellings: vec![(tag.to_uppercase(), count)],
            error: 0,
        });
    }
    view.apply(CountsRecord {
        key: CountsKey::Watermark { partition: 0 },
        value: Some(NOON),
        spellings: vec![],
        error: 0,
    });
    view
}

async fn get(router: &Router, uri: &str) -> usize {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn serve(c: &mut Criterion) {
    let view = view();
    let mut group = c.benchmark_group("serve_100k_tags");
    group.sample_size(20);
    group.bench_function("snapshot_build", |b| {
        b.iter(|| black_box(view.snapshot()));
    });
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(Prepared::new(view.snapshot())));
    let router = app(
        AppState::new(rx, Arc::new(AtomicBool::new(true))),
        &HttpOptions::default(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    group.sample_size(100);
    for (name, uri) in [
        ("trends_5m_top10", "/api/v1/trends?window=5m&limit=10"),
        ("trends_all_top100", "/api/v1/trends?window=all&limit=100"),
        (
            "trends_prefix_t12_top10",
            "/api/v1/trends?window=1h&prefix=t12&limit=10",
        ),
        (
            "trends_prefix_t_top100",
            "/api/v1/trends?window=1h&prefix=t&limit=100",
        ),
        ("hashtag_with_series", "/api/v1/hashtags/t12345"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(get(&router, black_box(uri))));
        });
    }
    group.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);
