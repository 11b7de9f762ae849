//! `/webhooks`: endpoints that receive the money events of the caller's accounts (every
//! account's, for an operator), signed the Standard Webhooks way, and what those events say.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bank_core::webhooks::{self, Event, EventType};
use chrono::{DateTime, Utc};
use entity::webhook_endpoint;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PageOf, holds::Hold, transactions::Transaction, transfers::TransferReceipt};
use crate::{
    error::{DatabaseFailed, EndpointNotFound, Invalid, Loc, failures},
    extract::{ApiJson, Authenticated, BodyRejected, CallerRejected, Pagination, schemas},
    routes::transactions::ListFailed,
    state::AppState,
    webhooks::signing,
};

/// The longest endpoint URL.
const MAX_URL_CHARS: usize = 2048;

failures! {
    /// What registering an endpoint can answer besides 201.
    pub enum RegisterFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        Database(DatabaseFailed),
    }
}

failures! {
    /// What a read or an enabling of one endpoint can answer besides 200.
    pub enum EndpointFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        NotFound(EndpointNotFound),
        Database(DatabaseFailed),
    }
}

/// An event an endpoint can ask for.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub enum EventName {
    /// `data` is the ledger row (`Transaction`).
    #[serde(rename = "transaction.posted")]
    TransactionPosted,
    /// `data` is the transfer's two rows (`TransferReceipt`).
    #[serde(rename = "transfer.made")]
    TransferMade,
    /// `data` is the hold as placed (`Hold`).
    #[serde(rename = "hold.created")]
    HoldCreated,
    #[serde(rename = "hold.captured")]
    HoldCaptured,
    #[serde(rename = "hold.voided")]
    HoldVoided,
    #[serde(rename = "hold.expired")]
    HoldExpired,
}

impl From<EventName> for EventType {
    fn from(name: EventName) -> Self {
        match name {
            EventName::TransactionPosted => Self::TransactionPosted,
            EventName::TransferMade => Self::TransferMade,
            EventName::HoldCreated => Self::HoldCreated,
            EventName::HoldCaptured => Self::HoldCaptured,
            EventName::HoldVoided => Self::HoldVoided,
            EventName::HoldExpired => Self::HoldExpired,
        }
    }
}

fn all_events() -> Vec<EventName> {
    vec![
        EventName::TransactionPosted,
        EventName::TransferMade,
        EventName::HoldCreated,
        EventName::HoldCaptured,
        EventName::HoldVoided,
        EventName::HoldExpired,
    ]
}

/// The body of `POST /webhooks`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"url": "https://example.com/hooks/bank", "events": ["transaction.posted", "hold.captured"]}))]
pub struct NewEndpoint {
    /// Where messages are POSTed: http or https, reaching a public address.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    /// The events to receive; every one when left out.
    #[serde(default = "all_events")]
    #[schema(min_items = 1, max_items = 6)]
    pub events: Vec<EventName>,
}

/// A registered endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://example.com/hooks/bank", "events": ["hold.captured", "transaction.posted"], "enabled": true, "failures": 0, "created_at": "2026-11-24T09:30:00.123456Z", "disabled_at": null}))]
pub struct Endpoint {
    #[schema(schema_with = schemas::row_id)]
    pub id: i64,
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    #[schema(value_type = Vec<EventName>, max_items = 6)]
    pub events: Vec<String>,
    /// `false` once its deliveries have failed, none succeeding, for `WEBHOOK_DISABLE_AFTER_SECS`
    /// (5 days unless configured); its messages wait until `POST /webhooks/{endpoint_id}/enable`.
    pub enabled: bool,
    /// Failed deliveries since the last one that succeeded.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub failures: i32,
    #[schema(schema_with = schemas::timestamp)]
    pub created_at: DateTime<Utc>,
    #[schema(schema_with = schemas::optional_timestamp)]
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<webhook_endpoint::Model> for Endpoint {
    fn from(model: webhook_endpoint::Model) -> Self {
        Self {
            id: model.id,
            url: model.url,
            events: model.events.split(',').map(str::to_owned).collect(),
            enabled: model.enabled,
            failures: model.failures,
            created_at: model.created_at,
            disabled_at: model.disabled_at,
        }
    }
}

/// A new endpoint, with the secret its messages are signed with: shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://example.com/hooks/bank", "events": ["hold.captured", "transaction.posted"], "enabled": true, "failures": 0, "created_at": "2026-11-24T09:30:00.123456Z", "disabled_at": null, "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}))]
pub struct RegisteredEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_` and the key, base64: verify each message's `webhook-signature` with it (any
    /// Standard Webhooks library). It is never shown again.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/=]+$", max_length = 64)]
    pub secret: String,
}

/// What every message's body is: the event's type, when it happened, and what it says.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
// One example per kind of `data`: a posting, a transfer, a hold placed, a hold captured (voided
// and expired holds look like the captured one, with their own `status` and no `captured`).
#[schema(examples(
    json!({"type": "transaction.posted", "timestamp": "2026-11-24T09:30:00.123Z", "data": {"id": 7, "acc_id": 1, "credit": 1000, "debit": 0, "balance_after": 1000, "created_at": "2026-11-24T09:30:00.123456Z"}}),
    json!({"type": "transfer.made", "timestamp": "2026-11-24T09:31:00.456Z", "data": {"from_transaction": {"id": 8, "acc_id": 1, "credit": 0, "debit": 250, "balance_after": 750, "created_at": "2026-11-24T09:31:00.456789Z"}, "to_transaction": {"id": 9, "acc_id": 2, "credit": 250, "debit": 0, "balance_after": 250, "created_at": "2026-11-24T09:31:00.456789Z"}}}),
    json!({"type": "hold.created", "timestamp": "2026-11-24T09:32:00.000Z", "data": {"id": 3, "from_acc_id": 1, "to_acc_id": 2, "amount": 500, "captured": null, "status": "pending", "expires_at": "2026-11-24T10:32:00Z", "created_at": "2026-11-24T09:32:00Z", "resolved_at": null}}),
    json!({"type": "hold.captured", "timestamp": "2026-11-24T09:40:00.000Z", "data": {"id": 3, "from_acc_id": 1, "to_acc_id": 2, "amount": 500, "captured": 300, "status": "captured", "expires_at": "2026-11-24T10:32:00Z", "created_at": "2026-11-24T09:32:00Z", "resolved_at": "2026-11-24T09:40:00Z"}}),
))]
pub struct WebhookMessage {
    #[serde(rename = "type")]
    pub event_type: EventName,
    #[schema(schema_with = schemas::timestamp)]
    pub timestamp: DateTime<Utc>,
    pub data: EventData,
}

/// `data` of a message, as the API answers the same thing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventData {
    Transaction(Transaction),
    Transfer(TransferReceipt),
    Hold(Hold),
}

/// An event's `data`, for the dispatcher.
pub fn render(event: &Event) -> serde_json::Value {
    let data = match event {
        Event::Posted(row) => serde_json::to_value(Transaction::from(row.clone())),
        Event::Transfer(debit, credit) => serde_json::to_value(TransferReceipt {
            from_transaction: debit.clone().into(),
            to_transaction: credit.clone().into(),
        }),
        Event::Hold(hold) => match Hold::try_from(hold.clone()) {
            Ok(hold) => serde_json::to_value(hold),
            Err(_) => Ok(serde_json::Value::Null),
        },
    };
    data.unwrap_or(serde_json::Value::Null)
}

/// Register a webhook endpoint
///
/// From now on, each money event of the caller's accounts (every account's, for an operator)
/// that `events` names is POSTed to `url` as a `WebhookMessage`, with the Standard Webhooks
/// headers `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body` under the returned `secret`). A message is written in the
/// same transaction as its change, and sent until the endpoint answers 2xx (again after 5 s,
/// then twice as long each time, or after its `Retry-After`): at least once, so use
/// `webhook-id` to drop duplicates. The URL must reach a public address.
#[utoipa::path(
    tag = "webhooks",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewEndpoint,
    responses(
        (status = 201, description = "The endpoint was registered; its secret is shown this once", body = RegisteredEndpoint),
        RegisterFailed,
    )
)]
#[post("/webhooks")]
pub async fn register_endpoint(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: ApiJson<NewEndpoint>,
) -> Result<HttpResponse, RegisterFailed> {
    let NewEndpoint { url, events } = body.0;
    let loc = Loc::BodyField("events");
    if events.is_empty() {
        return Err(Invalid::one(loc, "List should have at least 1 item", "too_short").into());
    }
    if events.len() > EventType::ALL.len() {
        let words = format!("List should have at most {} items", EventType::ALL.len());
        return Err(Invalid::one(loc, words, "too_long").into());
    }
    let too_long = || {
        let words = format!("String should have at most {MAX_URL_CHARS} characters");
        Invalid::one(Loc::BodyField("url"), words, "string_too_long")
    };
    if url.chars().count() > MAX_URL_CHARS {
        return Err(too_long().into());
    }
    let url = state
        .webhook_addresses
        .check(&url)
        .await
        .map_err(|refused| Invalid::one(Loc::BodyField("url"), refused.to_string(), "url"))?;
    // The URL as stored may be longer than as sent (an international name, spelt in ASCII).
    if url.as_str().chars().count() > MAX_URL_CHARS {
        return Err(too_long().into());
    }
    let new = webhooks::NewEndpoint {
        url: url.to_string(),
        events: events.into_iter().map(EventType::from).collect(),
        secret: signing::new_secret(),
    };
    let endpoint = webhooks::register(&state.db, caller.scope(), new)
        .await
        .map_err(DatabaseFailed::from)?;
    let secret = endpoint.secret.clone();
    Ok(HttpResponse::Created().json(RegisteredEndpoint {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// List webhook endpoints
///
/// The caller's endpoints (every one, for an operator), oldest first, a page at a time.
#[utoipa::path(
    tag = "webhooks",
    security(("OAuth2PasswordBearer" = [])),
    params(Pagination),
    responses(PageOf<Endpoint>, ListFailed)
)]
#[get("/webhooks")]
pub async fn list_endpoints(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, ListFailed> {
    let page = bank_core::ledger::Page::from(page);
    let endpoints = webhooks::endpoints(&state.db, caller.scope(), page)
        .await
        .map_err(DatabaseFailed::from)?;
    Ok(super::listed(
        &req,
        page.limit,
        endpoints.map(Endpoint::from),
    ))
}

/// Read a webhook endpoint
///
/// One of the caller's endpoints, with whether it is enabled and how many deliveries have failed
/// in a row. Its secret is not shown.
#[utoipa::path(
    tag = "webhooks",
    security(("OAuth2PasswordBearer" = [])),
    params(("endpoint_id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        EndpointFailed,
    )
)]
#[get("/webhooks/{endpoint_id}")]
pub async fn get_endpoint(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    endpoint_id: web::Path<i64>,
) -> Result<HttpResponse, EndpointFailed> {
    let endpoint = webhooks::endpoint(&state.db, caller.scope(), endpoint_id.into_inner())
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(EndpointNotFound)?;
    Ok(HttpResponse::Ok().json(Endpoint::from(endpoint)))
}

/// Enable a webhook endpoint
///
/// Sends to an endpoint again after it was disabled for failing, its failures forgotten; the
/// messages that waited meanwhile are sent first.
#[utoipa::path(
    tag = "webhooks",
    security(("OAuth2PasswordBearer" = [])),
    params(("endpoint_id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, enabled", body = Endpoint),
        EndpointFailed,
    )
)]
#[post("/webhooks/{endpoint_id}/enable")]
pub async fn enable_endpoint(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    endpoint_id: web::Path<i64>,
) -> Result<HttpResponse, EndpointFailed> {
    let endpoint = webhooks::enable(&state.db, caller.scope(), endpoint_id.into_inner())
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(EndpointNotFound)?;
    Ok(HttpResponse::Ok().json(Endpoint::from(endpoint)))
}
