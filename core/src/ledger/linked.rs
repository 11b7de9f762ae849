//! Work done once for several requests (a group's statement, a batch of reads) keeps every
//! request's trace whole: it runs in a span that is a child of the first traced request's span,
//! and every other traced request gets a span of the same name, linked to that one (an
//! OpenTelemetry span link), that lasts as long. So each trace leads to the statement that
//! served its request.

use tracing::Span;

/// The span the work runs in, and the linked spans to keep until it ends; `make` names the span
/// and its fields. Each is made inside its request's span, so that a subscriber that traces only
/// some requests can leave out the others' (their spans come back disabled): work led by an
/// untraced request still has its statement in the trace of the first request that is traced.
pub(super) fn spans<'a>(
    requests: impl IntoIterator<Item = &'a Span>,
    make: impl Fn() -> Span,
) -> (Span, Vec<Span>) {
    let mut work = Span::none();
    let mut seen = Vec::new();
    let mut linked = Vec::new();
    for request in requests {
        // An untraced request has no span (`Span::none`), and its work none in any trace.
        if request.is_disabled() || seen.contains(&request.id()) {
            continue;
        }
        seen.push(request.id());
        let span = request.in_scope(&make);
        if span.is_disabled() {
            continue;
        }
        if work.is_disabled() {
            work = span;
        } else {
            span.follows_from(&work);
            linked.push(span);
        }
    }
    (work, linked)
}
