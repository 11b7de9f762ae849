//! Whether a request is traced, decided once as it arrives: the configured sampler, asked about
//! the caller's context before any span is built. A traced request runs in the span
//! `request_span` builds; an untraced one in no span at all, its ids (what its log lines and
//! `traceresponse` name) held by the task serving it (`in_untraced`).
//!
//! Why decide first: tracing-opentelemetry builds every span it sees (the request's attributes
//! copied, one span per SQL statement) and leaves the decision to the SDK when the span starts,
//! so an unsampled request paid for a whole trace only for it to be dropped. Why no span: a span,
//! even one no layer exports, is looked up in the registry each time the request's future is
//! polled (tracing-actix-web enters it on every poll of the request and of its body).

use std::{future::Future, sync::OnceLock};

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, TraceContextExt},
};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SamplingResult, ShouldSample,
};

use super::TraceIds;

tokio::task_local! {
    /// The ids of the untraced request the task is serving.
    static UNTRACED: TraceIds;
}

/// The sampler requests are decided by, set once with the trace pipeline.
static REQUESTS: OnceLock<Sampler> = OnceLock::new();

/// The tracer provider's sampler. A server span reaches it only when `untraced` chose to trace
/// its request, so it is recorded; every other span (statements, ledger groups, webhook
/// deliveries) follows the configured sampler, the way every span did before.
#[derive(Clone, Debug)]
pub struct DecidedAtArrival(Sampler);

impl DecidedAtArrival {
    pub fn new(sampler: Sampler) -> Self {
        // A process has one trace pipeline; a second (tests build several apps) keeps the first.
        let _ = REQUESTS.set(sampler.clone());
        Self(sampler)
    }
}

impl ShouldSample for DecidedAtArrival {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if *kind != SpanKind::Server {
            return self
                .0
                .should_sample(parent, trace_id, name, kind, attributes, links);
        }
        SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: parent
                .map(|parent| parent.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

/// The ids an untraced request answers with, or `None` when it is traced. A new trace's id is
/// drawn here, so the ratio applies to it as the SDK's would; a caller's trace keeps its id.
pub fn untraced(caller: &Context) -> Option<TraceIds> {
    decide(REQUESTS.get()?, caller)
}

fn decide(sampler: &Sampler, caller: &Context) -> Option<TraceIds> {
    let ids = RandomIdGenerator::default();
    let remote = caller.span().span_context().clone();
    let trace_id = if remote.is_valid() {
        remote.trace_id()
    } else {
        ids.new_trace_id()
    };
    let decision = sampler
        .should_sample(
            Some(caller),
            trace_id,
            "HTTP request",
            &SpanKind::Server,
            &[],
            &[],
        )
        .decision;
    (decision == SamplingDecision::Drop).then(|| TraceIds {
        trace_id,
        span_id: ids.new_span_id(),
        sampled: false,
    })
}

/// Runs `request` as the untraced request `ids` names: what it logs carries them.
pub fn in_untraced<F: Future>(ids: TraceIds, request: F) -> impl Future<Output = F::Output> {
    UNTRACED.scope(ids, request)
}

/// The ids of the untraced request being served, if one is.
pub fn untraced_ids() -> Option<TraceIds> {
    UNTRACED.try_with(|ids| *ids).ok()
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn caller(flags: TraceFlags) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn a_callers_decision_is_followed_and_its_trace_kept() {
        let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        assert_eq!(decide(&sampler, &caller(TraceFlags::SAMPLED)), None);
        let untraced = decide(&sampler, &caller(TraceFlags::default())).expect("untraced");
        assert_eq!(
            untraced.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(untraced.span_id, SpanId::INVALID);
        assert_ne!(
            untraced.span_id.to_string(),
            "00f067aa0ba902b7",
            "a span of our own"
        );
        assert!(!untraced.sampled);
    }

    #[test]
    fn new_traces_are_kept_at_the_configured_ratio() {
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.25)));
        let untraced: Vec<TraceIds> = (0..4000)
            .filter_map(|_| decide(&sampler, &Context::new()))
            .collect();
        // 3,000 expected; the odds of falling outside are below one in a billion.
        assert!((2700..3300).contains(&untraced.len()), "{}", untraced.len());
        let first = untraced[0].trace_id;
        assert!(
            untraced[1..].iter().all(|ids| ids.trace_id != first),
            "a new trace each"
        );
        assert_eq!(
            decide(&Sampler::AlwaysOff, &Context::new()).map(|ids| ids.sampled),
            Some(false)
        );
        assert_eq!(decide(&Sampler::AlwaysOn, &Context::new()), None);
    }

    #[test]
    fn server_spans_are_recorded_and_the_rest_follow_the_sampler() {
        let provider = DecidedAtArrival(Sampler::AlwaysOff);
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        let decision = |kind| {
            provider
                .should_sample(None, trace, "x", &kind, &[], &[])
                .decision
        };
        assert_eq!(
            decision(SpanKind::Server),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decision(SpanKind::Internal), SamplingDecision::Drop);
        assert_eq!(decision(SpanKind::Client), SamplingDecision::Drop);
    }

    #[tokio::test]
    async fn an_untraced_request_holds_its_ids_while_it_runs() {
        let ids = decide(&Sampler::AlwaysOff, &Context::new()).expect("untraced");
        assert_eq!(in_untraced(ids, async { untraced_ids() }).await, Some(ids));
        assert_eq!(untraced_ids(), None, "outside the request");
    }
}
