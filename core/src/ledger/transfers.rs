//! Money from one account to another: both balance changes and both ledger rows, or nothing.

use entity::transaction;
use sea_orm::{DatabaseExecutor, DbErr, TransactionTrait};
use uuid::Uuid;

use super::{
    LedgerError, fencing,
    postings::record,
    rules::{Transfer, apply_step_by_step},
};
use crate::domain::{Amount, Scope};

/// Moves money between two accounts in one transaction (a savepoint inside the caller's) and
/// records both rows under `write_id`; returns the sender's ledger row, then the receiver's.
///
/// Unlike a posting, a transfer is not one statement on Postgres: with two conditional updates,
/// one statement cannot both lock the rows in a deadlock-free order and see each row's locked
/// balance in its checks (bench/RESULTS.md shows the attempt, which overdrew under load).
pub async fn transfer(
    db: &DatabaseExecutor<'_>,
    scope: Scope,
    transfer: &Transfer,
    write_id: Uuid,
) -> Result<(transaction::Model, transaction::Model), LedgerError> {
    let txn = db.begin().await?;
    let balances = apply_step_by_step(&txn, &transfer.changes(scope)).await?;
    let [from_balance, to_balance] = <[i64; 2]>::try_from(balances)
        .map_err(|_| DbErr::Custom("two balances for two changes".into()))?;
    let debit = record(
        &txn,
        transfer.from,
        Amount::ZERO,
        transfer.amount,
        from_balance,
    )
    .await?;
    let credit = record(&txn, transfer.to, transfer.amount, Amount::ZERO, to_balance).await?;
    fencing::remember(&txn, write_id, debit.id, Some(credit.id)).await?;
    txn.commit().await?;
    Ok((debit, credit))
}
