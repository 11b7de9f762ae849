//! The money rules. Every balance change happens here, as one conditional `UPDATE ... RETURNING`
//! next to the ledger row that explains it, atomically: the check and the write are one statement,
//! so concurrent requests can never overdraw, on SQLite or Postgres.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use entity::{account, ledger_write, transaction};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseExecutor,
    DatabaseTransaction, DbBackend, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select, Set, Statement, TransactionTrait, TryInsertResult,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use crate::{
    domain::{Amount, MAX_BALANCE, Text},
    error::ApiError,
};

const ACCOUNT_NOT_FOUND: ApiError = ApiError::NotFound("Account not found");

/// Whose accounts a request may read and move money from: everyone's (an operator), or one
/// customer's. It is applied inside each query, so another customer's account or ledger row is
/// simply not found: the same 404 as a missing one, with no way to tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    OwnedBy(i64),
}

impl Scope {
    fn owner(self) -> Option<i64> {
        match self {
            Self::All => None,
            Self::OwnedBy(user_id) => Some(user_id),
        }
    }

    /// `query` on accounts, limited to this scope.
    fn accounts<Q: QueryFilter>(self, query: Q) -> Q {
        match self.owner() {
            Some(user_id) => query.filter(account::Column::OwnerId.eq(user_id)),
            None => query,
        }
    }

    /// `query` on ledger rows, limited to the rows of accounts in this scope.
    fn ledger<Q: QueryFilter>(self, query: Q) -> Q {
        match self.owner() {
            Some(user_id) => query.filter(
                transaction::Column::AccId.in_subquery(
                    Query::select()
                        .column(account::Column::Id)
                        .from(account::Entity)
                        .and_where(account::Column::OwnerId.eq(user_id))
                        .to_owned(),
                ),
            ),
            None => query,
        }
    }
}

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

impl Posting {
    fn delta(&self) -> i64 {
        self.credit.minor_units() - self.debit.minor_units()
    }
}

pub struct Transfer {
    pub from_acc_id: i64,
    pub to_acc_id: i64,
    pub amount: Amount,
}

/// A window into a list ordered by id.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Only rows with a greater id.
    pub after_id: Option<i64>,
    pub skip: u64,
    pub limit: u64,
}

/// A page of a list, and where the next one starts if there is more.
pub struct Listed<T> {
    pub rows: Vec<T>,
    /// The `after_id` of the next page; `None` on the last page.
    pub next_after_id: Option<i64>,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            rows: self.rows.into_iter().map(f).collect(),
            next_after_id: self.next_after_id,
        }
    }
}

impl Page {
    /// This window of `rows`, a query ordered by `id`, and one row more to tell whether the list
    /// goes on.
    fn of<E: EntityTrait>(self, rows: Select<E>, id: E::Column) -> Select<E> {
        rows.apply_if(self.after_id, |rows, after| rows.filter(id.gt(after)))
            .offset(self.skip)
            .limit(self.limit + 1)
    }

    fn listed<T>(self, mut rows: Vec<T>, id: impl Fn(&T) -> i64) -> Listed<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_after_id = more.then(|| rows.last().map(id)).flatten();
        Listed {
            rows,
            next_after_id,
        }
    }
}

/// The account belongs to the customer whose scope opens it; an operator's belongs to the operators.
pub async fn open_account(
    db: &impl ConnectionTrait,
    scope: Scope,
    new: NewAccount,
) -> Result<account::Model, ApiError> {
    let account = account::ActiveModel {
        owner_id: Set(scope.owner()),
        first_name: Set(new.first_name.into_inner()),
        last_name: Set(new.last_name.into_inner()),
        address: Set(new.address.into_inner()),
        balance: Set(0),
        created_at: Set(now()),
        ..Default::default()
    };
    Ok(account.insert(db).await?)
}

/// Applies a posting and records its ledger row, atomically: one statement on Postgres, a
/// transaction (or a savepoint in the caller's) elsewhere.
pub async fn post(
    db: &DatabaseExecutor<'_>,
    scope: Scope,
    posting: &Posting,
    write_id: Uuid,
) -> Result<transaction::Model, ApiError> {
    let applied = if db.get_database_backend() == DbBackend::Postgres {
        post_in_one_statement(db, scope, posting, write_id).await?
    } else {
        let txn = db.begin().await?;
        let applied = post_step_by_step(&txn, scope, posting, write_id).await?;
        commit_if_applied(txn, applied).await?
    };
    match applied {
        Some(row) => Ok(row),
        None => Err(posting_refused(db, scope, posting).await),
    }
}

/// Moves money between two accounts in one transaction (or a savepoint in the caller's); returns
/// the sender's ledger row, then the receiver's.
///
/// Unlike a posting, a transfer is not one statement on Postgres: with two conditional updates,
/// one statement cannot both lock the rows in a deadlock-free order and see each row's locked
/// balance in its checks (bench/RESULTS.md shows the attempt, which overdrew under load).
/// The sender must be in `scope`; the receiver may be any account.
pub async fn transfer(
    db: &DatabaseExecutor<'_>,
    scope: Scope,
    transfer: &Transfer,
    write_id: Uuid,
) -> Result<(transaction::Model, transaction::Model), ApiError> {
    let txn = db.begin().await?;
    let applied = transfer_step_by_step(&txn, scope, transfer, write_id).await?;
    match commit_if_applied(txn, applied).await? {
        Some(rows) => Ok(rows),
        None => Err(transfer_refused(db, scope, transfer).await),
    }
}

pub async fn account(
    db: &impl ConnectionTrait,
    scope: Scope,
    id: i64,
) -> Result<account::Model, ApiError> {
    scope
        .accounts(account::Entity::find_by_id(id))
        .one(db)
        .await?
        .ok_or(ACCOUNT_NOT_FOUND)
}

pub async fn accounts(
    db: &impl ConnectionTrait,
    scope: Scope,
    page: Page,
) -> Result<Listed<account::Model>, ApiError> {
    let rows = scope
        .accounts(account::Entity::find())
        .order_by_asc(account::Column::Id);
    let rows = page.of(rows, account::Column::Id).all(db).await?;
    Ok(page.listed(rows, |account| account.id))
}

/// The stored balance: one primary-key read, however long the account's history.
pub async fn balance(db: &impl ConnectionTrait, scope: Scope, id: i64) -> Result<i64, ApiError> {
    scope
        .accounts(account::Entity::find_by_id(id))
        .select_only()
        .column(account::Column::Balance)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or(ACCOUNT_NOT_FOUND)
}

pub async fn transaction(
    db: &impl ConnectionTrait,
    scope: Scope,
    id: i64,
) -> Result<transaction::Model, ApiError> {
    scope
        .ledger(transaction::Entity::find_by_id(id))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("Transaction not found"))
}

pub async fn transactions(
    db: &impl ConnectionTrait,
    scope: Scope,
    page: Page,
) -> Result<Listed<transaction::Model>, ApiError> {
    let rows = scope
        .ledger(transaction::Entity::find())
        .order_by_asc(transaction::Column::Id);
    let rows = page.of(rows, transaction::Column::Id).all(db).await?;
    Ok(page.listed(rows, |row| row.id))
}

pub async fn account_transactions(
    db: &impl ConnectionTrait,
    scope: Scope,
    acc_id: i64,
    page: Page,
) -> Result<Listed<transaction::Model>, ApiError> {
    // A customer's request is first a primary-key read of the account, in scope: someone
    // else's is a 404 before any ledger row is read.
    if scope != Scope::All {
        account(db, scope, acc_id).await?;
    }
    // `acc_id = $1 ORDER BY id` lets Postgres walk the primary key and filter, which it picks
    // when one account holds most rows; if they are all recent, it reads the whole older ledger
    // first (76 ms instead of 0.2 ms at a million rows). Asked as a range of the (acc_id, id)
    // index, ordered by that index's key, the query can only be answered by that index.
    let history = transaction::Entity::find()
        .filter(transaction::Column::AccId.gte(acc_id))
        .filter(transaction::Column::AccId.lte(acc_id))
        .order_by_asc(transaction::Column::AccId)
        .order_by_asc(transaction::Column::Id);
    let rows = page.of(history, transaction::Column::Id).all(db).await?;
    // An empty page of an unknown account is a 404, not an empty list.
    if rows.is_empty() && scope == Scope::All {
        account(db, scope, acc_id).await?;
    }
    Ok(page.listed(rows, |row| row.id))
}

/// The conditional `UPDATE` feeds the ledger `INSERT` in a data-modifying CTE: one round trip
/// instead of `BEGIN`, two statements and `COMMIT`, and atomic without a transaction. SQLite has
/// no data-modifying CTEs. $1 delta, $2 account, $3 balance limit, $4 credit, $5 debit, $6 time,
/// $7 write id, $8 the owner the account must have (NULL: any).
const POST_IN_ONE_STATEMENT: &str = r#"
WITH changed AS (
    UPDATE accounts SET balance = balance + $1
    WHERE id = $2 AND (balance + $1 >= 0 OR $1 >= 0) AND balance + $1 <= $3
      AND ($8::bigint IS NULL OR owner_id = $8)
    RETURNING id, balance
), posted AS (
    INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at)
    SELECT id, $4, $5, balance, $6 FROM changed
    RETURNING id, acc_id, credit, debit, balance_after, created_at
), remembered AS (
    INSERT INTO ledger_writes (write_id, first_transaction_id, created_at)
    SELECT $7, id, $6 FROM posted
)
SELECT id, acc_id, credit, debit, balance_after, created_at FROM posted"#;

/// Returns `None` if the rule refused the posting or the account does not exist.
async fn post_in_one_statement(
    db: &impl ConnectionTrait,
    scope: Scope,
    posting: &Posting,
    write_id: Uuid,
) -> Result<Option<transaction::Model>, ApiError> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        POST_IN_ONE_STATEMENT,
        [
            posting.delta().into(),
            posting.acc_id.into(),
            MAX_BALANCE.into(),
            posting.credit.minor_units().into(),
            posting.debit.minor_units().into(),
            now().into(),
            write_id.into(),
            scope.owner().into(),
        ],
    );
    Ok(transaction::Entity::find()
        .from_raw_sql(statement)
        .one(db)
        .await?)
}

async fn post_step_by_step(
    txn: &DatabaseTransaction,
    scope: Scope,
    posting: &Posting,
    write_id: Uuid,
) -> Result<Option<transaction::Model>, ApiError> {
    let change = change_balance(txn, scope, posting.acc_id, posting.delta()).await?;
    let Some(balance_after) = change else {
        return Ok(None);
    };
    let row = record(
        txn,
        posting.acc_id,
        posting.credit,
        posting.debit,
        balance_after,
    )
    .await?;
    remember(txn, write_id, row.id, None).await?;
    Ok(Some(row))
}

async fn transfer_step_by_step(
    txn: &DatabaseTransaction,
    scope: Scope,
    transfer: &Transfer,
    write_id: Uuid,
) -> Result<Option<(transaction::Model, transaction::Model)>, ApiError> {
    let amount = transfer.amount.minor_units();
    let (from, to) = (transfer.from_acc_id, transfer.to_acc_id);
    // Rows are locked in id order, so two opposite transfers cannot deadlock on Postgres. Only
    // the sender must be in the caller's scope.
    let (first, second) = if from < to {
        ((from, -amount, scope), (to, amount, Scope::All))
    } else {
        ((to, amount, Scope::All), (from, -amount, scope))
    };
    let Some(first_balance) = change_balance(txn, first.2, first.0, first.1).await? else {
        return Ok(None);
    };
    let Some(second_balance) = change_balance(txn, second.2, second.0, second.1).await? else {
        return Ok(None);
    };
    let (from_balance, to_balance) = if from < to {
        (first_balance, second_balance)
    } else {
        (second_balance, first_balance)
    };
    let debit = record(txn, from, Amount::ZERO, transfer.amount, from_balance).await?;
    let credit = record(txn, to, transfer.amount, Amount::ZERO, to_balance).await?;
    remember(txn, write_id, debit.id, Some(credit.id)).await?;
    Ok(Some((debit, credit)))
}

/// A refused write commits nothing: dropping `txn` rolls back what it had begun.
async fn commit_if_applied<T>(
    txn: DatabaseTransaction,
    applied: Option<T>,
) -> Result<Option<T>, ApiError> {
    if applied.is_some() {
        txn.commit().await?;
    }
    Ok(applied)
}

/// Adds `delta` to the balance if the result stays within 0..=MAX_BALANCE, in one statement;
/// returns the new balance, or `None` if the rule refused it or the account does not exist.
/// Only a change that lowers the balance is held to zero: an account upgraded overdrawn from the
/// Python original may receive money while still below zero.
async fn change_balance(
    txn: &DatabaseTransaction,
    scope: Scope,
    acc_id: i64,
    delta: i64,
) -> Result<Option<i64>, ApiError> {
    let new_balance = Expr::col(account::Column::Balance).add(delta);
    let update = account::Entity::update_many()
        .col_expr(account::Column::Balance, new_balance.clone())
        .filter(account::Column::Id.eq(acc_id))
        .filter(new_balance.clone().lte(MAX_BALANCE));
    let mut update = scope.accounts(update);
    if delta < 0 {
        update = update.filter(new_balance.gte(0));
    }
    let updated = update.exec_with_returning(txn).await?;
    Ok(updated.first().map(|account| account.balance))
}

/// Why a posting was not applied. A balance starts within 0..=MAX_BALANCE, so a negative change
/// can only have gone below zero and a positive one only above the limit: the answer does not
/// depend on what other requests did since.
async fn posting_refused(db: &impl ConnectionTrait, scope: Scope, posting: &Posting) -> ApiError {
    if let Err(missing) = balance(db, scope, posting.acc_id).await {
        return missing;
    }
    if posting.delta() < 0 {
        ApiError::InsufficientFunds
    } else {
        ApiError::BalanceLimitExceeded
    }
}

/// Why a transfer was not applied: a missing account, else the side whose rule it broke.
async fn transfer_refused(
    db: &impl ConnectionTrait,
    scope: Scope,
    transfer: &Transfer,
) -> ApiError {
    let from_balance = match balance(db, scope, transfer.from_acc_id).await {
        Ok(balance) => balance,
        Err(missing) => return missing,
    };
    if let Err(missing) = balance(db, Scope::All, transfer.to_acc_id).await {
        return missing;
    }
    if from_balance < transfer.amount.minor_units() {
        ApiError::InsufficientFunds
    } else {
        ApiError::BalanceLimitExceeded
    }
}

async fn record(
    txn: &DatabaseTransaction,
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
    Ok(row.insert(txn).await?)
}

/// Stores the write's key with its ledger rows, in the same transaction.
async fn remember(
    txn: &DatabaseTransaction,
    write_id: Uuid,
    first: i64,
    second: Option<i64>,
) -> Result<(), ApiError> {
    ledger_write::Entity::insert(ledger_write::ActiveModel {
        write_id: Set(write_id),
        first_transaction_id: Set(Some(first)),
        second_transaction_id: Set(second),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// An answer rebuilt from the ledger rows its write left (in id order), for when the write's own
/// answer was lost with its connection.
pub trait FromLedgerRows: Sized {
    fn from_ledger_rows(rows: Vec<transaction::Model>) -> Option<Self>;
}

/// What became of a write whose connection failed after it was sent.
pub enum Settled {
    /// It was stored: these are its ledger rows, in id order.
    Applied(Vec<transaction::Model>),
    /// It was not, and now never will be.
    NotApplied,
}

/// Learns whether the write stored under `write_id` happened, by inserting that key as a fence.
/// The insert conflicts if the write was committed, waits for it if it is still in flight (its
/// uncommitted key holds the slot), and otherwise succeeds, after which the write can never
/// commit. Retries while the database is unreachable, for at most `within`; `None` if the
/// outcome is still unknown then.
pub async fn settle(db: &DatabaseConnection, write_id: Uuid, within: Duration) -> Option<Settled> {
    let attempts = async {
        loop {
            match fence(db, write_id).await {
                Ok(settled) => return Some(settled),
                Err(ApiError::Unavailable(_)) => tokio::time::sleep(SETTLE_RETRY).await,
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(within, attempts).await.ok().flatten()
}

const SETTLE_RETRY: Duration = Duration::from_millis(100);

async fn fence(db: &DatabaseConnection, write_id: Uuid) -> Result<Settled, ApiError> {
    let fence = ledger_write::ActiveModel {
        write_id: Set(write_id),
        first_transaction_id: Set(None),
        second_transaction_id: Set(None),
        created_at: Set(now()),
    };
    let inserted = ledger_write::Entity::insert(fence)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(1)) {
        return Ok(Settled::NotApplied);
    }
    let stored = ledger_write::Entity::find_by_id(write_id)
        .one(db)
        .await?
        .ok_or(ApiError::Database(sea_orm::DbErr::RecordNotFound(
            "a ledger write that conflicted".into(),
        )))?;
    let ids = [stored.first_transaction_id, stored.second_transaction_id];
    let rows = transaction::Entity::find()
        .filter(transaction::Column::Id.is_in(ids.into_iter().flatten()))
        .order_by_asc(transaction::Column::Id)
        .all(db)
        .await?;
    Ok(Settled::Applied(rows))
}

/// Microseconds are what Postgres stores; truncating here makes every backend return what it was given.
fn now() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
