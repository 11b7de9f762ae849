//! Every write is stored with an id the server chose for it (`ledger_writes`), in the same
//! transaction as its ledger rows. When the connection fails after a write was sent, that id
//! tells whether it was applied: see [`settle`].

use std::time::Duration;

use entity::{ledger_write, transaction};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TryInsertResult,
};
use uuid::Uuid;

use super::now;
use crate::database;

/// Stores the write's id with its ledger rows, in the same transaction.
pub(super) async fn remember(
    txn: &DatabaseTransaction,
    write_id: Uuid,
    rows: &[transaction::Model],
    hold: Option<i64>,
    trace: Option<String>,
) -> Result<(), DbErr> {
    ledger_write::Entity::insert(ledger_write::ActiveModel {
        write_id: Set(write_id),
        first_transaction_id: Set(rows.first().map(|row| row.id)),
        second_transaction_id: Set(rows.get(1).map(|row| row.id)),
        hold_id: Set(hold),
        traceparent: Set(trace),
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

/// What a stored write left, read back by the id it was stored under: its ledger rows, or the
/// hold it made or resolved.
pub trait Stored: Sized {
    fn read(
        db: &impl ConnectionTrait,
        write_id: Uuid,
    ) -> impl Future<Output = Result<Option<Self>, DbErr>>;
}

impl Stored for Vec<transaction::Model> {
    async fn read(db: &impl ConnectionTrait, write_id: Uuid) -> Result<Option<Self>, DbErr> {
        rows_of(db, write_id).await
    }
}

/// What became of a write whose connection failed after it was sent.
#[derive(Debug)]
pub enum Settled<T = Vec<transaction::Model>> {
    /// It was stored: this is what it left (its ledger rows, in id order).
    Applied(T),
    /// It was not, and now never will be.
    NotApplied,
}

const SETTLE_RETRY: Duration = Duration::from_millis(100);

/// Learns whether the write stored under `write_id` happened, by inserting that id as a fence.
/// The insert conflicts if the write was committed, waits for it if it is still in flight (its
/// uncommitted id holds the slot), and otherwise succeeds, after which the write can never
/// commit. Retries while the database is unreachable, for at most `within`; `None` if the
/// outcome is still unknown then.
pub async fn settle<T: Stored>(
    db: &DatabaseConnection,
    write_id: Uuid,
    within: Duration,
) -> Option<Settled<T>> {
    let attempts = async {
        loop {
            match fence(db, write_id).await {
                Ok(settled) => return Some(settled),
                Err(error) if database::is_unavailable(&error) => {
                    tokio::time::sleep(SETTLE_RETRY).await
                }
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(within, attempts).await.ok().flatten()
}

async fn fence<T: Stored>(db: &DatabaseConnection, write_id: Uuid) -> Result<Settled<T>, DbErr> {
    let fence = ledger_write::ActiveModel {
        write_id: Set(write_id),
        first_transaction_id: Set(None),
        second_transaction_id: Set(None),
        hold_id: Set(None),
        traceparent: Set(None),
        created_at: Set(now()),
    };
    let inserted = ledger_write::Entity::insert(fence)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(1)) {
        return Ok(Settled::NotApplied);
    }
    let stored = T::read(db, write_id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("a ledger write that conflicted".into()))?;
    Ok(Settled::Applied(stored))
}

/// The ledger rows stored under `write_id`, in id order; `None` if no write has that id.
async fn rows_of(
    db: &impl ConnectionTrait,
    write_id: Uuid,
) -> Result<Option<Vec<transaction::Model>>, DbErr> {
    let Some(stored) = ledger_write::Entity::find_by_id(write_id).one(db).await? else {
        return Ok(None);
    };
    let ids = [stored.first_transaction_id, stored.second_transaction_id];
    let rows = transaction::Entity::find()
        .filter(transaction::Column::Id.is_in(ids.into_iter().flatten()))
        .order_by_asc(transaction::Column::Id)
        .all(db)
        .await?;
    Ok(Some(rows))
}
