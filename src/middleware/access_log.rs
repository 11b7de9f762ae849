//! One log line per request (target `access`): method, path, route, status, latency and request
//! id. Probes and scrapes are logged at debug, so they do not drown the requests worth reading. A
//! 5xx also logs its cause under the same request id: the client only got an opaque message.

use std::time::Instant;

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};

use super::{RequestId, route};
use crate::metrics::UNMEASURED_ROUTES;

pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    // Whole microseconds: a float of full precision took longer to print than the rest of the line.
    let micros = started.elapsed().as_micros();
    let latency_ms = micros as f64 / 1000.0;
    let request_id = res
        .request()
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let request_id = request_id.as_str();
    let (req, status, route) = (res.request(), res.status(), route(&res));
    if status.is_server_error() {
        let cause = res
            .response()
            .error()
            .map(|error| error.to_string())
            .unwrap_or_default();
        log::error!(target: "access", request_id, cause = cause.as_str(); "{} {} failed", req.method(), req.path());
    }
    let level = if UNMEASURED_ROUTES.contains(&route.as_str()) {
        log::Level::Debug
    } else {
        log::Level::Info
    };
    log::log!(
        target: "access",
        level,
        request_id,
        method = req.method().as_str(),
        route = route.as_str(),
        status = status.as_u16(),
        latency_ms;
        "{} {} {} {}.{:03}ms", req.method(), req.path(), status.as_u16(), micros / 1000, micros % 1000
    );
    Ok(res)
}
