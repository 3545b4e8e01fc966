//! What tracing adds to the hot paths, per record (trends_common::trace_context):
//!
//! - `trace/producer_span/unsampled`: tweet-producer's decision for one post at ratio 0.01 (a
//!   trace id, the sampler, a non-recording span): what every post pays with tracing on;
//! - `trace/producer_span/sampled`: a sampled post's span, attributes and headers (ratio 1),
//!   ended into a batch processor whose exporter discards;
//! - `trace/sampled_context/without_headers` and `…/with_traceparent`: the aggregator's and
//!   the API's read of a record's headers (most records carry none).
//!
//! With tracing off none of this runs: every call site checks `trace_context::enabled()` (one
//! atomic load) first.
//!
//! `cargo bench -p trends-common --bench trace`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use rdkafka::message::{Header, OwnedHeaders};
use trends_common::trace_context::{sampled_context, start_producer_span_with};

/// Discards every batch: the cost measured is the service's, not a collector's.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

fn provider(ratio: f64) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .build()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("trace");
    let unsampled = provider(0.01);
    let tracer = unsampled.tracer("bench");
    group.bench_function("producer_span/unsampled", |b| {
        b.iter(|| black_box(start_producer_span_with(&tracer, black_box("tweets"))))
    });
    let sampled = provider(1.0);
    let tracer = sampled.tracer("bench");
    group.bench_function("producer_span/sampled", |b| {
        b.iter(|| black_box(start_producer_span_with(&tracer, black_box("tweets"))))
    });
    group.bench_function("sampled_context/without_headers", |b| {
        b.iter(|| black_box(sampled_context(black_box(None))))
    });
    let traced = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    });
    group.bench_function("sampled_context/other_headers", |b| {
        let other = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        b.iter(|| black_box(sampled_context(black_box(Some(other.as_borrowed())))))
    });
    group.bench_function("sampled_context/with_traceparent", |b| {
        b.iter(|| black_box(sampled_context(black_box(Some(traced.as_borrowed())))))
    });
    group.finish();
    let _ = unsampled.shutdown();
    let _ = sampled.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
