//! `/transactions`: credits and debits on one account, and the ledger they leave.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bank_core::{
    authentication::Caller,
    domain::{AccountId, IdempotencyKey, MAX_AMOUNT},
    idempotency::WriteError,
    ledger::{self, LedgerError, Movement, PostingPart, Write},
};
use entity::transaction;
use serde::{Deserialize, Serialize};
use utoipa::{
    Modify, ToSchema,
    openapi::{
        AllOfBuilder, KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type,
        schema::AnyOfBuilder,
    },
};

use super::PageOf;
use crate::{
    error::{
        AccountNotFound, DatabaseFailed, Invalid, KeyReused, MoneyRefused, TransactionNotFound,
        WriteFailed, failures,
    },
    extract::{
        ApiJson, Authenticated, BodyRejected, CallerRejected, IdempotencyKeyHeader, Pagination,
        schemas,
    },
    state::AppState,
    telemetry,
};

failures! {
    /// What a write of money (`POST /transactions`, `POST /transfers`) can answer besides 201.
    pub enum MoneyWriteFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        KeyReused(KeyReused),
        NotFound(AccountNotFound),
        Refused(MoneyRefused),
        Failed(WriteFailed),
    }
}

impl From<LedgerError> for MoneyWriteFailed {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::AccountNotFound => AccountNotFound.into(),
            LedgerError::InsufficientFunds => MoneyRefused::InsufficientFunds.into(),
            LedgerError::BalanceLimitExceeded => MoneyRefused::BalanceLimitExceeded.into(),
            LedgerError::Database(error) => WriteFailed::from(error).into(),
        }
    }
}

/// A 503 only for a write that was certainly not applied; a 500 with instructions for one whose
/// outcome is unknown.
impl<R: Into<Self>> From<WriteError<R>> for MoneyWriteFailed {
    fn from(error: WriteError<R>) -> Self {
        match error {
            WriteError::KeyReused => KeyReused.into(),
            WriteError::Ledger(error) => error.into(),
            WriteError::NotApplied(cause) => WriteFailed::NotApplied(cause).into(),
            WriteError::OutcomeUnknown(cause) => WriteFailed::OutcomeUnknown(cause).into(),
        }
    }
}

failures! {
    /// What a list of accounts or ledger rows can answer besides 200.
    pub enum ListFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        Database(DatabaseFailed),
    }
}

failures! {
    /// What a read of one ledger row can answer besides 200.
    pub enum TransactionReadFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        NotFound(TransactionNotFound),
        Database(DatabaseFailed),
    }
}

/// The body of `POST /transactions`. Amounts are integers in minor units (cents): floats,
/// strings and booleans are refused, not coerced.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"acc_id": 1, "credit": 2500, "debit": 0}))]
pub struct NewTransaction {
    /// The account to post to.
    #[schema(schema_with = schemas::account_ref)]
    pub acc_id: i64,
    #[serde(default)]
    #[schema(schema_with = schemas::credit)]
    pub credit: i64,
    #[serde(default)]
    #[schema(schema_with = schemas::debit)]
    pub debit: i64,
}

/// Writes "credit and debit are not both zero" into the schemas of a posting (`NewTransaction`,
/// and a batch's posting item) as `anyOf`: one of them is at least 1, so generated clients and API
/// fuzzers know the rule, not only the prose.
pub struct PostingNeedsAnAmount;

impl Modify for PostingNeedsAnAmount {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(schema) = components.schemas.get_mut("NewTransaction") {
            needs_an_amount(schema);
        }
        if let Some(RefOr::T(Schema::OneOf(items))) = components.schemas.get_mut("BatchItem")
            && let Some(posting) = items.items.first_mut()
        {
            needs_an_amount(posting);
        }
    }
}

fn needs_an_amount(schema: &mut RefOr<Schema>) {
    let at_least_one = |field: &str| {
        let positive = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_AMOUNT));
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

/// One ledger row.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 7, "acc_id": 1, "credit": 2500, "debit": 0, "balance_after": 12500, "created_at": "2026-11-24T09:31:00.654321Z"}))]
pub struct Transaction {
    #[schema(schema_with = schemas::row_id)]
    pub id: i64,
    #[schema(schema_with = schemas::account_id)]
    pub acc_id: i64,
    /// Money in, minor units.
    #[schema(schema_with = schemas::row_amount)]
    pub credit: i64,
    /// Money out, minor units.
    #[schema(schema_with = schemas::row_amount)]
    pub debit: i64,
    /// The account's balance right after this row, minor units.
    #[schema(schema_with = schemas::balance)]
    pub balance_after: i64,
    #[schema(schema_with = schemas::timestamp)]
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

impl NewTransaction {
    pub const OPERATION: &str = "POST /transactions";

    /// The write this body asks for, on behalf of `caller`, claimed under `key` if one is given.
    pub fn write(&self, caller: &Caller, key: Option<IdempotencyKey>) -> Result<Write, Invalid> {
        let posting = ledger::Posting::new(AccountId(self.acc_id), self.credit, self.debit)
            .map_err(|invalid| Invalid::from_parts(invalid, Self::field))?;
        Ok(Write {
            movement: Movement::Post(posting),
            scope: caller.scope(),
            claim: super::claim(caller, key, Self::OPERATION, self),
            trace: telemetry::current_traceparent(),
        })
    }

    /// The body field each part of a posting comes from.
    fn field(part: PostingPart) -> Option<&'static str> {
        match part {
            PostingPart::Credit => Some("credit"),
            PostingPart::Debit => Some("debit"),
            PostingPart::Whole => None,
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
        MoneyWriteFailed,
    )
)]
#[post("/transactions")]
pub async fn create_transaction(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    key: IdempotencyKeyHeader,
    body: ApiJson<NewTransaction>,
) -> Result<HttpResponse, MoneyWriteFailed> {
    let write = body.0.write(&caller, key.0)?;
    let movement = write.movement;
    let (row, replayed): (Transaction, _) = super::answer(state.ledger.write(write).await?)?;
    if !replayed {
        state.metrics.record_movement(&movement);
    }
    Ok(super::created(row, replayed))
}

/// List transactions
///
/// Every ledger row of every account, oldest first, a page at a time.
#[utoipa::path(
    tag = "transactions",
    security(("OAuth2PasswordBearer" = [])),
    params(Pagination),
    responses(PageOf<Transaction>, ListFailed)
)]
#[get("/transactions")]
pub async fn list_transactions(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, ListFailed> {
    let page = ledger::Page::from(page);
    let rows = ledger::transactions(&state.db, caller.scope(), page)
        .await
        .map_err(DatabaseFailed::from)?;
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
        TransactionReadFailed,
    )
)]
#[get("/transactions/{transaction_id}")]
pub async fn get_transaction(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    transaction_id: web::Path<i64>,
) -> Result<HttpResponse, TransactionReadFailed> {
    let row = ledger::transaction(&state.db, caller.scope(), transaction_id.into_inner())
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(TransactionNotFound)?;
    Ok(HttpResponse::Ok().json(Transaction::from(row)))
}
