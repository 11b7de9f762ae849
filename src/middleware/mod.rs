//! The middleware of our own that every request passes, one job each. `startup.rs` wraps them, with
//! actix-web's own (`NormalizePath`, `ErrorHandlers`), actix-web-prom and the tracing span, in the
//! order a request meets them.
//!
//! - `request_id`: decides the request's id, puts it on the span and echoes it as `X-Request-Id`.
//! - `trace_response`: says which trace and span served the request (`traceresponse`).
//! - `access_log`: one line per request; for a 5xx, its cause, under the same request id.
//! - `request_metrics`: the latency histogram (with the trace as exemplar), the in-flight gauge
//!   and the count of refused requests.
//! - `json_errors`: the `{"detail": ...}` body for errors made outside our handlers.
//! - `rate_limit`: each client's share of requests, told in `RateLimit` fields; 429 beyond it.
//! - `security_headers`: what a browser may do with an answer (no sniffing, no framing, the
//!   docs pages' Content-Security-Policy).

mod access_log;
mod json_errors;
mod rate_limit;
mod request_id;
mod request_metrics;
mod security_headers;
mod trace_response;

pub use access_log::access_log;
pub use json_errors::json_detail;
pub use rate_limit::{RateLimits, UNLIMITED_PATHS, rate_limit};
pub use request_id::{REQUEST_ID, RequestId, request_id};
pub use request_metrics::request_metrics;
pub use security_headers::{DATA_POLICY, DOCS_POLICY, security_headers};
pub use trace_response::{TRACE_RESPONSE, trace_response};

use actix_web::dev::ServiceResponse;

use crate::metrics::UNMATCHED_ROUTE;

/// The route template that answered (`/accounts/{account_id}`), or one label for every path no
/// route matched, so that a scan cannot grow the label sets.
fn route<B>(res: &ServiceResponse<B>) -> String {
    res.request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.into())
}
