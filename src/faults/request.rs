//! The route flags on the request path: latency, failures and CPU, before the route runs and
//! inside the request's span, so that its duration, the latency histogram, the access log and a
//! 5xx's cause show them as they would show a slow or failing dependency.

use std::time::{Duration, Instant};

use actix_web::{
    Error,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web::Data,
};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use crate::{error::Internal, state::AppState};

/// The spread of the added latency: with this σ, p99 is about 3.2 times the median.
const LATENCY_SIGMA: f64 = 0.5;

pub async fn inject(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let faults = req
        .app_data::<Data<AppState>>()
        .and_then(|state| state.faults.of_route(&req));
    if let Some(faults) = faults {
        if !faults.latency.is_zero() {
            tokio::time::sleep(latency(faults.latency)).await;
        }
        if !faults.cpu.is_zero() {
            checksum_rounds(faults.cpu);
        }
        if faults.failing > 0.0 && rand::rng().random_bool(faults.failing) {
            // Answered here, as a handler's error is, so the middleware outside see a 500 with
            // its cause, not an error of the server.
            let cause = std::io::Error::other("the request's handler failed");
            let failed = req.error_response(Internal(Box::new(cause)));
            return Ok(failed.map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A latency drawn around `median`, with a tail as real ones have.
fn latency(median: Duration) -> Duration {
    let spread = LogNormal::new(median.as_secs_f64().ln(), LATENCY_SIGMA)
        .map_or(median.as_secs_f64(), |spread| {
            spread.sample(&mut rand::rng())
        });
    Duration::from_secs_f64(spread)
}

/// Burns `cpu` of this worker's time, as a costly computation would; its name is what a CPU
/// profile shows on top.
#[inline(never)]
fn checksum_rounds(cpu: Duration) -> u64 {
    let started = Instant::now();
    let mut sum = 0u64;
    while started.elapsed() < cpu {
        for round in 0..10_000u64 {
            sum = std::hint::black_box(sum.rotate_left(5) ^ round).wrapping_mul(0x9e37_79b9);
        }
    }
    sum
}
