//! What the service tells its operators besides metrics: log lines (env_logger, `logs`), traces
//! (OpenTelemetry over OTLP, `traces`), the span a traced request runs in (`request_span`), the
//! stable database conventions for SeaORM's statement spans (`conventions`), whether a request
//! is traced (`sampling`), and the trace and span ids that tie a request's log lines, its
//! exemplar and its trace together.

mod conventions;
mod log_buffer;
mod logs;
mod request_span;
mod sampling;
mod traces;

pub use request_span::{RequestSpan, in_untraced};
pub use traces::TracesError;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::Settings;
use log_buffer::Written;
use traces::Traces;

/// Starts logging, and tracing when an OTLP endpoint is set. Keep the returned `Telemetry` until
/// the server has stopped, then shut it down so spans and lines still waiting are sent.
pub fn init(settings: &Settings) -> Result<Telemetry, TracesError> {
    let logs = logs::init(settings.log_format, &settings.log_filter);
    let traces = Traces::start(settings.tracing.as_ref())?;
    Ok(Telemetry { traces, logs })
}

pub struct Telemetry {
    traces: Traces,
    logs: Option<Written>,
}

impl Telemetry {
    /// Sends the spans still queued, then writes the lines still gathered (the shutdown of
    /// traces may log).
    pub async fn shutdown(self) {
        self.traces.shutdown().await;
        drop(self.logs);
    }
}

/// The ids of the span being executed now, if traces are on. They print as lower-case hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// Whether this trace is exported; only then may a metric point at it.
    pub sampled: bool,
}

impl TraceIds {
    /// The W3C `traceparent` (and `traceresponse`) form: `00-{trace id}-{span id}-{flags}`.
    pub fn traceparent(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", self.trace_id, self.span_id)
    }
}

/// The `traceparent` of the span being executed now, if it is a trace that is exported: what a
/// write is stored with, so the webhooks it causes can link to it.
pub fn current_traceparent() -> Option<String> {
    current_trace()
        .filter(|trace| trace.sampled)
        .map(|trace| trace.traceparent())
}

/// A span context from a stored `traceparent`, to link a span to it.
pub fn remote_context(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = traceparent.split('-');
    let (Some("00"), Some(trace), Some(span), Some(_flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

pub fn current_trace() -> Option<TraceIds> {
    // Without a subscriber there are no spans and no untraced requests: skip the lookups, on
    // every log line and request.
    if !tracing::dispatcher::has_been_set() {
        return None;
    }
    // A span first: an untraced request may run a ledger group whose statement is traced.
    let current = tracing::Span::current();
    if current.is_disabled() {
        return sampling::untraced_ids();
    }
    let context = current.context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| TraceIds {
        trace_id: ids.trace_id(),
        span_id: ids.span_id(),
        sampled: ids.is_sampled(),
    })
}
