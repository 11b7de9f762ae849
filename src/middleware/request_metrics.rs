//! A request in the metrics: `http_requests_in_flight` while it is served, then its latency in
//! `http_requests_duration_seconds` (the trace id as exemplar, when the trace is sampled), and, if
//! the client or the money rules caused its refusal, `bank_rejections_total` by reason.
//! `http_requests_total` is counted by actix-web-prom, outside. Probes and scrapes are left out.

use std::time::Instant;

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web::Data,
};
use prometheus::IntGauge;

use super::route;
use crate::{
    error::Rejected,
    metrics::{RequestLabels, UNMEASURED_ROUTES},
    state::AppState,
    telemetry,
};

pub async fn request_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let metrics = &state.metrics;
    let in_flight = InFlight::start(&metrics.requests_in_flight);
    let res = next.call(req).await?;
    drop(in_flight);
    let refusal = res.response().extensions().get::<Rejected>().copied();
    if let Some(Rejected(reason)) = refusal {
        metrics.rejections.with_label_values(&[reason]).inc();
    }
    let route = route(&res);
    if UNMEASURED_ROUTES.contains(&route.as_str()) {
        return Ok(res);
    }
    let labels = RequestLabels {
        endpoint: route,
        method: res.request().method().to_string(),
        status: res.status().as_u16(),
    };
    let exemplar = telemetry::current_trace()
        .filter(|trace| trace.sampled)
        .map(|trace| trace.trace_id.to_string());
    metrics.observe_request(&labels, started.elapsed().as_secs_f64(), exemplar);
    Ok(res)
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
