//! A post's trace, carried from service to service in Kafka record headers.
//!
//! **The path of a sampled post.** tweet-producer starts a `send tweets` span (kind producer)
//! for each post the sampler keeps and writes its W3C trace context into the record's headers
//! (`traceparent`, and `tracestate` when there is one). The aggregator's span per transaction
//! (`process tweets`, kind consumer) **links** to the sampled posts it counted: one transaction
//! counts thousands of posts from as many traces, so they are links, not parents, as
//! OpenTelemetry's messaging conventions say for batch processing. The counts records that
//! transaction writes carry its own context in their headers, and the API's span per applied
//! batch (`process counts`) links to the transactions whose records it applied. An HTTP
//! request to the API with a `traceparent` header gets its span as a child of the caller's.
//!
//! **Sampling that follows the post** ([`LinkAwareSampler`]): a span is sampled when one of
//! its links is, whatever the configured ratio; otherwise the configured sampler decides.
//! So a post sampled at its source is followed to the page, and with
//! `OTEL_TRACES_SAMPLER_ARG=0` downstream, only what the source sampled is traced.
//!
//! **Hostile headers.** Headers come from Kafka records, which anyone with write access to a
//! topic can write: a context is read only from a `traceparent` of at most
//! [`MAX_HEADER_BYTES`], parsed by OpenTelemetry's W3C propagator (an invalid one is ignored),
//! and a span keeps at most [`MAX_LINKS`] links (the rest are counted in an attribute).
//!
//! **Cost when off.** [`enabled`] is one atomic load; every call site checks it first, so
//! without an OTLP endpoint no header is read or written and no span is made per record.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    Link, SamplingDecision, SamplingResult, SpanContext, SpanKind, TraceContextExt as _, TraceId,
    TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, ShouldSample};
use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};

/// The W3C header that carries a span context.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header that carries vendor trace state.
pub const TRACESTATE: &str = "tracestate";
/// A longer `traceparent` or `tracestate` header is ignored (a valid `traceparent` is 55
/// bytes; W3C limits `tracestate` to 32 members).
pub const MAX_HEADER_BYTES: usize = 512;
/// Links one span keeps; the SDK's own default limit (`OTEL_SPAN_LINK_COUNT_LIMIT`) is 128.
pub const MAX_LINKS: usize = 128;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Whether spans are exported (an OTLP endpoint is set): callers skip all trace work when not.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The tracer for spans made without `tracing` (one per sampled post: see
/// [`start_producer_span`]); `None` when tracing is off.
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get().filter(|_| enabled())
}

/// Called once by [`crate::telemetry::init`] when exporting starts.
pub(crate) fn install(tracer: SdkTracer) {
    let _ = TRACER.set(tracer);
    ENABLED.store(true, Ordering::Relaxed);
}

/// The messaging attributes every span here carries (OpenTelemetry semantic conventions for
/// messaging, Kafka): system, destination, operation type and name.
pub fn messaging_attributes(operation: &'static str, destination: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.destination.name", destination.to_owned()),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.operation.name", operation),
    ]
}

/// A sampled producer span for one record to `topic`, and the headers that carry it; `None`
/// when tracing is off or the sampler did not keep this one (then nothing is allocated
/// beyond the sampler's decision). The span ends when the returned guard is dropped.
pub fn start_producer_span(topic: &str) -> Option<(ProducerSpan, OwnedHeaders)> {
    start_producer_span_with(tracer()?, topic)
}

/// [`start_producer_span`] with a given tracer (the benchmark's).
pub fn start_producer_span_with(
    tracer: &SdkTracer,
    topic: &str,
) -> Option<(ProducerSpan, OwnedHeaders)> {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let mut span = tracer
        .span_builder(send_span_name(topic))
        .with_kind(SpanKind::Producer)
        .start_with_context(tracer, &Context::new());
    if !span.span_context().is_sampled() {
        return None;
    }
    span.set_attributes(messaging_attributes("send", topic));
    let headers = headers_for(span.span_context())?;
    Some((ProducerSpan { _span: span }, headers))
}

/// `send <topic>`, made once per topic: the span builder takes a `'static` name without
/// allocating, and a post the sampler drops should cost as little as possible. A process
/// writes to one posts topic, so the names kept are one or two.
fn send_span_name(topic: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(name) = names
        .iter()
        .find(|n| n.strip_prefix("send ") == Some(topic))
    {
        return name;
    }
    // Bounded: topic names come from settings, not from input; past 16 topics the span is
    // named `send` alone.
    if names.len() >= 16 {
        return "send";
    }
    let name: &'static str = Box::leak(format!("send {topic}").into_boxed_str());
    names.push(name);
    name
}

/// A producer span from [`start_producer_span`]: ends when dropped.
#[derive(Debug)]
pub struct ProducerSpan {
    /// Held only to end the span when dropped.
    _span: opentelemetry_sdk::trace::Span,
}

/// Kafka record headers carrying `context` (W3C `traceparent`/`tracestate`), if it is valid
/// and sampled: an unsampled context is not worth the bytes.
pub fn headers_for(context: &SpanContext) -> Option<OwnedHeaders> {
    if !context.is_valid() || !context.is_sampled() {
        return None;
    }
    let mut carrier = HeaderInjector(Vec::with_capacity(2));
    let cx = Context::new().with_remote_span_context(context.clone());
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut headers = OwnedHeaders::new_with_capacity(carrier.0.len());
    for (key, value) in &carrier.0 {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    Some(headers)
}

/// The sampled span context a record's headers carry, if any (see the module's notes on
/// hostile headers).
pub fn sampled_context(headers: Option<&BorrowedHeaders>) -> Option<SpanContext> {
    let headers = headers?;
    let extractor = HeaderExtractor(headers);
    extractor.get(TRACEPARENT)?;
    let cx = TraceContextPropagator::new().extract(&extractor);
    let context = cx.span().span_context().clone();
    (context.is_valid() && context.is_sampled()).then_some(context)
}

/// The sampled span context of an HTTP request's `traceparent`, as a parent [`Context`] (the
/// empty context when there is none).
pub fn http_parent(headers: &axum::http::HeaderMap) -> Context {
    let extractor = HttpHeaderExtractor(headers);
    if extractor.get(TRACEPARENT).is_none() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&extractor)
}

/// The links a batch span will carry: distinct sampled contexts, at most [`MAX_LINKS`].
#[derive(Debug, Default)]
pub struct Links {
    links: Vec<SpanContext>,
    /// Distinct contexts past [`MAX_LINKS`], not kept.
    dropped: u64,
}

impl Links {
    /// Adds a record's context, if it carries a sampled one not already linked.
    pub fn add_from(&mut self, headers: Option<&BorrowedHeaders>) {
        if let Some(context) = sampled_context(headers) {
            self.add(context);
        }
    }

    /// Adds `context` unless it is already linked (a transaction writes many records with the
    /// same context) or the span has [`MAX_LINKS`].
    pub fn add(&mut self, context: SpanContext) {
        let id = (context.trace_id(), context.span_id());
        if self.links.iter().any(|l| (l.trace_id(), l.span_id()) == id) {
            return;
        }
        if self.links.len() >= MAX_LINKS {
            self.dropped += 1;
        } else {
            self.links.push(context);
        }
    }

    /// No link yet.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Adds every link to `span` (before it starts, so the sampler sees them) and records how
    /// many were left out as `trends.links_dropped`; empties `self`.
    pub fn attach_to(&mut self, span: &tracing::Span) {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        for context in self.links.drain(..) {
            span.add_link(context);
        }
        if self.dropped > 0 {
            span.set_attribute(
                "trends.links_dropped",
                i64::try_from(self.dropped).unwrap_or(i64::MAX),
            );
        }
        self.dropped = 0;
    }
}

/// The headers that carry `span`'s context, when it is sampled (after [`Links::attach_to`]).
pub fn headers_of_span(span: &tracing::Span) -> Option<OwnedHeaders> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = span.context();
    let context = cx.span().span_context().clone();
    headers_for(&context)
}

/// The configured sampler, except that a span with a sampled link is always sampled: a post
/// sampled at its source is followed through the aggregator's transaction and the API's batch
/// whatever their own ratio (see the module docs).
#[derive(Debug, Clone)]
pub struct LinkAwareSampler(pub Sampler);

impl ShouldSample for LinkAwareSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let parent_sampled = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().is_sampled());
        if parent_sampled.is_none() && links.iter().any(|l| l.span_context.is_sampled()) {
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Collects what the propagator writes, to become Kafka headers.
struct HeaderInjector(Vec<(String, String)>);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// Reads the W3C headers of a Kafka record (UTF-8, at most [`MAX_HEADER_BYTES`]).
struct HeaderExtractor<'a>(&'a BorrowedHeaders);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.key == key)
            .and_then(|header| header.value)
            .filter(|value| value.len() <= MAX_HEADER_BYTES)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// Reads the W3C headers of an HTTP request (at most [`MAX_HEADER_BYTES`]).
struct HttpHeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HttpHeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .filter(|value| value.len() <= MAX_HEADER_BYTES)
            .and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags};
    use rdkafka::message::{Header, OwnedHeaders};

    fn context(sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("span id"),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            TraceState::default(),
        )
    }

    /// Headers as a consumer sees them: rdkafka's borrowed view of owned headers.
    fn read_back(headers: &OwnedHeaders) -> Option<SpanContext> {
        sampled_context(Some(headers.as_borrowed()))
    }

    #[test]
    fn a_sampled_context_goes_through_headers_and_back() {
        let headers = headers_for(&context(true)).expect("a sampled context makes headers");
        let traceparent = headers
            .iter()
            .find(|h| h.key == TRACEPARENT)
            .and_then(|h| h.value)
            .expect("a traceparent header");
        assert_eq!(
            traceparent,
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let back = read_back(&headers).expect("read back");
        assert_eq!(back.trace_id(), context(true).trace_id());
        assert_eq!(back.span_id(), context(true).span_id());
        assert!(back.is_remote());
    }

    #[test]
    fn unsampled_and_invalid_contexts_make_no_headers() {
        assert!(headers_for(&context(false)).is_none());
        assert!(headers_for(&SpanContext::empty_context()).is_none());
    }

    #[test]
    fn hostile_headers_are_ignored() {
        let cases: [&[u8]; 6] = [
            b"garbage",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", // not sampled
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            &[0xff, 0xfe, 0x00],                                        // not UTF-8
            &[b'0'; MAX_HEADER_BYTES + 1],                              // too long
        ];
        for value in cases {
            let headers = OwnedHeaders::new().insert(Header {
                key: TRACEPARENT,
                value: Some(value),
            });
            assert!(
                read_back(&headers).is_none(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        assert!(sampled_context(None).is_none());
        let no_traceparent = OwnedHeaders::new().insert(Header {
            key: "other",
            value: Some(b"x"),
        });
        assert!(read_back(&no_traceparent).is_none());
    }

    #[test]
    fn links_are_distinct_and_bounded() {
        let mut links = Links::default();
        links.add(context(true));
        links.add(context(true));
        assert_eq!(links.links.len(), 1, "the same context is linked once");
        for i in 0..(MAX_LINKS as u64 + 10) {
            links.add(SpanContext::new(
                TraceId::from((i + 1) as u128),
                SpanId::from(i + 1),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ));
        }
        assert_eq!(links.links.len(), MAX_LINKS);
        assert_eq!(links.dropped, 11);
    }

    #[test]
    fn a_sampled_link_samples_the_span_whatever_the_ratio() {
        let sampler = LinkAwareSampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.0,
        ))));
        let decide = |links: &[Link]| {
            sampler
                .should_sample(
                    None,
                    TraceId::from(7u128),
                    "process tweets",
                    &SpanKind::Consumer,
                    &[],
                    links,
                )
                .decision
        };
        assert_eq!(decide(&[]), SamplingDecision::Drop, "ratio 0, no link");
        assert_eq!(
            decide(&[Link::with_context(context(false))]),
            SamplingDecision::Drop,
            "an unsampled link does not count"
        );
        assert_eq!(
            decide(&[Link::with_context(context(true))]),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn http_parent_reads_traceparent() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!http_parent(&headers).has_active_span());
        headers.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("header value"),
        );
        let cx = http_parent(&headers);
        assert_eq!(
            cx.span().span_context().trace_id(),
            context(true).trace_id()
        );
    }
}
