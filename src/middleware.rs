//! The per-request wrapper around every route: request id, access log, latency histogram (with
//! the trace as exemplar), `traceresponse`, in-flight gauge and rejection counter. It sits
//! directly around the router, inside the request's span.

use std::time::Instant;

use actix_web::{
    Error,
    body::{BodySize, BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Uri,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web::Data,
};
use prometheus::IntGauge;

use crate::{
    error::ApiError,
    metrics::{RequestLabels, UNMATCHED_ROUTE, UNMEASURED_ROUTES},
    state::AppState,
    telemetry::{self, TraceIds},
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context's response header: the caller learns the trace its request is part of.
pub const TRACE_RESPONSE: HeaderName = HeaderName::from_static("traceresponse");
const MAX_REQUEST_ID_LEN: usize = 128;

pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    trim_trailing_slash(&mut req);
    let request_id = request_id(&req);
    tracing::Span::current().record("request_id", request_id.as_str());
    let state = req.app_data::<Data<AppState>>().cloned();
    let _in_flight = state
        .as_ref()
        .map(|state| InFlight::start(&state.metrics.requests_in_flight));
    // actix-web turns extractor and handler errors into responses (with the error attached, read
    // below) before they leave the router, and nothing sits between this and the router, so `Err`
    // here would only be a transport failure that has no response to count.
    let mut res = with_json_detail(next.call(req).await?.map_into_boxed_body());

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let trace = telemetry::current_trace();
    if let Some(value) = trace.as_ref().and_then(trace_response) {
        res.headers_mut().insert(TRACE_RESPONSE, value);
    }
    let api_error = res
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>());
    if let (Some(state), Some(reason)) = (&state, api_error.and_then(ApiError::rejection_reason)) {
        state.metrics.rejections.with_label_values(&[reason]).inc();
    }
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.into());
    let seconds = started.elapsed().as_secs_f64();
    let measured = !UNMEASURED_ROUTES.contains(&route.as_str());
    if let (Some(state), true) = (&state, measured) {
        let labels = RequestLabels {
            endpoint: route.clone(),
            method: res.request().method().to_string(),
            status: res.status().as_u16(),
        };
        let exemplar = trace
            .filter(|trace| trace.sampled)
            .map(|trace| trace.trace_id);
        state.metrics.observe_request(&labels, seconds, exemplar);
    }
    log_access(&res, &request_id, &route, seconds, measured);
    Ok(res)
}

/// `00-{trace id}-{span id}-{flags}`, flags `01` when the trace is sampled.
fn trace_response(trace: &TraceIds) -> Option<HeaderValue> {
    let flags = if trace.sampled { "01" } else { "00" };
    HeaderValue::from_str(&format!("00-{}-{}-{flags}", trace.trace_id, trace.span_id)).ok()
}

/// Errors made outside our handlers (a missing Swagger UI asset, say) arrive with an empty body;
/// clients get the same `{"detail": ...}` shape from them as from every other error.
fn with_json_detail(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let is_empty = matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if !(status.is_client_error() || status.is_server_error()) || !is_empty {
        return res;
    }
    let detail = serde_json::json!({ "detail": status.canonical_reason().unwrap_or("Error") });
    res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        BoxBody::new(detail.to_string())
    })
}

fn log_access(
    res: &ServiceResponse<BoxBody>,
    request_id: &str,
    route: &str,
    seconds: f64,
    measured: bool,
) {
    let req = res.request();
    let status = res.status();
    let latency_ms = seconds * 1000.0;
    if status.is_server_error() {
        // The client got an opaque message; the cause goes to the log, found by the request id.
        let cause = res
            .response()
            .error()
            .map(|error| format!("{error:?}"))
            .unwrap_or_default();
        log::error!(target: "access", request_id, cause = cause.as_str(); "{} {} failed", req.method(), req.path());
    }
    let level = if measured {
        log::Level::Info
    } else {
        log::Level::Debug
    };
    log::log!(
        target: "access",
        level,
        request_id,
        method = req.method().as_str(),
        route,
        status = status.as_u16(),
        latency_ms;
        "{} {} {} {:.2}ms", req.method(), req.path(), status.as_u16(), latency_ms
    );
}

/// An incoming `X-Request-Id` is kept if it is short and printable, so callers can trace a request
/// across services; otherwise a new one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The Python original's clients call `/accounts/` with a slash and the docs say `/accounts`: answer
/// both directly, without a redirect, by trimming the slash before routing. Swagger UI's pages live
/// under `/docs/` and keep theirs.
fn trim_trailing_slash(req: &mut ServiceRequest) {
    let path = req.path();
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs/") {
        return;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let path_and_query = match req.query_string() {
        "" => trimmed.to_owned(),
        query => format!("{trimmed}?{query}"),
    };
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return;
    };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// Counts a request in `http_requests_in_flight` for as long as it lives, even if it is cancelled.
struct InFlight(IntGauge);

impl InFlight {
    fn start(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
