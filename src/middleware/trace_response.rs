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
    if let Some(trace) = telemetry::current_trace()
        && let Ok(value) = HeaderValue::from_str(&trace.traceparent())
    {
        res.headers_mut().insert(TRACE_RESPONSE, value);
    }
    Ok(res)
}
