//! The ledger and the money rules it keeps. Every balance change happens here, in the same
//! atomic step as the ledger row that explains it, so concurrent requests can never overdraw, on
//! SQLite or Postgres, with one server process or several.
//!
//! - `writes`: the front door of every posting and transfer ([`Ledger::write`]), keys and all.
//! - `rules`: what a posting and a transfer must satisfy, each rule written once with the
//!   refusal it earns.
//! - `grouping` and `grouped`: on Postgres, writes waiting at the same moment go together, as
//!   one call of a server-side function whose checks are rendered from `rules`.
//! - `holds`: money reserved now and moved or released later, once.
//! - `steps`: elsewhere, each write step by step in a transaction of its own, under the same
//!   rules.
//! - `reads`: accounts, balances and ledger rows, a page at a time, within the caller's scope.
//! - `coalesce`: primary-key reads of accounts waiting at the same moment, in one statement.
//! - `linked`: the span of work done once for several requests, in each one's trace.
//! - `scope`: whose accounts a statement may touch, the one condition every statement uses.
//! - `pause`: a slow statement, when a fault flag asks for one.
//! - `fencing`: the id every write is stored under, and settling a write whose connection failed.
//!
//! It speaks SeaORM and its own [`LedgerError`]; what a refusal means to a client is decided by
//! the web crate.

mod coalesce;
mod fencing;
mod grouped;
mod grouping;
mod holds;
mod kept;
mod linked;
mod pause;
mod reads;
mod rules;
mod scope;
mod steps;
mod writes;

pub use fencing::{FromLedgerRows, Settled, Stored, settle};
pub use grouped::TABLE_AT_A_TIME;
pub use grouping::{GroupObserver, PART_AT_LEAST};
pub use holds::{
    HoldAction, HoldError, HoldPart, HoldStatus, HoldWrite, HoldWritten, NewHold, Swept,
    expire_holds, hold, holds, keep_holds_expiring,
};
pub use pause::Pause;
pub use reads::{
    Accounts, Listed, NewAccount, Page, account, account_transactions, accounts, open_account,
    transaction, transactions,
};
pub use rules::{Invalid, Posting, PostingPart, Transfer, TransferPart};
pub use writes::{Ledger, Movement, Replay, Together, Write, Written};

/// Prepares the database for the grouped statement (Postgres): run once at start-up, under the
/// migration lock.
pub async fn install(db: &impl sea_orm::ConnectionTrait) -> Result<(), DbErr> {
    grouped::FUNCTION.install(db).await
}

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::DbErr;

/// Why the ledger did not move money as asked, in words for logs.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// No such account, or not one the caller may act on: the two look the same.
    #[error("no such account in the caller's scope")]
    AccountNotFound,
    /// The change would take what may be spent (the balance less what is held) below its floor.
    #[error("the balance would go below its floor")]
    InsufficientFunds,
    /// The change would take the balance above `MAX_BALANCE`.
    #[error("the balance would go above the limit")]
    BalanceLimitExceeded,
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// Microseconds are what Postgres stores; truncating here makes every backend return what it was
/// given.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
