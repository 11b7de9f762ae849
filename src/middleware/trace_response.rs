//! W3C Trace Context's response header: the caller learns the trace its request is part of,
//! `traceresponse: 00-{trace id}-{span id}-{flags}`, flags `01` when the trace is sampled.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};

use crate::telemetry;

pub const TRACE_RESPONSE: HeaderName = HeaderName::from_static("traceresponse");

pub async fn trace_response(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    if let Some(trace) = telemetry::current_trace() {
        let flags = if trace.sampled { "01" } else { "00" };
        let value = format!("00-{}-{}-{flags}", trace.trace_id, trace.span_id);
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(TRACE_RESPONSE, value);
        }
    }
    Ok(res)
}
