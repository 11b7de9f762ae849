//! The step-by-step way of applying balance changes under the rules: one conditional `UPDATE` per
//! account, in a transaction, and when one changes nothing, the rules judged under a lock to tell
//! why. SQLite runs every write this way; Postgres runs the grouped statement (`grouped`).

use entity::{account, transaction};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbErr, ExprTrait, IdenStatic, Set,
    TransactionTrait,
    sea_query::{Expr, LockType, Query, UpdateStatement},
};

use super::{
    LedgerError, fencing, now,
    rules::{BalanceChange, rules},
    writes::{Item, ItemOutcome, Movement, Replay},
};
use crate::{
    domain::{AccountId, Amount},
    idempotency::{self, Earlier},
};

/// Applies one write in a transaction of its own (a savepoint, inside a transaction): its key
/// claimed first, then its balance changes, its ledger rows and its write id, or nothing.
pub(super) async fn write(
    db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
    item: &Item,
) -> Result<ItemOutcome, DbErr> {
    let txn = db.begin().await?;
    if let Some(claim) = &item.write.claim {
        let replay = match idempotency::claim(&txn, claim, item.write_id).await? {
            None => None,
            Some(Earlier::Reused) => return Ok(ItemOutcome::KeyReused),
            Some(Earlier::Write(rows)) => Some(Replay::Rows(rows)),
            Some(Earlier::Answered(body)) => Some(Replay::Stored(body)),
        };
        if let Some(replay) = replay {
            return Ok(ItemOutcome::Replayed(replay));
        }
    }
    let rows = match apply(&txn, item).await {
        Ok(rows) => rows,
        Err(LedgerError::Database(error)) => return Err(error),
        Err(refused) => return Ok(ItemOutcome::Refused(refused)),
    };
    fencing::remember(&txn, item.write_id, &rows, None, item.write.trace.clone()).await?;
    txn.commit().await?;
    Ok(ItemOutcome::Applied(rows))
}

/// Applies `items` in order inside `txn`, each in a savepoint of its own.
pub(super) async fn write_each(
    txn: &DatabaseTransaction,
    items: &[Item],
) -> Result<Vec<ItemOutcome>, DbErr> {
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(write(txn, item).await?);
    }
    Ok(outcomes)
}

/// The balance changes of a posting (its row) or a transfer (the sender's row, then the
/// receiver's).
async fn apply(
    txn: &DatabaseTransaction,
    item: &Item,
) -> Result<Vec<transaction::Model>, LedgerError> {
    let scope = item.write.scope;
    match item.write.movement {
        Movement::Post(posting) => {
            let balances = apply_step_by_step(txn, &[posting.change(scope)]).await?;
            let row = record(
                txn,
                posting.account,
                posting.credit,
                posting.debit,
                balances[0],
            );
            Ok(vec![row.await?])
        }
        Movement::Transfer(transfer) => {
            let balances = apply_step_by_step(txn, &transfer.changes(scope)).await?;
            let (amount, none) = (transfer.amount, Amount::ZERO);
            let debit = record(txn, transfer.from, none, amount, balances[0]).await?;
            let credit = record(txn, transfer.to, amount, none, balances[1]).await?;
            Ok(vec![debit, credit])
        }
    }
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

impl BalanceChange {
    /// The guarded change: adds `delta` to the account's balance where every rule holds, and
    /// returns its new balance (no row: a rule refused it, or no such account).
    fn guarded_update(&self) -> UpdateStatement {
        Query::update()
            .table(account::Entity)
            .value(account::Column::Balance, self.terms().new_balance())
            .value(account::Column::Held, self.terms().new_held())
            .cond_where(self.condition())
            .returning(Query::returning().column(account::Column::Balance))
            .to_owned()
    }

    /// Adds `delta` if every rule holds, in one statement; the new balance, or `None`.
    async fn apply(&self, txn: &DatabaseTransaction) -> Result<Option<i64>, DbErr> {
        let statement = txn.get_database_backend().build(&self.guarded_update());
        let updated = txn.query_one_raw(statement).await?;
        updated
            .map(|row| row.try_get::<i64>("", account::Column::Balance.as_str()))
            .transpose()
    }

    /// The first rule that does not hold for the account's row as it is now, which this locks.
    async fn broken_rule(&self, txn: &DatabaseTransaction) -> Result<Option<LedgerError>, DbErr> {
        let rules = rules(&self.terms());
        let mut judged = Query::select();
        judged
            .from(account::Entity)
            .and_where(Expr::col(account::Column::Id).eq(self.account.0))
            .lock(LockType::Update);
        for (i, rule) in rules.iter().enumerate() {
            judged.expr_as(rule.holds.clone(), format!("rule{i}"));
        }
        let backend = txn.get_database_backend();
        let Some(row) = txn.query_one_raw(backend.build(&judged)).await? else {
            return Ok(Some(LedgerError::AccountNotFound));
        };
        for (i, rule) in rules.into_iter().enumerate() {
            // NULL (an account without an owner, asked for by a customer) does not hold.
            if row.try_get::<Option<bool>>("", &format!("rule{i}"))? != Some(true) {
                return Ok(Some(rule.otherwise));
            }
        }
        Ok(None)
    }
}

/// Applies `changes` in one transaction, in the order of their accounts' ids, so that two
/// transfers in opposite directions cannot deadlock; returns each account's new balance, in the
/// order of `changes`. When a change is refused, nothing of `txn` is to be committed.
///
/// A change is first tried as a conditional `UPDATE`. If it changes nothing, the changes not yet
/// made are judged under a lock on their rows, so the refusal given is true at a moment when
/// nothing else can change them. If every rule holds by then (another request moved money in
/// between), the update is made again under that lock, where it must succeed.
pub(super) async fn apply_step_by_step(
    txn: &DatabaseTransaction,
    changes: &[BalanceChange],
) -> Result<Vec<i64>, LedgerError> {
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by_key(|&i| changes[i].account);
    let mut balances = vec![0; changes.len()];
    for (done, &i) in order.iter().enumerate() {
        if let Some(balance) = changes[i].apply(txn).await? {
            balances[i] = balance;
            continue;
        }
        if let Some(refused) = refusal(txn, changes, &order[done..]).await? {
            return Err(refused);
        }
        balances[i] = changes[i].apply(txn).await?.ok_or_else(|| {
            DbErr::Custom("a balance change refused under a lock that its rules allowed".into())
        })?;
    }
    Ok(balances)
}

/// Why the changes at `pending` (indexes into `changes`, in id order) cannot be made, judged in
/// that order. A missing account is told before a refusal of the money rules, and the earlier
/// change (a transfer's sender) before the later; `None` if every rule holds now.
async fn refusal(
    txn: &DatabaseTransaction,
    changes: &[BalanceChange],
    pending: &[usize],
) -> Result<Option<LedgerError>, DbErr> {
    let mut refusals = Vec::new();
    for &i in pending {
        if let Some(refused) = changes[i].broken_rule(txn).await? {
            refusals.push((i, refused));
        }
    }
    let rank = |(i, refused): &(usize, LedgerError)| {
        (!matches!(refused, LedgerError::AccountNotFound), *i)
    };
    Ok(refusals
        .into_iter()
        .min_by_key(rank)
        .map(|(_, refused)| refused))
}
