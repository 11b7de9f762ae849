//! The money rules. Every balance change happens here, as one conditional `UPDATE ... RETURNING`
//! inside the caller's database transaction, next to the ledger row that explains it: the check and
//! the write are one statement, so concurrent requests can never overdraw, on SQLite or Postgres.

use chrono::{SubsecRound, Utc};
use entity::{account, transaction};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::Expr,
};

use crate::{
    domain::{Amount, MAX_BALANCE, Text},
    error::ApiError,
};

const ACCOUNT_NOT_FOUND: ApiError = ApiError::NotFound("Account not found");

pub struct NewAccount {
    pub first_name: Text,
    pub last_name: Text,
    pub address: Text,
}

/// Money into and out of one account. At least one side is non-zero.
pub struct Posting {
    pub acc_id: i64,
    pub credit: Amount,
    pub debit: Amount,
}

pub struct Transfer {
    pub from_acc_id: i64,
    pub to_acc_id: i64,
    pub amount: Amount,
}

/// A window into a list ordered by id.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub skip: u64,
    pub limit: u64,
}

pub async fn open_account(
    db: &impl ConnectionTrait,
    new: NewAccount,
) -> Result<account::Model, ApiError> {
    let account = account::ActiveModel {
        first_name: Set(new.first_name.into_inner()),
        last_name: Set(new.last_name.into_inner()),
        address: Set(new.address.into_inner()),
        balance: Set(0),
        created_at: Set(now()),
        ..Default::default()
    };
    Ok(account.insert(db).await?)
}

pub async fn post(
    db: &impl ConnectionTrait,
    posting: &Posting,
) -> Result<transaction::Model, ApiError> {
    let delta = posting.credit.minor_units() - posting.debit.minor_units();
    let balance_after = change_balance(db, posting.acc_id, delta).await?;
    record(
        db,
        posting.acc_id,
        posting.credit,
        posting.debit,
        balance_after,
    )
    .await
}

/// Moves money between two accounts; returns the sender's ledger row, then the receiver's.
pub async fn transfer(
    db: &impl ConnectionTrait,
    transfer: &Transfer,
) -> Result<(transaction::Model, transaction::Model), ApiError> {
    let amount = transfer.amount.minor_units();
    let (from, to) = (transfer.from_acc_id, transfer.to_acc_id);
    // Rows are locked in id order, so two opposite transfers cannot deadlock on Postgres.
    let (from_balance, to_balance) = if from < to {
        let from_balance = change_balance(db, from, -amount).await?;
        (from_balance, change_balance(db, to, amount).await?)
    } else {
        let to_balance = change_balance(db, to, amount).await?;
        (change_balance(db, from, -amount).await?, to_balance)
    };
    let debit = record(db, from, Amount::ZERO, transfer.amount, from_balance).await?;
    let credit = record(db, to, transfer.amount, Amount::ZERO, to_balance).await?;
    Ok((debit, credit))
}

pub async fn account(db: &impl ConnectionTrait, id: i64) -> Result<account::Model, ApiError> {
    account::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ACCOUNT_NOT_FOUND)
}

pub async fn accounts(
    db: &impl ConnectionTrait,
    page: Page,
) -> Result<Vec<account::Model>, ApiError> {
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Id)
        .offset(page.skip)
        .limit(page.limit)
        .all(db)
        .await?)
}

/// The stored balance: one primary-key read, however long the account's history.
pub async fn balance(db: &impl ConnectionTrait, id: i64) -> Result<i64, ApiError> {
    account::Entity::find_by_id(id)
        .select_only()
        .column(account::Column::Balance)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or(ACCOUNT_NOT_FOUND)
}

pub async fn transaction(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<transaction::Model, ApiError> {
    transaction::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("Transaction not found"))
}

pub async fn transactions(
    db: &impl ConnectionTrait,
    page: Page,
) -> Result<Vec<transaction::Model>, ApiError> {
    Ok(transaction::Entity::find()
        .order_by_asc(transaction::Column::Id)
        .offset(page.skip)
        .limit(page.limit)
        .all(db)
        .await?)
}

pub async fn account_transactions(
    db: &impl ConnectionTrait,
    acc_id: i64,
    page: Page,
) -> Result<Vec<transaction::Model>, ApiError> {
    // `acc_id = $1 ORDER BY id` lets Postgres walk the primary key and filter, which it picks
    // when one account holds most rows; if they are all recent, it reads the whole older ledger
    // first (76 ms instead of 0.2 ms at a million rows). Asked as a range of the (acc_id, id)
    // index, ordered by that index's key, the query can only be answered by that index.
    let rows = transaction::Entity::find()
        .filter(transaction::Column::AccId.gte(acc_id))
        .filter(transaction::Column::AccId.lte(acc_id))
        .order_by_asc(transaction::Column::AccId)
        .order_by_asc(transaction::Column::Id)
        .offset(page.skip)
        .limit(page.limit)
        .all(db)
        .await?;
    // An empty page of an unknown account is a 404, not an empty list.
    if rows.is_empty() {
        account(db, acc_id).await?;
    }
    Ok(rows)
}

/// Adds `delta` to the balance if the result stays within 0..=MAX_BALANCE, in one statement;
/// returns the new balance.
async fn change_balance(
    db: &impl ConnectionTrait,
    acc_id: i64,
    delta: i64,
) -> Result<i64, ApiError> {
    let new_balance = Expr::col(account::Column::Balance).add(delta);
    let updated = account::Entity::update_many()
        .col_expr(account::Column::Balance, new_balance.clone())
        .filter(account::Column::Id.eq(acc_id))
        .filter(new_balance.clone().gte(0))
        .filter(new_balance.lte(MAX_BALANCE))
        .exec_with_returning(db)
        .await?;
    if let Some(account) = updated.first() {
        return Ok(account.balance);
    }
    let current = balance(db, acc_id).await?;
    Err(if current + delta < 0 {
        ApiError::InsufficientFunds
    } else {
        ApiError::BalanceLimitExceeded
    })
}

async fn record(
    db: &impl ConnectionTrait,
    acc_id: i64,
    credit: Amount,
    debit: Amount,
    balance_after: i64,
) -> Result<transaction::Model, ApiError> {
    let row = transaction::ActiveModel {
        acc_id: Set(acc_id),
        credit: Set(credit.minor_units()),
        debit: Set(debit.minor_units()),
        balance_after: Set(balance_after),
        created_at: Set(now()),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}

/// Microseconds are what Postgres stores; truncating here makes every backend return what it was given.
fn now() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
