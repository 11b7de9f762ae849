//! HTTP routes, one module per resource. Each handler carries its own OpenAPI description, and
//! [`configure`] is the one list of them: the server serves it and `/openapi.json` describes it.

pub mod accounts;
pub mod docs;
pub mod fallback;
pub mod operations;
pub mod responses;
pub mod transactions;
pub mod transfers;
pub mod users;

use utoipa_actix_web::service_config::ServiceConfig;

/// The routes a server has besides those every server has.
#[derive(Clone, Copy)]
pub struct Optional {
    /// `/metrics` on the API's port (not when `METRICS_ADDR` gives it a listener of its own).
    pub metrics: bool,
    /// `GET /500`.
    pub diagnostics: bool,
}

/// Every route of the API.
pub fn configure(config: &mut ServiceConfig, optional: Optional) {
    config
        .service(users::create_user)
        .service(users::create_token)
        .service(accounts::create_account)
        .service(accounts::list_accounts)
        .service(accounts::get_account)
        .service(accounts::get_balance)
        .service(accounts::list_account_transactions)
        .service(transactions::create_transaction)
        .service(transactions::list_transactions)
        .service(transactions::get_transaction)
        .service(transfers::create_transfer)
        .service(operations::ping)
        .service(operations::health)
        .service(operations::ready);
    if optional.metrics {
        config.service(operations::metrics);
    }
    if optional.diagnostics {
        config.service(operations::fail);
    }
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
