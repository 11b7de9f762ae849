//! The writes of holds, each in a transaction of its own: the accounts it may change locked
//! first, then its key claimed, then the hold and the balance changes it makes, and its write id,
//! or nothing.

use chrono::TimeDelta;
use entity::{account, hold, transaction};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use super::{HoldAction, HoldError, HoldStatus, HoldWrite, NewHold, reads};
use crate::{
    domain::{AccountId, Amount, Scope},
    idempotency::{self, Earlier},
    ledger::{
        LedgerError, fencing, now,
        rules::BalanceChange,
        steps::{apply_step_by_step, record},
    },
};

/// The most holds one pass of the sweeper releases.
pub(super) const SWEEP: u64 = 100;

/// What the database made of a hold's write. A failed statement is the `Err` beside it.
pub(super) enum Outcome {
    Done(hold::Model),
    Replayed(hold::Model),
    KeyReused,
    Refused(HoldError),
}

pub(super) async fn write(
    db: &DatabaseConnection,
    write: &HoldWrite,
    write_id: Uuid,
) -> Result<Outcome, DbErr> {
    let txn = db.begin().await?;
    lock_accounts(&txn, write.action).await?;
    if let Some(claim) = &write.claim {
        match idempotency::claim(&txn, claim, write_id).await? {
            None => {}
            Some(Earlier::Reused) => return Ok(Outcome::KeyReused),
            Some(Earlier::Write(hold)) => return Ok(Outcome::Replayed(hold)),
            Some(Earlier::Answered(_)) => {
                return Err(DbErr::Custom(
                    "a hold's key answered before keys named their write".into(),
                ));
            }
        }
    }
    let done = match write.action {
        HoldAction::Create(new) => create(&txn, new, write.scope).await,
        HoldAction::Capture { hold, amount } => capture(&txn, hold, amount, write.scope).await,
        HoldAction::Void { hold } => void(&txn, hold, write.scope).await,
    };
    let (hold, rows) = match done {
        Ok(done) => done,
        Err(HoldError::Ledger(LedgerError::Database(error))) => return Err(error),
        Err(refused) => return Ok(Outcome::Refused(refused)),
    };
    fencing::remember(&txn, write_id, &rows, Some(hold.id), write.trace.clone()).await?;
    txn.commit().await?;
    Ok(Outcome::Done(hold))
}

type Made = (hold::Model, Vec<transaction::Model>);

/// Locks the accounts `action` may change in id order, before anything else a hold's write
/// locks. Grouped writes lock their accounts in that order before they claim keys; a hold that
/// claimed its key, or its hold, before its accounts could wait for a group that waits for it
/// (Postgres would end one of them as deadlocked). SQLite has one writer at a time and no row
/// locks, and a transaction there must not read before it writes: a read pins its snapshot, and
/// a write after another's commit fails at once instead of waiting.
async fn lock_accounts(txn: &DatabaseTransaction, action: HoldAction) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let accounts = match action {
        HoldAction::Create(new) => account::Column::Id.is_in([new.from.0, new.to.0]),
        // A hold's accounts never change, so they are read in the same statement, unlocked.
        HoldAction::Capture { hold, .. } | HoldAction::Void { hold } => {
            let of_hold = |column: hold::Column| {
                Query::select()
                    .column(column)
                    .from(hold::Entity)
                    .and_where(hold::Column::Id.eq(hold))
                    .to_owned()
            };
            Expr::col(account::Column::Id)
                .in_subquery(of_hold(hold::Column::FromAccId))
                .or(Expr::col(account::Column::Id).in_subquery(of_hold(hold::Column::ToAccId)))
        }
    };
    account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(accounts)
        .order_by_asc(account::Column::Id)
        .lock_exclusive()
        .into_tuple::<i64>()
        .all(txn)
        .await?;
    Ok(())
}

/// Reserves the amount on the source, under the rules of what may be spent, and stores the hold.
async fn create(txn: &DatabaseTransaction, new: NewHold, scope: Scope) -> Result<Made, HoldError> {
    let reserve = BalanceChange {
        account: new.from,
        delta: 0,
        held: new.amount.minor_units(),
        scope,
    };
    // Changes nothing: anyone may receive, but the receiver must exist, and is told missing in
    // the same order as a transfer's.
    let receiver = BalanceChange::moving(new.to, 0, Scope::All);
    apply_step_by_step(txn, &[reserve, receiver]).await?;
    let at = now();
    let hold = hold::ActiveModel {
        from_acc_id: Set(new.from.0),
        to_acc_id: Set(new.to.0),
        amount: Set(new.amount.minor_units()),
        captured: Set(None),
        status: Set(HoldStatus::Pending.as_str().to_owned()),
        expires_at: Set(at + TimeDelta::seconds(new.expires_in.seconds())),
        created_at: Set(at),
        resolved_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok((hold, Vec::new()))
}

/// Moves the captured amount from the source to the receiver and releases the whole hold.
async fn capture(
    txn: &DatabaseTransaction,
    id: i64,
    amount: Option<Amount>,
    scope: Scope,
) -> Result<Made, HoldError> {
    let hold = resolve(txn, id, scope, Resolution::Capture(amount)).await?;
    let moved = hold.captured.unwrap_or(hold.amount);
    let (from, to) = (AccountId(hold.from_acc_id), AccountId(hold.to_acc_id));
    let release = BalanceChange {
        account: from,
        delta: -moved,
        held: -hold.amount,
        scope: Scope::All,
    };
    let receive = BalanceChange::moving(to, moved, Scope::All);
    let balances = apply_step_by_step(txn, &[release, receive]).await?;
    let moved = Amount::try_from(moved)
        .map_err(|_| DbErr::Custom(format!("hold {id} captured {moved}")))?;
    let debit = record(txn, from, Amount::ZERO, moved, balances[0]).await?;
    let credit = record(txn, to, moved, Amount::ZERO, balances[1]).await?;
    Ok((hold, vec![debit, credit]))
}

async fn void(txn: &DatabaseTransaction, id: i64, scope: Scope) -> Result<Made, HoldError> {
    let hold = resolve(txn, id, scope, Resolution::Void).await?;
    release(txn, &hold).await?;
    Ok((hold, Vec::new()))
}

/// Gives the source back all that `hold` reserved.
async fn release(txn: &DatabaseTransaction, hold: &hold::Model) -> Result<(), HoldError> {
    let release = BalanceChange {
        account: AccountId(hold.from_acc_id),
        delta: 0,
        held: -hold.amount,
        scope: Scope::All,
    };
    apply_step_by_step(txn, &[release]).await?;
    Ok(())
}

/// How a pending hold ends.
#[derive(Clone, Copy)]
enum Resolution {
    Capture(Option<Amount>),
    Void,
    Expire,
}

/// Ends the pending hold `id` in `scope`, in one conditional statement: a capture or void only
/// before its expiry, the expiry only after. When it changes nothing, why not.
async fn resolve(
    txn: &DatabaseTransaction,
    id: i64,
    scope: Scope,
    resolution: Resolution,
) -> Result<hold::Model, HoldError> {
    let at = now();
    let pending = hold::Entity::update_many()
        .col_expr(hold::Column::ResolvedAt, Expr::val(at))
        .filter(hold::Column::Id.eq(id))
        .filter(hold::Column::Status.eq(HoldStatus::Pending.as_str()));
    let update = match resolution {
        Resolution::Capture(amount) => {
            // All of the hold unless told otherwise, and never more.
            let (captured, at_most) = match amount {
                Some(amount) => (
                    Expr::val(amount.minor_units()),
                    hold::Column::Amount.gte(amount.minor_units()),
                ),
                None => (Expr::col(hold::Column::Amount), Expr::val(true)),
            };
            pending
                .col_expr(hold::Column::Status, HoldStatus::Captured.as_str().into())
                .col_expr(hold::Column::Captured, captured)
                .filter(hold::Column::ExpiresAt.gt(at))
                .filter(at_most)
        }
        Resolution::Void => pending
            .col_expr(hold::Column::Status, HoldStatus::Voided.as_str().into())
            .filter(hold::Column::ExpiresAt.gt(at)),
        Resolution::Expire => pending
            .col_expr(hold::Column::Status, HoldStatus::Expired.as_str().into())
            .filter(hold::Column::ExpiresAt.lte(at)),
    };
    let update = reads::scoped(scope, update);
    if let Some(hold) = update.exec_with_returning(txn).await?.pop() {
        return Ok(hold);
    }
    let Some(hold) = reads::hold(txn, scope, id).await? else {
        return Err(HoldError::NotFound);
    };
    Err(match (HoldStatus::of(&hold)?, resolution) {
        (HoldStatus::Pending, Resolution::Expire) => HoldError::Resolved(HoldStatus::Pending),
        (HoldStatus::Pending, _) if hold.expires_at <= at => {
            HoldError::Resolved(HoldStatus::Expired)
        }
        (HoldStatus::Pending, Resolution::Capture(Some(amount)))
            if amount.minor_units() > hold.amount =>
        {
            HoldError::MoreThanHeld
        }
        (HoldStatus::Pending, _) => {
            return Err(DbErr::Custom(format!("hold {id} was pending but not resolved")).into());
        }
        (resolved, _) => HoldError::Resolved(resolved),
    })
}

/// Releases the pending holds past their expiry, oldest first, each in a transaction of its
/// own; how many. A hold resolved meanwhile (by a capture, a void or another replica's sweeper)
/// is left as it is.
pub(super) async fn expire_due(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let due: Vec<i64> = hold::Entity::find()
        .select_only()
        .column(hold::Column::Id)
        .filter(hold::Column::Status.eq(HoldStatus::Pending.as_str()))
        .filter(hold::Column::ExpiresAt.lte(now()))
        .order_by_asc(hold::Column::ExpiresAt)
        .limit(SWEEP)
        .into_tuple()
        .all(db)
        .await?;
    let mut expired = 0;
    for id in due {
        let txn = db.begin().await?;
        // An expiry changes what a void would.
        lock_accounts(&txn, HoldAction::Void { hold: id }).await?;
        let released = match resolve(&txn, id, Scope::All, Resolution::Expire).await {
            Ok(hold) => release(&txn, &hold).await,
            Err(refused) => Err(refused),
        };
        match released {
            Ok(()) => {
                txn.commit().await?;
                expired += 1;
            }
            Err(HoldError::Ledger(LedgerError::Database(error))) => return Err(error),
            Err(_) => {}
        }
    }
    Ok(expired)
}
