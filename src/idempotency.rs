//! `Idempotency-Key`: a write sent again with the same key and body is answered from the database
//! instead of being applied twice. Keys live in the database, so they hold across restarts and
//! across several server processes.

use std::{
    future::{Ready, ready},
    time::Duration,
};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use entity::idempotency_key;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, EntityTrait, Set,
    TransactionTrait, TryInsertResult,
};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    error::{ApiError, Loc},
    ledger::{self, FromLedgerRows, Settled},
};

pub const HEADER: &str = "Idempotency-Key";
/// Set on a response that was replayed from a stored key rather than applied again.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
const MAX_KEY_LEN: usize = 255;

/// The optional `Idempotency-Key` header; a present but malformed key is a 422, not ignored.
pub struct IdempotencyKey(Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_header(req).map(Self))
    }
}

fn parse_header(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let valid = (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::validation(
            Loc::Header(HEADER),
            "Idempotency-Key should be 1 to 255 visible ASCII characters",
            "idempotency_key",
        ));
    }
    Ok(Some(key.to_owned()))
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
/// given (`ledger::settle`, within `settle_within`): 201 if the write was applied, 503 only if it
/// certainly was not, and 500 `OUTCOME_UNKNOWN` if the database could not be asked in time. A 503
/// thus always means "not done: retry".
pub async fn run<T, Body>(
    db: &DatabaseConnection,
    key: IdempotencyKey,
    route: &str,
    body: &Body,
    settle_within: Duration,
    write: impl AsyncFnOnce(&DatabaseExecutor<'_>, Uuid) -> Result<T, ApiError>,
) -> Result<Outcome<T>, ApiError>
where
    T: Serialize + DeserializeOwned + FromLedgerRows,
    Body: Serialize,
{
    let write_id = Uuid::new_v4();
    let error = match run_once(db, key, route, body, write_id, write).await {
        Err(error) if error.write_may_have_been_sent() => error,
        done => return done,
    };
    let ApiError::Unavailable(cause) = error else {
        return Err(error);
    };
    match ledger::settle(db, write_id, settle_within).await {
        Some(Settled::NotApplied) => Err(ApiError::Unavailable(cause)),
        Some(Settled::Applied(rows)) => {
            log::warn!("write {write_id} was applied although its connection failed: {cause}");
            let value = T::from_ledger_rows(rows).ok_or(ApiError::Database(cause))?;
            Ok(Outcome {
                value,
                replayed: false,
            })
        }
        None => Err(ApiError::OutcomeUnknown(cause)),
    }
}

/// With a key, `write` runs in a transaction that first claims the key: a concurrent request with
/// the same key waits for this one and then replays its result. A failed write rolls back the
/// claim too, so it can be retried. Without a key there is nothing to claim, and `write` gets the
/// pool: on Postgres a write is then one statement, not a transaction of four.
async fn run_once<T, Body>(
    db: &DatabaseConnection,
    key: IdempotencyKey,
    route: &str,
    body: &Body,
    write_id: Uuid,
    write: impl AsyncFnOnce(&DatabaseExecutor<'_>, Uuid) -> Result<T, ApiError>,
) -> Result<Outcome<T>, ApiError>
where
    T: Serialize + DeserializeOwned,
    Body: Serialize,
{
    let Some(key) = key.0 else {
        let value = write(&db.into(), write_id).await?;
        return Ok(Outcome {
            value,
            replayed: false,
        });
    };
    let txn = db.begin().await?;
    let fingerprint = fingerprint(route, body);
    if let Some(stored) = claim(&txn, &key, &fingerprint).await? {
        if stored.fingerprint != fingerprint {
            return Err(ApiError::validation(
                Loc::Header(HEADER),
                "Idempotency-Key was already used with a different request",
                "idempotency_key_reused",
            ));
        }
        let value = serde_json::from_str(&stored.response_body)
            .map_err(|error| ApiError::Database(sea_orm::DbErr::Json(error.to_string())))?;
        return Ok(Outcome {
            value,
            replayed: true,
        });
    }
    let value = write(&(&txn).into(), write_id).await?;
    let response_body = serde_json::to_string(&value)
        .map_err(|error| ApiError::Database(sea_orm::DbErr::Json(error.to_string())))?;
    idempotency_key::ActiveModel {
        key: Set(key),
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

/// Inserts the key; if it already exists, returns what is stored under it instead.
async fn claim(
    txn: &DatabaseTransaction,
    key: &str,
    fingerprint: &str,
) -> Result<Option<idempotency_key::Model>, ApiError> {
    let row = idempotency_key::ActiveModel {
        key: Set(key.to_owned()),
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
    Ok(idempotency_key::Entity::find_by_id(key).one(txn).await?)
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
