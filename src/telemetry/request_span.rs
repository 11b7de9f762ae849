//! The span each request runs in, named and labelled by OpenTelemetry's HTTP server conventions.
//! It continues the caller's trace when the request carries a W3C `traceparent`. A request the
//! sampler does not trace runs in no span: `in_untraced` has it hold its ids instead (`sampling`).

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Version,
        header::{self, HeaderMap},
    },
    middleware::Next,
};
use opentelemetry::{Context, global, propagation::Extractor, trace::TraceContextExt};
use tracing::{Span, field::Empty};
use tracing_actix_web::RootSpanBuilder;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{TraceIds, sampling};
use crate::{extract::ClientAddress, metrics::UNMEASURED_ROUTES};

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
        let caller = global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(request.headers()))
        });
        match sampling::untraced(&caller) {
            Some(ids) => {
                request.extensions_mut().insert(Untraced(ids));
                Span::none()
            }
            None => traced(request, caller),
        }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if span.is_disabled() {
            return;
        }
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

/// The ids of a request the sampler does not trace, from `RequestSpan` to `in_untraced`.
#[derive(Clone, Copy)]
struct Untraced(TraceIds);

/// Inside `TracingLogger::<RequestSpan>`: an untraced request runs holding its ids, so that its
/// log lines and `traceresponse` name them.
pub async fn in_untraced(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let untraced = req.extensions().get::<Untraced>().copied();
    match untraced {
        Some(Untraced(ids)) => sampling::in_untraced(ids, next.call(req)).await,
        None => next.call(req).await,
    }
}

/// The span of a request that is traced, a child of the caller's span when it sent one.
fn traced(request: &ServiceRequest, caller: Context) -> Span {
    let connection = request.connection_info();
    let (host, port) = server(connection.host(), connection.scheme());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok());
    let client = ClientAddress::of(request.request())
        .0
        .map(|ip| ip.to_string());
    let span = tracing::info_span!(
        "HTTP request",
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = request.method().as_str(),
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = request.path(),
        url.scheme = connection.scheme(),
        server.address = host,
        server.port = port,
        network.protocol.version = protocol(request.version()),
        user_agent.original = user_agent,
        client.address = client,
        request_id = Empty,
        "error.type" = Empty,
    );
    // Fails only when the span is disabled, that is when no trace is being recorded.
    let _ = span.set_parent(caller);
    span
}

/// The host and port the client asked for (`Host`, or the proxy's `Forwarded` when trusted
/// by actix-web's connection info), the port implied by the scheme when none is written.
fn server<'a>(host: &'a str, scheme: &str) -> (&'a str, i64) {
    let default = if scheme == "https" { 443 } else { 80 };
    match host.rsplit_once(':') {
        // `[::1]:8888`, `127.0.0.1:8888`; a bare IPv6 address has colons but no port.
        Some((name, port)) if !name.ends_with(':') => match port.parse() {
            Ok(port) => (name.trim_start_matches('[').trim_end_matches(']'), port),
            Err(_) => (host, default),
        },
        _ => (host, default),
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
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
