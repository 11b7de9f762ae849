//! HTTP routes, one module per resource. Each handler carries its own OpenAPI description.

pub mod accounts;
pub mod docs;
pub mod operations;
pub mod transactions;
pub mod transfers;

use sea_orm::DatabaseConnection;
use utoipa::IntoResponses;

use crate::{error::ErrorBody, metrics::Metrics};

/// What every handler can reach.
pub struct AppState {
    pub db: DatabaseConnection,
    pub metrics: Metrics,
}

/// Responses any route that reads or writes the database can give.
#[derive(IntoResponses)]
pub enum DatabaseErrors {
    /// The database could not be reached in time; retry later.
    #[response(status = 503, example = json!({"detail": "Service temporarily unavailable"}))]
    Unavailable(ErrorBody),
}

/// 200 with a page of a list; when the list goes on, an RFC 8288 `Link` to the next page, so a
/// client that expects every row (as the Python original's did) can tell it has only some.
fn listed<T: serde::Serialize>(
    req: &actix_web::HttpRequest,
    limit: u64,
    page: crate::ledger::Listed<T>,
) -> actix_web::HttpResponse {
    let mut response = actix_web::HttpResponse::Ok();
    if let Some(after_id) = page.next_after_id {
        let next = format!(
            "<{}?after_id={after_id}&limit={limit}>; rel=\"next\"",
            req.path()
        );
        response.insert_header((actix_web::http::header::LINK, next));
    }
    response.json(page.rows)
}

/// 201 with the written (or replayed) value; a replay is marked so clients can tell.
fn created<T: serde::Serialize>(
    outcome: crate::idempotency::Outcome<T>,
) -> actix_web::HttpResponse {
    let mut response = actix_web::HttpResponse::Created();
    if outcome.replayed {
        response.insert_header((crate::idempotency::REPLAYED_HEADER, "true"));
    }
    response.json(outcome.value)
}
