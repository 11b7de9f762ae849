//! Routes for operators rather than customers: liveness, readiness, metrics, diagnostics.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::responses::AuthErrors;
use crate::{
    authentication::Caller,
    error::{ApiError, ErrorBody},
    metrics::exposition::Format,
    state::AppState,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ping": "pong"}))]
pub struct Pong {
    pub ping: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Status {
    pub status: String,
}

/// Ping
///
/// Answers `{"ping": "pong"}`, as the Python original did.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Pong", body = Pong)))]
#[get("/ping")]
pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(Pong {
        ping: "pong".into(),
    })
}

/// Liveness probe
///
/// 200 while the process serves HTTP, whatever the database's state: restart the process only if
/// this fails.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up", body = Status)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok".into(),
    })
}

/// Readiness probe
///
/// 200 when the database answers, 503 otherwise: take the instance out of the load balancer
/// while this fails.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Status, example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer", body = ErrorBody, example = json!({"detail": "Service temporarily unavailable"})),
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.db.ping().await.map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(Status {
        status: "ready".into(),
    }))
}

/// Prometheus metrics
///
/// The exposition text Prometheus scrapes: request counts and latencies by route template,
/// business counters, database and pool metrics, process metrics. Asked for OpenMetrics
/// (`Accept: application/openmetrics-text`, as Prometheus does), the latency histogram carries
/// the trace ids of sampled requests as exemplars.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format, or OpenMetrics when asked for", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, request: actix_web::HttpRequest) -> HttpResponse {
    let accept = request
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    match state.metrics.render(format) {
        Ok(text) => HttpResponse::Ok()
            .content_type(format.content_type())
            .body(text),
        Err(error) => {
            log::error!("cannot encode metrics: {error}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Always fail (diagnostics)
///
/// Answers an operator 500 on purpose, to exercise error-rate metrics, dashboards and alerts.
/// Served only with `DIAGNOSTICS_ROUTES=true`, and to operators only, so that nobody else can
/// spend the availability budget.
#[utoipa::path(
    tag = "diagnostics",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 500, description = "Always, for an operator", body = ErrorBody, example = json!({"detail": "Intentional error from the diagnostics route"})),
        (status = 403, description = "The caller is not an operator", body = ErrorBody, example = json!({"detail": "Only operators may call the diagnostics routes"})),
        AuthErrors,
    )
)]
#[get("/500")]
pub async fn fail(caller: Caller) -> Result<HttpResponse, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "Only operators may call the diagnostics routes",
        ));
    }
    Err(ApiError::Diagnostic)
}
