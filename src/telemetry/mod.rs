//! What the service tells its operators besides metrics: log lines (env_logger, `logs`), traces
//! (OpenTelemetry over OTLP, `traces`), the span every request runs in (`request_span`), and the
//! trace and span ids that tie a request's log lines, its exemplar and its trace together.

mod logs;
mod request_span;
mod traces;

pub use request_span::RequestSpan;
pub use traces::{Traces, TracesError};

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::Settings;

/// Starts logging, and tracing when an OTLP endpoint is set. Keep the returned `Traces` until
/// the server has stopped, then shut it down so spans still in its queue are sent.
pub fn init(settings: &Settings) -> Result<Traces, TracesError> {
    logs::init(settings.log_format, &settings.log_filter);
    Traces::start(settings.tracing.as_ref())
}

/// The ids of the span being executed now, if traces are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: String,
    pub span_id: String,
    /// Whether this trace is exported; only then may a metric point at it.
    pub sampled: bool,
}

pub fn current_trace() -> Option<TraceIds> {
    // Without a subscriber there are no spans: skip the lookups, on every log line and request.
    if !tracing::dispatcher::has_been_set() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| TraceIds {
        trace_id: ids.trace_id().to_string(),
        span_id: ids.span_id().to_string(),
        sampled: ids.is_sampled(),
    })
}
