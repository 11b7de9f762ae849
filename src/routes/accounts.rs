//! `/accounts`: open accounts, read them, their balance and their history.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bank_core::{
    domain::{AccountId, Text},
    ledger,
};
use entity::account;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    PageOf,
    transactions::{ListFailed, Transaction},
};
use crate::{
    error::{AccountNotFound, DatabaseFailed, Invalid, Problems, failures},
    extract::{ApiJson, Authenticated, BodyRejected, CallerRejected, Pagination, schemas},
    state::AppState,
};

failures! {
    /// What opening an account can answer besides 201.
    pub enum OpenFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        Database(DatabaseFailed),
    }
}

failures! {
    /// What a read of one account, or its balance, can answer besides 200.
    pub enum AccountReadFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        NotFound(AccountNotFound),
        Database(DatabaseFailed),
    }
}

failures! {
    /// What a page of an account's ledger can answer besides 200.
    pub enum HistoryFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        NotFound(AccountNotFound),
        Database(DatabaseFailed),
    }
}

/// The body of `POST /accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"first_name": "Ada", "last_name": "Lovelace", "address": "12 St James's Square, London"}))]
pub struct NewAccount {
    #[schema(schema_with = schemas::account_text)]
    pub first_name: String,
    #[schema(schema_with = schemas::account_text)]
    pub last_name: String,
    #[schema(schema_with = schemas::account_text)]
    pub address: String,
}

impl NewAccount {
    fn parse(self) -> Result<ledger::NewAccount, Invalid> {
        let mut problems = Problems::default();
        let first_name = problems.check("first_name", Text::parse(&self.first_name));
        let last_name = problems.check("last_name", Text::parse(&self.last_name));
        let address = problems.check("address", Text::parse(&self.address));
        problems.finish(|| {
            Some(ledger::NewAccount {
                first_name: first_name?,
                last_name: last_name?,
                address: address?,
            })
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "first_name": "Ada", "last_name": "Lovelace", "address": "12 St James's Square, London", "balance": 0, "available": 0, "created_at": "2026-11-24T09:30:00.123456Z"}))]
pub struct Account {
    #[schema(schema_with = schemas::row_id)]
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub address: String,
    /// Current balance in minor units (cents). Never negative, except on an account upgraded
    /// overdrawn from the Python original, which may receive money but not pay out below zero.
    #[schema(schema_with = schemas::balance)]
    pub balance: i64,
    /// What may be spent: the balance less what pending holds reserve. Debits, transfers and new
    /// holds may not take it below zero.
    #[schema(schema_with = schemas::balance)]
    pub available: i64,
    #[schema(schema_with = schemas::timestamp)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<account::Model> for Account {
    fn from(model: account::Model) -> Self {
        Self {
            id: model.id,
            first_name: model.first_name,
            last_name: model.last_name,
            address: model.address,
            balance: model.balance,
            available: model.balance - model.held,
            created_at: model.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"account_id": 1, "balance": 12500, "available": 11500}))]
pub struct Balance {
    #[schema(schema_with = schemas::account_id)]
    pub account_id: i64,
    /// In minor units (cents).
    #[schema(schema_with = schemas::balance)]
    pub balance: i64,
    /// What may be spent: the balance less what pending holds reserve.
    #[schema(schema_with = schemas::balance)]
    pub available: i64,
}

/// Open an account
///
/// Opens an account with a zero balance. Names and address are trimmed, and must then meet the
/// schema's rules (length, no control characters).
#[utoipa::path(
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewAccount,
    responses(
        (status = 201, description = "The account was opened", body = Account),
        OpenFailed,
    )
)]
#[post("/accounts")]
pub async fn create_account(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: ApiJson<NewAccount>,
) -> Result<HttpResponse, OpenFailed> {
    let new = body.0.parse()?;
    let account = ledger::open_account(&state.db, caller.scope(), new)
        .await
        .map_err(DatabaseFailed::from)?;
    state.metrics.accounts_created.inc();
    Ok(HttpResponse::Created().json(Account::from(account)))
}

/// List accounts
///
/// Accounts in the order they were opened (by id), a page at a time.
#[utoipa::path(
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    params(Pagination),
    responses(PageOf<Account>, ListFailed)
)]
#[get("/accounts")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, ListFailed> {
    let page = ledger::Page::from(page);
    let accounts = ledger::accounts(&state.db, caller.scope(), page)
        .await
        .map_err(DatabaseFailed::from)?;
    Ok(super::listed(&req, page.limit, accounts.map(Account::from)))
}

/// Read an account
///
/// The account with its current balance.
#[utoipa::path(
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    params(("account_id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = Account),
        AccountReadFailed,
    )
)]
#[get("/accounts/{account_id}")]
pub async fn get_account(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    account_id: web::Path<AccountId>,
) -> Result<HttpResponse, AccountReadFailed> {
    let account = state
        .accounts
        .get(caller.scope(), account_id.into_inner())
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(AccountNotFound)?;
    Ok(HttpResponse::Ok().json(Account::from(account)))
}

/// Read an account's balance
///
/// The balance is stored on the account and changed in the same database transaction as each
/// ledger row, so this is one primary-key read however long the history is.
#[utoipa::path(
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    params(("account_id" = i64, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The current balance", body = Balance),
        AccountReadFailed,
    )
)]
#[get("/accounts/{account_id}/balance")]
pub async fn get_balance(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    account_id: web::Path<AccountId>,
) -> Result<HttpResponse, AccountReadFailed> {
    let account_id = account_id.into_inner();
    let (balance, held) = state
        .accounts
        .balance(caller.scope(), account_id)
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(AccountNotFound)?;
    Ok(HttpResponse::Ok().json(Balance {
        account_id: account_id.0,
        balance,
        available: balance - held,
    }))
}

/// List an account's transactions
///
/// The account's ledger rows, oldest first, a page at a time.
#[utoipa::path(
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    params(("account_id" = i64, Path, description = "The account's id"), Pagination),
    responses(PageOf<Transaction>, HistoryFailed)
)]
#[get("/accounts/{account_id}/transactions")]
pub async fn list_account_transactions(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    account_id: web::Path<AccountId>,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, HistoryFailed> {
    let page = ledger::Page::from(page);
    let rows =
        ledger::account_transactions(&state.db, caller.scope(), account_id.into_inner(), page)
            .await
            .map_err(DatabaseFailed::from)?
            .ok_or(AccountNotFound)?;
    Ok(super::listed(&req, page.limit, rows.map(Transaction::from)))
}
