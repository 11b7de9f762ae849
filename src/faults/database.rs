//! The database flags: connections taken from the pool and kept, a transaction left open, and two
//! writers deadlocking, each as a misbehaving client of the database would cause them, so the
//! pool gauges, Postgres' own statistics and its log show them.

use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait, sqlx,
};

use super::State;

/// How long taking one more connection may wait: the pool may be exhausted by then.
const TAKE_WITHIN: Duration = Duration::from_millis(200);
/// How long each deadlocking writer waits between its two updates, so both hold their first.
const CROSS_AFTER: Duration = Duration::from_millis(200);

/// A connection taken from the pool, whichever the database.
#[expect(
    dead_code,
    reason = "held, never read: dropping it gives the connection back"
)]
enum Connection {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

/// What the database flags hold now.
#[derive(Default)]
pub(super) struct Held {
    connections: Vec<Connection>,
    open: Option<DatabaseTransaction>,
}

impl Held {
    /// Takes or gives back connections, and opens or ends the open transaction, as `state` asks.
    pub(super) async fn follow(
        &mut self,
        db: &DatabaseConnection,
        state: &State,
    ) -> Result<(), DbErr> {
        let wanted = usize::try_from(state.pool_held).unwrap_or(usize::MAX);
        self.connections.truncate(wanted);
        while self.connections.len() < wanted {
            match take(db).await {
                Some(connection) => self.connections.push(connection),
                // The pool is exhausted: the next second tries again.
                None => break,
            }
        }
        match (&self.open, state.long_transaction) {
            (None, true) => self.open = Some(open_transaction(db).await?),
            (Some(_), false) => {
                if let Some(open) = self.open.take() {
                    open.rollback().await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn take(db: &DatabaseConnection) -> Option<Connection> {
    match db.get_database_backend() {
        DbBackend::Postgres => acquire(db.get_postgres_connection_pool())
            .await
            .map(Connection::Postgres),
        _ => acquire(db.get_sqlite_connection_pool())
            .await
            .map(Connection::Sqlite),
    }
}

/// A connection of `pool`, unless none is free within `TAKE_WITHIN`.
async fn acquire<D: sqlx::Database>(pool: &sqlx::Pool<D>) -> Option<sqlx::pool::PoolConnection<D>> {
    tokio::time::timeout(TAKE_WITHIN, pool.acquire())
        .await
        .ok()?
        .ok()
}

/// A transaction that has written nothing but holds a transaction id, so that Postgres counts it
/// open from now (`pg_stat_activity.xact_start`) and vacuum cannot pass it.
async fn open_transaction(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_current_xact_id()")
            .await?;
    }
    Ok(txn)
}

/// Two writers update the same two accounts in opposite orders; Postgres finds the deadlock after
/// `deadlock_timeout` and aborts one of them. Postgres only (SQLite has one writer at a time).
pub(super) fn deadlock(db: &DatabaseConnection) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        let accounts = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT id FROM accounts ORDER BY id LIMIT 2",
            ))
            .await;
        let ids: Vec<i64> = accounts
            .into_iter()
            .flatten()
            .filter_map(|row| row.try_get("", "id").ok())
            .collect();
        if let [first, second] = ids[..] {
            let (one, other) = tokio::join!(
                update_both(&db, first, second),
                update_both(&db, second, first)
            );
            for outcome in [one, other] {
                if let Err(error) = outcome {
                    log::debug!("a writer of two accounts was rolled back: {error}");
                }
            }
        }
    });
}

async fn update_both(db: &DatabaseConnection, first: i64, second: i64) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let touch = |id: i64| {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE accounts SET balance = balance WHERE id = $1",
            [id.into()],
        )
    };
    txn.execute_raw(touch(first)).await?;
    tokio::time::sleep(CROSS_AFTER).await;
    txn.execute_raw(touch(second)).await?;
    txn.commit().await
}
