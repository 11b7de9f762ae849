//! Routes for operators rather than customers: liveness, readiness, metrics, diagnostics.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::{Diagnostic, Internal, NotReady, OperatorsOnly, failures},
    extract::{Authenticated, CallerRejected},
    metrics::exposition::Format,
    state::AppState,
};

failures! {
    /// What the diagnostics route answers besides its 500.
    pub enum DiagnosticAnswer {
        Caller(CallerRejected),
        Forbidden(OperatorsOnly),
        Failed(Diagnostic),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ping": "pong"}))]
pub struct Pong {
    #[schema(pattern = "^pong$", max_length = 4)]
    pub ping: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Status {
    #[schema(pattern = "^(ok|ready)$", max_length = 5)]
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
        NotReady,
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, NotReady> {
    state.db.ping().await.map_err(NotReady)?;
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
    responses(
        (status = 200, description = "Prometheus text exposition format, or OpenMetrics when asked for", content_type = "text/plain", body = String),
        Internal,
    )
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, Internal> {
    let accept = request
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    let text = state
        .metrics
        .render(format)
        .map_err(|error| Internal(Box::new(error)))?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(text))
}

/// Always fail (diagnostics)
///
/// Answers an operator 500 on purpose, to exercise error-rate metrics, dashboards and alerts.
/// Served only with `DIAGNOSTICS_ROUTES=true`, and to operators only, so that nobody else can
/// spend the availability budget.
#[utoipa::path(
    tag = "diagnostics",
    security(("OAuth2PasswordBearer" = [])),
    responses(DiagnosticAnswer)
)]
#[get("/500")]
pub async fn fail(Authenticated(caller): Authenticated) -> Result<HttpResponse, DiagnosticAnswer> {
    if !caller.is_operator() {
        return Err(OperatorsOnly.into());
    }
    Err(Diagnostic.into())
}
