//! Holds: money reserved on one account for another now, moved or released later, once.
//!
//! A pending hold counts in its source's `held`, and every rule on what may be spent judges the
//! balance less what is held (`rules`), so no order of holds, captures, voids, postings and
//! transfers can take an account below its floor. A capture moves all or part of the hold (as a
//! debit and a credit, like a transfer) and releases the rest; a void or the expiry releases it
//! all. The statement that resolves a hold changes it only while it is pending and unexpired, so
//! of a capture and a void racing, exactly one finds it so, and a capture after the expiry is
//! refused whether or not the sweeper has released it yet.
//!
//! Holds are written step by step, in a transaction of their own, on every backend, with keys
//! and fencing like every other write (`Ledger::hold`).
//!
//! - `writes`: creating, capturing, voiding and expiring holds.
//! - `reads`: a hold, and a page of them, within the caller's scope (its source's owner's).

mod reads;
mod writes;

pub use reads::{hold, holds};

use std::time::Duration;

use entity::hold;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait};
use uuid::Uuid;

use super::{Invalid, Ledger, LedgerError, Stored, writes::once_more_on_conflict};
use crate::{
    domain::{AccountId, Amount, DomainError, Expiry, Scope, time_ordered_uuid},
    idempotency::{Claim, WriteError},
};

/// Where a hold is in its life. It leaves `Pending` once, and never comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldStatus {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl HoldStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Captured, Self::Voided, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    pub fn of(hold: &hold::Model) -> Result<Self, DbErr> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == hold.status)
            .ok_or_else(|| DbErr::Custom(format!("a hold whose status is {}", hold.status)))
    }
}

/// Money to reserve on `from` for `to`, for at most `expires_in`.
#[derive(Clone, Copy, Debug)]
pub struct NewHold {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
    pub expires_in: Expiry,
}

/// A part of a hold a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldPart {
    Amount,
    /// The account it is for.
    Receiver,
    Expiry,
}

impl NewHold {
    pub fn new(
        from: AccountId,
        to: AccountId,
        amount: i64,
        expires_in: i64,
    ) -> Result<Self, Invalid<HoldPart>> {
        let mut invalid = Invalid(Vec::new());
        let amount = invalid.check(HoldPart::Amount, Amount::positive(amount));
        let expires_in = invalid.check(HoldPart::Expiry, Expiry::try_from(expires_in));
        if from == to {
            invalid
                .0
                .push((HoldPart::Receiver, DomainError::SameAccount));
        }
        invalid.finish(|| {
            Some(Self {
                from,
                to,
                amount: amount?,
                expires_in: expires_in?,
            })
        })
    }
}

/// What a request does with holds.
#[derive(Clone, Copy, Debug)]
pub enum HoldAction {
    Create(NewHold),
    /// Moves `amount` (all of the hold when `None`) and releases the rest.
    Capture {
        hold: i64,
        amount: Option<Amount>,
    },
    Void {
        hold: i64,
    },
}

/// One write of a hold: what is done, on behalf of whom, the key it is claimed under, and the
/// `traceparent` of the request that asked for it.
#[derive(Debug)]
pub struct HoldWrite {
    pub action: HoldAction,
    pub scope: Scope,
    pub claim: Option<Claim>,
    pub trace: Option<String>,
}

/// Why a hold was not made or resolved as asked, in words for logs.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// No such hold, or not one the caller may act on: the two look the same.
    #[error("no such hold in the caller's scope")]
    NotFound,
    /// It was resolved before (or has expired), and a hold resolves once.
    #[error("the hold is {} already", .0.as_str())]
    Resolved(HoldStatus),
    #[error("a capture of more than the hold")]
    MoreThanHeld,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<DbErr> for HoldError {
    fn from(error: DbErr) -> Self {
        Self::Ledger(error.into())
    }
}

/// A round of the sweeper: how many holds it released, and how many are pending now, holding how
/// much money, in every account together.
#[derive(Clone, Copy, Debug)]
pub struct Swept {
    pub expired: u64,
    pub pending: u64,
    pub held: i64,
}

/// A hold as a write left it, or as it stands now when the write is replayed from its key.
#[derive(Debug)]
pub struct HoldWritten {
    pub hold: hold::Model,
    pub replayed: bool,
}

/// The hold a stored write made or resolved.
impl Stored for hold::Model {
    async fn read(db: &impl ConnectionTrait, write_id: Uuid) -> Result<Option<Self>, DbErr> {
        let Some(write) = entity::ledger_write::Entity::find_by_id(write_id)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let Some(id) = write.hold_id else {
            return Err(DbErr::Custom(format!("write {write_id} names no hold")));
        };
        hold::Entity::find_by_id(id).one(db).await
    }
}

impl Ledger {
    /// Creates, captures or voids a hold. Like every write, its outcome is settled from the
    /// database when its connection fails after it was sent.
    pub async fn hold(&self, write: HoldWrite) -> Result<HoldWritten, WriteError<HoldError>> {
        let write_id = time_ordered_uuid();
        let written = |hold, replayed| HoldWritten { hold, replayed };
        match once_more_on_conflict(async || writes::write(&self.db, &write, write_id).await).await
        {
            Ok(writes::Outcome::Done(hold)) => Ok(written(hold, false)),
            Ok(writes::Outcome::Replayed(hold)) => Ok(written(hold, true)),
            Ok(writes::Outcome::KeyReused) => Err(WriteError::KeyReused),
            Ok(writes::Outcome::Refused(HoldError::Ledger(LedgerError::Database(cause))))
            | Err(cause) => self
                .settle(write_id, cause)
                .await
                .map(|hold| written(hold, false)),
            Ok(writes::Outcome::Refused(refused)) => Err(WriteError::Ledger(refused)),
        }
    }
}

/// Releases pending holds past their expiry every `period`, for as long as it runs, telling
/// `swept` what each round released and what is still held; a failed pass ends it. Safe to run
/// on every replica at once: each hold expires once.
pub async fn keep_holds_expiring(
    db: &DatabaseConnection,
    period: Duration,
    swept: impl Fn(Swept),
) -> Result<(), DbErr> {
    let mut every = tokio::time::interval(period);
    loop {
        every.tick().await;
        let mut expired = 0;
        // A full pass may leave more behind: go on at once.
        loop {
            let released = expire_holds(db).await?;
            expired += released;
            if released < writes::SWEEP {
                break;
            }
        }
        let (pending, held) = reads::pending(db).await?;
        swept(Swept {
            expired,
            pending,
            held,
        });
    }
}

/// One pass of [`keep_holds_expiring`]: releases up to a batch of pending holds past their
/// expiry, each in a transaction of its own; how many.
pub async fn expire_holds(db: &DatabaseConnection) -> Result<u64, DbErr> {
    writes::expire_due(db).await
}
