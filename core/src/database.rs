//! Opening the database (the pool, SQLite's concurrency settings, the migrations), and telling a
//! database that is unavailable from a statement that failed.

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

/// Told of every statement with its duration and whether it failed. SeaORM tells the one its
/// pool was given (`set_metric_callback`); the ledger tells the same one of the statements it
/// runs on a connection it keeps.
pub type StatementObserver = Arc<dyn Fn(&sea_orm::metric::Info<'_>) + Send + Sync>;

/// An arbitrary, fixed key for `pg_advisory_lock`, the same in every replica.
const MIGRATION_LOCK: i64 = 0x0062_616e_6b61_7069;

/// Where the database is and how the pool may use it.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    pub url: String,
    pub max_connections: u32,
    /// How long a statement may wait for a connection before it fails as unavailable.
    pub acquire_timeout: Duration,
}

/// A server's connections to its database.
pub struct Pools {
    /// The requests' statements. On Postgres it starts empty and opens a connection when a request
    /// finds none idle, so every connection is opened by a thread that serves requests: tokio
    /// wakes a socket's reader through the thread that opened it, and connections opened by the
    /// main thread had it relay every reply to a worker.
    pub requests: DatabaseConnection,
    /// Start-up (migrations, the operator) and the tasks that run besides requests, all on the
    /// main thread. On SQLite, the same pool as `requests`.
    pub background: DatabaseConnection,
}

/// The background tasks' pool: each task uses one connection at a time, for a moment.
const BACKGROUND_CONNECTIONS: u32 = 2;

/// Opens the pools and applies the pending migrations.
pub async fn connect(settings: &DatabaseOptions) -> Result<Pools, DbErr> {
    if !DbBackend::Postgres.is_prefix_of(&settings.url) {
        // SQLite is the single-process setup (replicas belong on Postgres), and its connections
        // are threads of their own, not sockets: one pool serves all.
        let db = Database::connect(options(settings, settings.max_connections)).await?;
        migrate_all_or_nothing(&db).await?;
        return Ok(Pools {
            requests: db.clone(),
            background: db,
        });
    }
    let background = Database::connect(options(settings, BACKGROUND_CONNECTIONS)).await?;
    migrate(&background, &settings.url).await?;
    let mut requests = options(settings, settings.max_connections);
    requests.min_connections(0).connect_lazy(true);
    Ok(Pools {
        requests: Database::connect(requests).await?,
        background,
    })
}

fn options(settings: &DatabaseOptions, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(&settings.url);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        // The default pings every connection on every checkout: a second round trip per query.
        // Only a connection idle long enough to have been dropped by a proxy is tested; a dead
        // hot one fails its query as unavailable and is discarded by the pool.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        // WAL lets readers run beside the one writer; writers queue on busy_timeout instead of
        // failing with SQLITE_BUSY.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    options
}

/// Applies pending migrations on Postgres, and installs the ledger's grouped statement. Several
/// replicas may start at once: they take turns under an advisory lock, held on a connection of
/// its own so the pool stays free for the migrator.
async fn migrate(db: &DatabaseConnection, url: &str) -> Result<(), DbErr> {
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    let lock = Database::connect(options).await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let migrated = match migrate_all_or_nothing(db).await {
        Ok(()) => crate::ledger::install(db).await,
        failed => failed,
    };
    // Closing the session releases the lock even if the unlock is never reached.
    lock.close().await?;
    migrated
}

/// Every pending migration in one transaction (each one is a savepoint in it): an upgrade that
/// fails half-way, such as the Python original's, leaves the database as it found it.
async fn migrate_all_or_nothing(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// The database could not be reached, went away during the request, or rolled the request's
/// transaction back for a conflict with another ([`is_conflict`]): the failure is not the
/// request's, and a retry may succeed.
pub fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_error))) = error
    else {
        return matches!(error, DbErr::ConnectionAcquire(_) | DbErr::Conn(_));
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        // Postgres shutting down or restarting ends the session with one of these (class 57P).
        sqlx::Error::Database(_) => {
            sql_state(error).is_some_and(|code| code.starts_with("57P") || applied_nothing(&code))
        }
        _ => false,
    }
}

/// The database rolled the statement's transaction back because it conflicted with another
/// transaction: a deadlock's victim, a serialization failure, or a standby's query cancelled by
/// the changes it replays. Nothing of the transaction happened, and the same transaction tried
/// again seldom meets the same conflict.
pub fn is_conflict(error: &DbErr) -> bool {
    sql_state(error).is_some_and(|code| code.starts_with(ROLLED_BACK))
}

/// For a failure that [`is_unavailable`]: whether a statement may have reached the database
/// before the connection failed, so that a write may have been applied. Failing to get a
/// connection at all means nothing was sent, and an answer that [`applied_nothing`] means what
/// it says.
pub fn may_have_been_sent(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => false,
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_error)) => {
            !matches!(
                sqlx_error.as_ref(),
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            ) && !sql_state(error).is_some_and(|code| applied_nothing(&code))
        }
        _ => true,
    }
}

/// SQLSTATE `read_only_sql_transaction`: the server is a standby (or the database is set read
/// only), reached while a failover moves the primary.
const READ_ONLY: &str = "25006";
/// SQLSTATE class `transaction_rollback` (40001 serialization failure, 40P01 deadlock detected).
const ROLLED_BACK: &str = "40";

/// An error the database answered for a statement it applied nothing of: a write refused as read
/// only, or a transaction rolled back whole for a conflict.
fn applied_nothing(code: &str) -> bool {
    code == READ_ONLY || code.starts_with(ROLLED_BACK)
}

fn sql_state(error: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        error
    else {
        return None;
    };
    match error.as_ref() {
        sqlx::Error::Database(error) => error.code().map(|code| code.into_owned()),
        _ => None,
    }
}
