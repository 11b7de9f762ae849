//! The span each request runs in, named and labelled by OpenTelemetry's HTTP server conventions.
//! It continues the caller's trace when the request carries a W3C `traceparent`.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::HeaderMap,
};
use opentelemetry::{global, propagation::Extractor, trace::TraceContextExt};
use tracing::{Span, field::Empty};
use tracing_actix_web::RootSpanBuilder;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::UNMEASURED_ROUTES;

/// Given to `TracingLogger`. Route, status and outcome are recorded when the response is known:
/// the route is matched only after `NormalizePath` has trimmed a trailing slash. `request_id` is
/// filled in by `middleware::request_id`, which decides it. `/metrics`, `/health` and `/ready`
/// are not traced, as they are not in the request metrics.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Scrapes and probes arrive every few seconds and would bury the requests worth reading.
        if UNMEASURED_ROUTES.contains(&request.path()) {
            return Span::none();
        }
        let span = tracing::info_span!(
            "HTTP request",
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = request.method().as_str(),
            http.route = Empty,
            http.response.status_code = Empty,
            url.path = request.path(),
            request_id = Empty,
            "error.type" = Empty,
        );
        let caller = global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(request.headers()))
        });
        // Fails only when the span is disabled, that is when no trace is being recorded.
        let _ = span.set_parent(caller);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // actix-web turns every handler and extractor error into a response before it gets
        // here, so `Err` is a failure of the connection itself.
        let Ok(response) = outcome else {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", "transport");
            return;
        };
        let request = response.request();
        let status = response.status();
        // A path no route matched has no route: the span is named by its method alone and
        // carries no `http.route`, as the HTTP conventions say.
        let name = match request.match_pattern() {
            Some(route) => {
                span.record("http.route", route.as_str());
                format!("{} {route}", request.method())
            }
            None => request.method().to_string(),
        };
        // The OpenTelemetry span has started by now (log lines and statements asked for its
        // ids), and tracing-opentelemetry renames only spans not yet started: rename it directly.
        span.context().span().update_name(name);
        span.record("http.response.status_code", i64::from(status.as_u16()));
        // A 4xx is the caller's mistake, not a failure of this server (OpenTelemetry's rule for
        // server spans).
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", status.as_str());
        }
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
