//! Idempotency keys: a write sent again with the same key and body is answered with its first
//! outcome instead of being applied twice. Keys live in the database, claimed in the same
//! transaction as the write they name (`ledger::writes`), so they hold across restarts and across
//! several server processes, and concurrent requests with one key apply once. Each user has keys
//! of their own: another user's key never replays, refuses or reveals anything. A write that is
//! refused does not use up its key.

use entity::idempotency_key;
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set, TryInsertResult};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{IdempotencyKey, UserId},
    ledger::{LedgerError, Stored},
};

/// Why a write was not carried out, or may not have been. `R` is what the ledger may refuse it
/// for: the money rules, or a hold's rules too.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<R = LedgerError> {
    /// The key was used before, with a different request.
    #[error("the idempotency key was used before with a different request")]
    KeyReused,
    /// The ledger refused the write, or a statement failed before anything was written.
    #[error(transparent)]
    Ledger(#[from] R),
    /// The connection failed after the write was sent, and the database has since confirmed
    /// that it was not applied (and now never will be).
    #[error("write not applied: {0}")]
    NotApplied(#[source] DbErr),
    /// The connection failed after the write was sent, and the database could not be asked in
    /// time whether it was applied.
    #[error("write outcome unknown: {0}")]
    OutcomeUnknown(#[source] DbErr),
}

/// A request's idempotency key, and the user who sent it (`None` when access control is off).
#[derive(Debug)]
pub struct OwnedKey {
    pub owner: Option<UserId>,
    pub key: IdempotencyKey,
}

/// The owner of every key when access control is off: all callers are one.
const EVERYONE: i64 = 0;
/// The owner of the keys stored before keys were per user (see the migration that made them so).
const BEFORE_OWNERS: i64 = -1;

/// A key as a write claims it: whose it is, and the fingerprint of the request it stands for.
#[derive(Debug)]
pub struct Claim {
    key: OwnedKey,
    pub(crate) fingerprint: String,
    /// What a key stored before keys were per user was fingerprinted with: the operation named
    /// the user, so only that user's identical request matches it.
    pub(crate) before_owners: String,
}

impl Claim {
    /// `operation` names what is asked (`POST /transactions`); `body` is the request as parsed,
    /// so that formatting differences do not matter.
    pub fn new(key: OwnedKey, operation: &str, body: &impl Serialize) -> Self {
        let before_owners = match key.owner {
            Some(owner) => format!("{operation} by user {}", owner.0),
            None => operation.to_owned(),
        };
        Self {
            fingerprint: fingerprint(operation, body),
            before_owners: fingerprint(&before_owners, body),
            key,
        }
    }

    pub(crate) fn owner_id(&self) -> i64 {
        self.key.owner.map_or(EVERYONE, |owner| owner.0)
    }

    pub(crate) fn key(&self) -> &str {
        self.key.key.as_str()
    }
}

/// What a key was already used for, when it was.
pub(crate) enum Earlier<T> {
    /// Another request.
    Reused,
    /// This same request: what its write stored, read again.
    Write(T),
    /// This same request, answered before keys named their write: the answer it stored.
    Answered(String),
}

/// Claims the key for the write stored under `write_id`, inside its transaction (the
/// step-by-step path; the grouped statement does the same in SQL). `None`: claimed, the write
/// may go on; a concurrent request with the same key waits for this transaction.
pub(crate) async fn claim<T: Stored>(
    txn: &DatabaseTransaction,
    claim: &Claim,
    write_id: Uuid,
) -> Result<Option<Earlier<T>>, DbErr> {
    let row = idempotency_key::ActiveModel {
        owner_id: Set(claim.owner_id()),
        key: Set(claim.key().to_owned()),
        fingerprint: Set(claim.fingerprint.clone()),
        response_body: Set(String::new()),
        created_at: Set(chrono::Utc::now()),
        write_id: Set(Some(write_id)),
    };
    let inserted = idempotency_key::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(txn)
        .await?;
    let stored = if matches!(inserted, TryInsertResult::Inserted(1)) {
        // A key stored before keys were per user replays only this very request, that user's
        // retry across the upgrade; anyone else's is ignored, so it reveals nothing.
        let before = idempotency_key::Entity::find_by_id((BEFORE_OWNERS, claim.key().to_owned()))
            .one(txn)
            .await?;
        match before.filter(|before| before.fingerprint == claim.before_owners) {
            Some(before) => before,
            None => return Ok(None),
        }
    } else {
        let stored =
            idempotency_key::Entity::find_by_id((claim.owner_id(), claim.key().to_owned()))
                .one(txn)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("a key that conflicted".into()))?;
        if stored.fingerprint != claim.fingerprint {
            return Ok(Some(Earlier::Reused));
        }
        stored
    };
    let earlier = match stored.write_id {
        Some(write_id) => Earlier::Write(
            T::read(txn, write_id)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("the write a key names".into()))?,
        ),
        None => Earlier::Answered(stored.response_body),
    };
    Ok(Some(earlier))
}

/// Identifies a request by its operation and parsed body.
fn fingerprint(operation: &str, body: &impl Serialize) -> String {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(operation)
        .chain_update(&body)
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}
