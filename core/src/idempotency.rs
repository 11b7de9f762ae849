//! Idempotency keys: a write sent again with the same key and body is answered from the database
//! instead of being applied twice. Keys live in the database, so they hold across restarts and
//! across several server processes, and each user has keys of their own: another user's key never
//! replays, refuses or reveals anything. And whatever the key, a write whose connection fails is
//! settled before it is answered, so that "not done" is only said of what was not done.

use std::time::Duration;

use entity::idempotency_key;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, DbErr,
    EntityTrait, Set, TransactionTrait, TryInsertResult,
};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    database,
    domain::{IdempotencyKey, UserId},
    ledger::{self, FromLedgerRows, LedgerError, Settled},
};

/// Why a write was not carried out, or may not have been.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The key was used before, with a different request.
    #[error("the idempotency key was used before with a different request")]
    KeyReused,
    /// The ledger refused the write, or a statement failed before anything was written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The connection failed after the write was sent, and the database has since confirmed
    /// that it was not applied (and now never will be).
    #[error("write not applied: {0}")]
    NotApplied(#[source] DbErr),
    /// The connection failed after the write was sent, and the database could not be asked in
    /// time whether it was applied.
    #[error("write outcome unknown: {0}")]
    OutcomeUnknown(#[source] DbErr),
}

impl From<DbErr> for WriteError {
    fn from(error: DbErr) -> Self {
        Self::Ledger(LedgerError::Database(error))
    }
}

/// A request's `Idempotency-Key`, and the user who sent it (`None` when access control is off).
pub struct OwnedKey {
    pub owner: Option<UserId>,
    pub key: IdempotencyKey,
}

/// The owner of every key when access control is off: all callers are one.
const EVERYONE: i64 = 0;
/// The owner of the keys stored before keys were per user (see the migration that made them so).
const BEFORE_OWNERS: i64 = -1;

impl OwnedKey {
    fn owner_id(&self) -> i64 {
        self.owner.map_or(EVERYONE, |owner| owner.0)
    }

    /// What a key stored before keys were per user was fingerprinted with: the route named the
    /// user, so only that user's identical request matches it.
    fn route_before_owners(&self, route: &str) -> String {
        match self.owner {
            Some(owner) => format!("{route} by user {}", owner.0),
            None => route.to_owned(),
        }
    }
}

/// What a write returned, and whether it was replayed from an earlier request.
pub struct Outcome<T> {
    pub value: T,
    pub replayed: bool,
}

/// Runs `write`, which is atomic by itself (see `ledger`) and stores its ledger rows under the
/// write id it is given.
///
/// If the connection fails once the write may have been sent, the answer is learned before it is
/// given (`ledger::settle`, within `settle_within`): the write's value if it was applied,
/// [`WriteError::NotApplied`] only if it certainly was not, and [`WriteError::OutcomeUnknown`]
/// if the database could not be asked in time.
pub async fn run<T, Body>(
    db: &DatabaseConnection,
    key: Option<OwnedKey>,
    route: &str,
    body: &Body,
    settle_within: Duration,
    write: impl AsyncFnOnce(&DatabaseExecutor<'_>, Uuid) -> Result<T, LedgerError>,
) -> Result<Outcome<T>, WriteError>
where
    T: Serialize + DeserializeOwned + FromLedgerRows,
    Body: Serialize,
{
    let write_id = Uuid::new_v4();
    let cause = match run_once(db, key, route, body, write_id, write).await {
        Err(WriteError::Ledger(LedgerError::Database(cause)))
            if database::is_unavailable(&cause) && database::may_have_been_sent(&cause) =>
        {
            cause
        }
        done => return done,
    };
    match ledger::settle(db, write_id, settle_within).await {
        Some(Settled::NotApplied) => Err(WriteError::NotApplied(cause)),
        Some(Settled::Applied(rows)) => {
            log::warn!("write {write_id} was applied although its connection failed: {cause}");
            let value = T::from_ledger_rows(rows).ok_or(LedgerError::Database(cause))?;
            Ok(Outcome {
                value,
                replayed: false,
            })
        }
        None => Err(WriteError::OutcomeUnknown(cause)),
    }
}

/// With a key, `write` runs in a transaction that first claims the key: a concurrent request with
/// the same key waits for this one and then replays its result. A failed write rolls back the
/// claim too, so it can be retried. Without a key there is nothing to claim, and `write` gets the
/// pool: on Postgres a posting is then one statement, not a transaction of four.
async fn run_once<T, Body>(
    db: &DatabaseConnection,
    key: Option<OwnedKey>,
    route: &str,
    body: &Body,
    write_id: Uuid,
    write: impl AsyncFnOnce(&DatabaseExecutor<'_>, Uuid) -> Result<T, LedgerError>,
) -> Result<Outcome<T>, WriteError>
where
    T: Serialize + DeserializeOwned,
    Body: Serialize,
{
    let Some(key) = key else {
        let value = write(&db.into(), write_id).await?;
        return Ok(Outcome {
            value,
            replayed: false,
        });
    };
    let txn = db.begin().await?;
    let fingerprint = fingerprint(route, body);
    let stored = match claim(&txn, &key, &fingerprint).await? {
        Some(stored) if stored.fingerprint != fingerprint => return Err(WriteError::KeyReused),
        Some(stored) => Some(stored),
        None => {
            let before = self::fingerprint(&key.route_before_owners(route), body);
            stored_before_owners(&txn, &key, &before).await?
        }
    };
    if let Some(stored) = stored {
        let value = serde_json::from_str(&stored.response_body)
            .map_err(|error| DbErr::Json(error.to_string()))?;
        return Ok(Outcome {
            value,
            replayed: true,
        });
    }
    let value = write(&(&txn).into(), write_id).await?;
    let response_body =
        serde_json::to_string(&value).map_err(|error| DbErr::Json(error.to_string()))?;
    idempotency_key::ActiveModel {
        owner_id: Set(key.owner_id()),
        key: Set(key.key.as_str().to_owned()),
        response_body: Set(response_body),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    Ok(Outcome {
        value,
        replayed: false,
    })
}

/// Inserts the owner's key; if they have used it before, returns what is stored under it instead.
async fn claim(
    txn: &DatabaseTransaction,
    key: &OwnedKey,
    fingerprint: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    let row = idempotency_key::ActiveModel {
        owner_id: Set(key.owner_id()),
        key: Set(key.key.as_str().to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        response_body: Set(String::new()),
        created_at: Set(chrono::Utc::now()),
    };
    let inserted = idempotency_key::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(txn)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(1)) {
        return Ok(None);
    }
    idempotency_key::Entity::find_by_id((key.owner_id(), key.key.as_str().to_owned()))
        .one(txn)
        .await
}

/// The answer stored under this key before keys were per user, if it was this very request's
/// (`fingerprint` names the user): a retry sent across the upgrade is still applied only once.
/// Anyone else's is ignored, so it reveals nothing.
async fn stored_before_owners(
    txn: &DatabaseTransaction,
    key: &OwnedKey,
    fingerprint: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    let stored = idempotency_key::Entity::find_by_id((BEFORE_OWNERS, key.key.as_str().to_owned()))
        .one(txn)
        .await?;
    Ok(stored.filter(|stored| stored.fingerprint == fingerprint))
}

/// Identifies a request by route and parsed body, so formatting differences do not matter.
fn fingerprint(route: &str, body: &impl Serialize) -> String {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(route)
        .chain_update(&body)
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}
