//! `/transactions`: credits and debits on one account, and the ledger they leave.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use entity::transaction;
use serde::{Deserialize, Serialize};
use utoipa::{
    Modify, ToSchema,
    openapi::{AllOfBuilder, ObjectBuilder, RefOr, Schema, Type, schema::AnyOfBuilder},
};

use super::responses::{
    AccountNotFound, AuthErrors, BodyErrors, DatabaseErrors, Invalid, MoneyRefused, PageOf,
    TransactionNotFound, WriteErrors,
};
use crate::{
    authentication::Caller,
    domain::AccountId,
    error::ApiError,
    extract::{ApiJson, IdempotencyKeyHeader, Pagination, schemas},
    idempotency, ledger,
    state::AppState,
};

/// The body of `POST /transactions`. Amounts are integers in minor units (cents): floats,
/// strings and booleans are refused, not coerced.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"acc_id": 1, "credit": 2500, "debit": 0}))]
pub struct NewTransaction {
    /// The account to post to.
    pub acc_id: i64,
    #[serde(default)]
    #[schema(schema_with = schemas::credit)]
    pub credit: i64,
    #[serde(default)]
    #[schema(schema_with = schemas::debit)]
    pub debit: i64,
}

/// Writes "credit and debit are not both zero" into the `NewTransaction` schema (as `anyOf`: one
/// of them is at least 1), so generated clients and API fuzzers know the rule, not only the prose.
pub struct PostingNeedsAnAmount;

impl Modify for PostingNeedsAnAmount {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(schema) = openapi
            .components
            .as_mut()
            .and_then(|components| components.schemas.get_mut("NewTransaction"))
        else {
            return;
        };
        let at_least_one = |field: &str| {
            let positive = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1));
            ObjectBuilder::new()
                .property(field, positive)
                .required(field)
                .build()
        };
        let examples = match schema {
            RefOr::T(Schema::Object(object)) => object.example.clone(),
            _ => None,
        };
        let rule = AnyOfBuilder::new()
            .item(at_least_one("credit"))
            .item(at_least_one("debit"));
        *schema = AllOfBuilder::new()
            .item(schema.clone())
            .item(rule)
            .examples(examples)
            .into();
    }
}

/// One ledger row.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 7, "acc_id": 1, "credit": 2500, "debit": 0, "balance_after": 12500, "created_at": "2026-11-24T09:31:00.654321Z"}))]
pub struct Transaction {
    pub id: i64,
    pub acc_id: i64,
    /// Money in, minor units.
    pub credit: i64,
    /// Money out, minor units.
    pub debit: i64,
    /// The account's balance right after this row, minor units.
    pub balance_after: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<transaction::Model> for Transaction {
    fn from(model: transaction::Model) -> Self {
        Self {
            id: model.id,
            acc_id: model.acc_id,
            credit: model.credit,
            debit: model.debit,
            balance_after: model.balance_after,
            created_at: model.created_at,
        }
    }
}

impl ledger::FromLedgerRows for Transaction {
    fn from_ledger_rows(rows: Vec<transaction::Model>) -> Option<Self> {
        rows.into_iter().next().map(Self::from)
    }
}

/// Post a credit or debit
///
/// Adds `credit` to and takes `debit` from the account's balance, and records the ledger row, in
/// one atomic step. A debit that would take the balance below zero is refused with 409 and
/// nothing is written. Send an `Idempotency-Key` to make retries safe: a repeat with the same key
/// and body returns the original response (with `Idempotent-Replayed: true`) and writes nothing.
#[utoipa::path(
    tag = "transactions",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewTransaction,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "The posting was applied (or replayed)", body = Transaction),
        AccountNotFound,
        MoneyRefused,
        BodyErrors,
        AuthErrors,
        WriteErrors,
    )
)]
#[post("/transactions")]
pub async fn create_transaction(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKeyHeader,
    body: ApiJson<NewTransaction>,
) -> Result<HttpResponse, ApiError> {
    let new = &body.0;
    let posting = ledger::Posting::new(AccountId(new.acc_id), new.credit, new.debit)?;
    let outcome = idempotency::run(
        &state.db,
        caller.own(key),
        "POST /transactions",
        new,
        state.settle_within,
        async |txn, write_id| {
            ledger::post(txn, caller.scope(), &posting, write_id)
                .await
                .map(Transaction::from)
        },
    )
    .await?;
    if !outcome.replayed {
        state
            .metrics
            .record_posting(posting.credit.minor_units(), posting.debit.minor_units());
    }
    Ok(super::created(outcome))
}

/// List transactions
///
/// Every ledger row of every account, oldest first, a page at a time.
#[utoipa::path(
    tag = "transactions",
    security(("OAuth2PasswordBearer" = [])),
    params(Pagination),
    responses(
        PageOf<Transaction>,
        Invalid,
        AuthErrors,
        DatabaseErrors,
    )
)]
#[get("/transactions")]
pub async fn list_transactions(
    state: web::Data<AppState>,
    caller: Caller,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = ledger::Page::from(page);
    let rows = ledger::transactions(&state.db, caller.scope(), page).await?;
    Ok(super::listed(&req, page.limit, rows.map(Transaction::from)))
}

/// Read a transaction
///
/// One ledger row, with the balance it left on its account.
#[utoipa::path(
    tag = "transactions",
    security(("OAuth2PasswordBearer" = [])),
    params(("transaction_id" = i64, Path, description = "The ledger row's id")),
    responses(
        (status = 200, description = "The ledger row", body = Transaction),
        TransactionNotFound,
        Invalid,
        AuthErrors,
        DatabaseErrors,
    )
)]
#[get("/transactions/{transaction_id}")]
pub async fn get_transaction(
    state: web::Data<AppState>,
    caller: Caller,
    transaction_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = ledger::transaction(&state.db, caller.scope(), transaction_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Transaction::from(row)))
}
