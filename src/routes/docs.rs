//! The API's description (`/openapi.json`) and its readers: Swagger UI at `/docs`, ReDoc at `/redoc`.

use actix_web::{HttpResponse, get, http::header};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bank-api",
        description = "An observable banking API: accounts, a ledger of credits and debits, and \
atomic transfers between accounts. Money is always an integer number of minor units (cents). Errors \
use FastAPI's shapes: `{\"detail\": \"...\"}`, and for 422 a list of `{loc, msg, type}`. \
Prometheus metrics are at `/metrics`.",
    ),
    tags(
        (name = "accounts", description = "Open accounts and read them, their balance and their history"),
        (name = "transactions", description = "Credits and debits on one account"),
        (name = "transfers", description = "Money from one account to another, atomically"),
        (name = "operations", description = "Probes and metrics for operators"),
        (name = "diagnostics", description = "Routes that fail on purpose, for testing monitoring; off in production"),
    )
)]
pub struct ApiDoc;

/// `/` is for people: send them to the interactive docs.
#[get("/")]
pub async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}
