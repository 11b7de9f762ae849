//! Every write of money goes through [`Ledger::write`]: a posting or a transfer, with or without
//! an idempotency key. How it reaches the database is decided here, never by the caller: on
//! Postgres in a group with the writes waiting at the same moment (`grouping`, one statement and
//! one commit for the group), elsewhere step by step in a transaction of its own (`steps`). Either
//! way the write keeps its own outcome, and a write whose connection failed after it was sent is
//! settled before it is answered (`fencing`), so "not done" is only said of what was not done.

use std::{sync::Arc, time::Duration};

use entity::transaction;
use sea_orm::{DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use uuid::Uuid;

use super::{
    LedgerError, Pause, Settled, Stored, fencing,
    grouped::FUNCTION,
    grouping::{GroupObserver, Groups},
    rules::{Posting, Transfer},
    steps,
};
use crate::{
    database,
    domain::{Scope, time_ordered_uuid},
    idempotency::{Claim, WriteError},
};

/// A money movement of one request.
#[derive(Clone, Copy, Debug)]
pub enum Movement {
    Post(Posting),
    Transfer(Transfer),
}

/// One write: what moves, on behalf of whom, the idempotency key it is claimed under, and the
/// W3C `traceparent` of the request that asked for it (stored with it, for its webhooks).
#[derive(Debug)]
pub struct Write {
    pub movement: Movement,
    pub scope: Scope,
    pub claim: Option<Claim>,
    pub trace: Option<String>,
}

/// What a write came to.
#[derive(Debug)]
pub enum Written {
    /// It was applied: its ledger rows, in id order.
    Applied(Vec<transaction::Model>),
    /// Its key was used before for this same request, which is answered again instead.
    Replayed(Replay),
}

/// A replayed write's answer.
#[derive(Debug)]
pub enum Replay {
    /// The earlier write's ledger rows.
    Rows(Vec<transaction::Model>),
    /// The JSON answer stored with a key before keys named their write.
    Stored(String),
}

/// What writes sent together came to.
#[derive(Debug)]
pub enum Together {
    /// Every one was applied (or replayed), in one commit.
    Applied(Vec<Written>),
    /// At least one was refused, so none was applied: each one's refusal, `None` for those that
    /// would have been applied.
    Refused(Vec<Option<WriteError>>),
}

/// A write as it is carried to the database, with the id its ledger rows are stored under.
#[derive(Debug)]
pub(super) struct Item {
    pub write: Write,
    pub write_id: Uuid,
}

impl Item {
    fn new(write: Write) -> Self {
        Self {
            write,
            write_id: time_ordered_uuid(),
        }
    }
}

/// What the database made of one item. A failed statement is the `Err` beside it.
#[derive(Debug)]
pub(super) enum ItemOutcome {
    Applied(Vec<transaction::Model>),
    Replayed(Replay),
    KeyReused,
    Refused(LedgerError),
}

pub struct Ledger {
    pub(super) db: DatabaseConnection,
    /// Postgres only, unless grouping is switched off.
    groups: Option<Arc<Groups>>,
    /// A slow statement asked for by a fault flag; grouped writes only.
    pause: Pause,
    /// How long a write whose connection failed may spend learning whether it was applied.
    settle_within: Duration,
}

impl Ledger {
    /// `observe` is told the size of each group of writes (Postgres, grouping on).
    pub fn new(
        db: DatabaseConnection,
        group: bool,
        settle_within: Duration,
        observe: GroupObserver,
    ) -> Self {
        let group = group && db.get_database_backend() == DbBackend::Postgres;
        let pause = Pause::default();
        let groups = group.then(|| Groups::new(db.clone(), pause.clone(), observe));
        Self {
            db,
            groups,
            pause,
            settle_within,
        }
    }

    /// What makes grouped writes' statements slow, for the `slowStatement` fault flag.
    pub fn pause(&self) -> &Pause {
        &self.pause
    }

    pub async fn write(&self, write: Write) -> Result<Written, WriteError> {
        let item = Item::new(write);
        let write_id = item.write_id;
        let outcome = match &self.groups {
            Some(groups) => groups.apply(item).await,
            None => once_more_on_conflict(async || steps::write(&self.db, &item).await).await,
        };
        self.answer(write_id, outcome).await
    }

    /// A write's answer from what the database made of it.
    async fn answer(
        &self,
        write_id: Uuid,
        outcome: Result<ItemOutcome, DbErr>,
    ) -> Result<Written, WriteError> {
        match outcome {
            Ok(ItemOutcome::Applied(rows)) => Ok(Written::Applied(rows)),
            Ok(ItemOutcome::Replayed(replay)) => Ok(Written::Replayed(replay)),
            Ok(ItemOutcome::KeyReused) => Err(WriteError::KeyReused),
            Ok(ItemOutcome::Refused(LedgerError::Database(cause))) | Err(cause) => {
                self.settle(write_id, cause).await.map(Written::Applied)
            }
            Ok(ItemOutcome::Refused(refused)) => Err(WriteError::Ledger(refused)),
        }
    }

    /// Writes that each stand alone, applied in the order given: a later one on the same account
    /// sees what the earlier left.
    pub async fn write_each(&self, writes: Vec<Write>) -> Vec<Result<Written, WriteError>> {
        let items: Vec<Item> = writes.into_iter().map(Item::new).collect();
        let ids: Vec<Uuid> = items.iter().map(|item| item.write_id).collect();
        let outcomes = match &self.groups {
            Some(groups) => groups.apply_in_order(items).await,
            None => {
                let mut outcomes = Vec::with_capacity(items.len());
                for item in &items {
                    outcomes.push(
                        once_more_on_conflict(async || steps::write(&self.db, item).await).await,
                    );
                }
                outcomes
            }
        };
        let mut written = Vec::with_capacity(outcomes.len());
        for (write_id, outcome) in ids.into_iter().zip(outcomes) {
            written.push(self.answer(write_id, outcome).await);
        }
        written
    }

    /// Writes that apply together or not at all: in one transaction, each under the rules and its
    /// key as if alone, committed only when every one was applied (or replayed).
    pub async fn write_together(&self, writes: Vec<Write>) -> Result<Together, WriteError> {
        let items: Vec<Item> = writes.into_iter().map(Item::new).collect();
        let (txn, outcomes) = once_more_on_conflict(async || {
            let txn = self.db.begin().await?;
            let outcomes = match &self.groups {
                Some(_) => {
                    let items: Vec<&Item> = items.iter().collect();
                    FUNCTION.apply(&txn, &items, self.pause.get()).await
                }
                None => steps::write_each(&txn, &items).await,
            };
            Ok((txn, outcomes?))
        })
        .await
        .map_err(LedgerError::from)?;
        // All or nothing: any one write applied tells, after a lost commit, whether all were.
        let witness = items
            .iter()
            .zip(&outcomes)
            .find(|(_, outcome)| matches!(outcome, ItemOutcome::Applied(_)))
            .map(|(item, _)| item.write_id);
        let (mut written, mut refusals, mut refused) = (Vec::new(), Vec::new(), false);
        for outcome in outcomes {
            let refusal = match outcome {
                ItemOutcome::Applied(rows) => {
                    written.push(Written::Applied(rows));
                    None
                }
                ItemOutcome::Replayed(replay) => {
                    written.push(Written::Replayed(replay));
                    None
                }
                ItemOutcome::KeyReused => Some(WriteError::KeyReused),
                ItemOutcome::Refused(refusal) => Some(WriteError::Ledger(refusal)),
            };
            refused |= refusal.is_some();
            refusals.push(refusal);
        }
        if refused {
            txn.rollback().await.map_err(LedgerError::from)?;
            return Ok(Together::Refused(refusals));
        }
        if let Err(cause) = txn.commit().await {
            match witness {
                Some(write_id) => {
                    self.settle::<Vec<_>, LedgerError>(write_id, cause).await?;
                }
                None => return Err(LedgerError::Database(cause).into()),
            }
        }
        Ok(Together::Applied(written))
    }

    /// A write whose statement failed. If the connection failed once it may have been sent,
    /// the answer is learned before it is given (within `settle_within`): what it stored if it was
    /// applied, [`WriteError::NotApplied`] only if it certainly was not, and
    /// [`WriteError::OutcomeUnknown`] if the database could not be asked in time.
    pub(super) async fn settle<T: Stored, R: From<LedgerError>>(
        &self,
        write_id: Uuid,
        cause: DbErr,
    ) -> Result<T, WriteError<R>> {
        if !(database::is_unavailable(&cause) && database::may_have_been_sent(&cause)) {
            return Err(WriteError::Ledger(LedgerError::Database(cause).into()));
        }
        match fencing::settle(&self.db, write_id, self.settle_within).await {
            Some(Settled::NotApplied) => Err(WriteError::NotApplied(cause)),
            Some(Settled::Applied(stored)) => {
                log::warn!("write {write_id} was applied although its connection failed: {cause}");
                Ok(stored)
            }
            None => Err(WriteError::OutcomeUnknown(cause)),
        }
    }
}

/// Runs a write's `attempt` once more when the database rolled it back for a conflict with
/// another transaction (a deadlock's victim, a serialization failure): nothing of it happened, and
/// the conflict is seldom met twice. A second conflict is the answer, which is "not applied".
pub(super) async fn once_more_on_conflict<T>(
    attempt: impl AsyncFn() -> Result<T, DbErr>,
) -> Result<T, DbErr> {
    match attempt().await {
        Err(error) if database::is_conflict(&error) => {
            after_conflict(&error).await;
            attempt().await
        }
        outcome => outcome,
    }
}

/// Waits before a write rolled back for a conflict is tried again. The transaction that won is
/// waiting for the rows the write held; a second try sent at once can take them back first and
/// meet the same deadlock again (Postgres's log showed it, in 9 of 26 runs of the first version
/// of `tests/api/conflicts.rs`). The winner needs microseconds, and finding the deadlock took
/// Postgres its `deadlock_timeout`, 1 s by default.
pub(super) async fn after_conflict(error: &DbErr) {
    log::warn!("a write was rolled back for a conflict and is tried once more: {error}");
    tokio::time::sleep(Duration::from_millis(20)).await;
}
