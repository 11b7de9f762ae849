//! HTTP routes, one module per resource. Each handler carries its own OpenAPI description, and
//! each route's failures are an enum of its own (see `error`), so what it can answer and what the
//! document lists are one list. [`configure`] is the one list of routes: the server serves it and
//! `/openapi.json` describes it.

pub mod accounts;
pub mod batches;
pub mod docs;
pub mod fallback;
pub mod holds;
pub mod operations;
pub mod profiling;
pub mod transactions;
pub mod transfers;
pub mod users;
pub mod webhooks;

use std::{collections::BTreeMap, marker::PhantomData};

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, http::header};
use bank_core::{
    authentication::Caller,
    domain::IdempotencyKey,
    idempotency::{Claim, OwnedKey},
    ledger::{FromLedgerRows, Listed, Replay, Written},
};
use sea_orm::DbErr;
use serde::de::DeserializeOwned;
use utoipa::{
    IntoResponses, ToSchema,
    openapi::{
        ArrayBuilder, Content, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder,
        Type,
    },
};
use utoipa_actix_web::{scope, service_config::ServiceConfig};

use crate::{
    error::WriteFailed,
    extract::{IDEMPOTENT_REPLAYED, Pagination},
};

/// The routes a server has besides those every server has.
#[derive(Clone, Copy)]
pub struct Optional {
    /// `/metrics` on the API's port (not when `METRICS_ADDR` gives it a listener of its own).
    pub metrics: bool,
    /// `GET /500`.
    pub diagnostics: bool,
    /// `GET /debug/pprof/profile`.
    pub profiling: bool,
}

/// Every route of the API.
pub fn configure(config: &mut ServiceConfig, optional: Optional) {
    config
        .service(users::create_user)
        .service(users::create_token)
        .service(users::revoke_token)
        .service(accounts::create_account)
        .service(accounts::list_accounts)
        .service(accounts::get_account)
        .service(accounts::get_balance)
        .service(accounts::list_account_transactions)
        .service(transactions::create_transaction)
        .service(transactions::list_transactions)
        .service(transactions::get_transaction)
        .service(transfers::create_transfer)
        .service(holds::create_hold)
        .service(holds::list_holds)
        .service(holds::get_hold)
        .service(holds::capture_hold)
        .service(holds::void_hold)
        .service(webhooks::register_endpoint)
        .service(webhooks::list_endpoints)
        .service(webhooks::get_endpoint)
        .service(webhooks::enable_endpoint)
        .service(
            scope("/batches")
                .app_data(web::PayloadConfig::new(batches::BODY_LIMIT_BYTES))
                .service(batches::create_batch),
        )
        .service(operations::ping)
        .service(operations::health)
        .service(operations::ready);
    if optional.metrics {
        config.service(operations::metrics);
    }
    if optional.diagnostics {
        config.service(operations::fail);
    }
    if optional.profiling {
        config.service(profiling::profile);
    }
}

/// 200 with a page of a list; when the list goes on, an RFC 8288 `Link` to the next page, so a
/// client that expects every row (as the Python original's did) can tell it has only some.
fn listed<T: serde::Serialize>(req: &HttpRequest, limit: u64, page: Listed<T>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(after_id) = page.next_after_id {
        let next = format!(
            "<{}?after_id={after_id}&limit={limit}>; rel=\"next\"",
            req.path()
        );
        response.insert_header((header::LINK, next));
    }
    response.json(page.rows)
}

/// The key a write is claimed under, among `caller`'s own keys, for `operation` with `body`.
fn claim(
    caller: &Caller,
    key: Option<IdempotencyKey>,
    operation: &str,
    body: &impl serde::Serialize,
) -> Option<Claim> {
    let key = OwnedKey {
        owner: caller.user_id,
        key: key?,
    };
    Some(Claim::new(key, operation, body))
}

/// A write's answer, rebuilt from its ledger rows (or, for a key stored before keys named their
/// write, the answer stored with it), and whether it is a replay.
fn answer<T: FromLedgerRows + DeserializeOwned>(
    written: Written,
) -> Result<(T, bool), WriteFailed> {
    let unreadable = |what: &str| WriteFailed::Broken(DbErr::Custom(format!("{what} of a write")));
    Ok(match written {
        Written::Applied(rows) => (
            T::from_ledger_rows(rows).ok_or_else(|| unreadable("rows"))?,
            false,
        ),
        Written::Replayed(Replay::Rows(rows)) => (
            T::from_ledger_rows(rows).ok_or_else(|| unreadable("rows"))?,
            true,
        ),
        Written::Replayed(Replay::Stored(body)) => (
            serde_json::from_str(&body).map_err(|_| unreadable("the stored answer"))?,
            true,
        ),
    })
}

/// 201 with the written (or replayed) value; a replay is marked so clients can tell.
fn created<T: serde::Serialize>(value: T, replayed: bool) -> HttpResponse {
    replied(HttpResponse::Created(), value, replayed)
}

/// 200 with what a write changed (or replayed), marked like [`created`].
fn resolved<T: serde::Serialize>(value: T, replayed: bool) -> HttpResponse {
    replied(HttpResponse::Ok(), value, replayed)
}

fn replied<T: serde::Serialize>(
    mut response: actix_web::HttpResponseBuilder,
    value: T,
    replayed: bool,
) -> HttpResponse {
    if replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    response.json(value)
}

/// 200 with a page of `T`s and, when the list goes on, the link to the next page.
pub struct PageOf<T>(PhantomData<T>);

impl<T: ToSchema> IntoResponses for PageOf<T> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let rows = ArrayBuilder::new()
            .items(Ref::from_schema_name(T::name()))
            .max_items(Some(Pagination::MAX_LIMIT as usize));
        // A path of a few ids, two numbers and `rel="next"`: well under this.
        let link = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(512));
        let link = HeaderBuilder::new()
            .schema(Some(link))
            .description(Some(
                "Present when the list goes on: the URL of the next page, this path with \
                 `after_id` (the last id of this page) and `limit`, as \
                 `<...?after_id=100&limit=100>; rel=\"next\"` (RFC 8288)",
            ))
            .build();
        let response = ResponseBuilder::new()
            .description(format!("A page of {}s, by id", T::name().to_lowercase()))
            .header("Link", link)
            .content("application/json", Content::new(Some(rows)));
        BTreeMap::from([("200".to_owned(), response.into())])
    }
}
