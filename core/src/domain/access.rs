//! Who owns what: the ids of accounts and users, and the scope of accounts a caller may act on.

use serde::{Deserialize, Serialize};

/// An account's id, as stored and as clients send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

/// A user's id, as stored and as tokens carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// Whose accounts a request may read and move money from: everyone's (an operator's request), or
/// one customer's. The ledger applies it inside each query, so another customer's account or
/// ledger row is simply not found: the same answer as a missing one, with no way to tell them
/// apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    OwnedBy(UserId),
}

impl Scope {
    /// The owner every account in this scope has; `None`: any owner, or none.
    pub fn owner(self) -> Option<UserId> {
        match self {
            Self::All => None,
            Self::OwnedBy(user) => Some(user),
        }
    }
}
