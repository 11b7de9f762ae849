//! Credits and debits on one account: the balance change and its ledger row, atomically.

use entity::{account, ledger_write, transaction};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseExecutor, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, Set, TransactionTrait,
    sea_query::{CommonTableExpression, Expr, Query, SelectStatement, WithClause},
};
use uuid::Uuid;

use super::{
    LedgerError, fencing, now,
    rules::{BalanceChange, Posting, apply_step_by_step},
};
use crate::domain::{AccountId, Amount, Scope};

/// Applies a posting and records its ledger row under `write_id`. On Postgres, one statement;
/// elsewhere, or when that statement changes nothing and the reason must be found, step by step
/// in a transaction (a savepoint inside the caller's).
pub async fn post(
    db: &DatabaseExecutor<'_>,
    scope: Scope,
    posting: &Posting,
    write_id: Uuid,
) -> Result<transaction::Model, LedgerError> {
    let change = posting.change(scope);
    if db.get_database_backend() == DbBackend::Postgres
        && let Some(row) = post_in_one_statement(db, &change, posting, write_id).await?
    {
        return Ok(row);
    }
    let txn = db.begin().await?;
    let [balance_after] = <[i64; 1]>::try_from(apply_step_by_step(&txn, &[change]).await?)
        .map_err(|_| DbErr::Custom("one balance for one change".into()))?;
    let row = record(
        &txn,
        posting.account,
        posting.credit,
        posting.debit,
        balance_after,
    )
    .await?;
    fencing::remember(&txn, write_id, row.id, None).await?;
    txn.commit().await?;
    Ok(row)
}

const CHANGED: &str = "changed";
const POSTED: &str = "posted";
const REMEMBERED: &str = "remembered";

/// The conditional `UPDATE` feeds the ledger `INSERT`, which feeds the write id's, in
/// data-modifying CTEs: one round trip instead of `BEGIN`, three statements and `COMMIT`, and
/// atomic without a transaction. SQLite has no data-modifying CTEs. `None` when the rules refused
/// the change or the account does not exist: nothing was written.
async fn post_in_one_statement(
    db: &impl ConnectionTrait,
    change: &BalanceChange,
    posting: &Posting,
    write_id: Uuid,
) -> Result<Option<transaction::Model>, DbErr> {
    use account::Column as Account;
    use transaction::Column as Ledger;
    let at = now();
    let changed = change.guarded_update();
    let posted = Query::insert()
        .into_table(transaction::Entity)
        .columns([
            Ledger::AccId,
            Ledger::Credit,
            Ledger::Debit,
            Ledger::BalanceAfter,
            Ledger::CreatedAt,
        ])
        .select_from(
            Query::select()
                .column(Account::Id)
                .expr(Expr::val(posting.credit.minor_units()))
                .expr(Expr::val(posting.debit.minor_units()))
                .column(Account::Balance)
                .expr(Expr::val(at))
                .from(CHANGED)
                .to_owned(),
        )
        .map_err(|error| DbErr::Custom(error.to_string()))?
        .returning(Query::returning().columns(ledger_columns()))
        .to_owned();
    let remembered = Query::insert()
        .into_table(ledger_write::Entity)
        .columns([
            ledger_write::Column::WriteId,
            ledger_write::Column::FirstTransactionId,
            ledger_write::Column::CreatedAt,
        ])
        .select_from(
            Query::select()
                .expr(Expr::val(write_id))
                .column(Ledger::Id)
                .expr(Expr::val(at))
                .from(POSTED)
                .to_owned(),
        )
        .map_err(|error| DbErr::Custom(error.to_string()))?
        .to_owned();
    let ctes = WithClause::new()
        .cte(named(CHANGED, changed))
        .cte(named(POSTED, posted))
        .cte(named(REMEMBERED, remembered))
        .to_owned();
    let statement: SelectStatement = Query::select()
        .columns(ledger_columns())
        .from(POSTED)
        .to_owned();
    let statement = db.get_database_backend().build(&statement.with(ctes));
    transaction::Entity::find()
        .from_raw_sql(statement)
        .one(db)
        .await
}

fn named(
    name: &'static str,
    query: impl Into<sea_orm::sea_query::SubQueryStatement>,
) -> CommonTableExpression {
    CommonTableExpression::new()
        .table_name(name)
        .query(query)
        .to_owned()
}

fn ledger_columns() -> [transaction::Column; 6] {
    use transaction::Column::*;
    [Id, AccId, Credit, Debit, BalanceAfter, CreatedAt]
}

/// Writes one ledger row, inside the transaction that changed its account's balance.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    account: AccountId,
    credit: Amount,
    debit: Amount,
    balance_after: i64,
) -> Result<transaction::Model, DbErr> {
    transaction::ActiveModel {
        acc_id: Set(account.0),
        credit: Set(credit.minor_units()),
        debit: Set(debit.minor_units()),
        balance_after: Set(balance_after),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(txn)
    .await
}
