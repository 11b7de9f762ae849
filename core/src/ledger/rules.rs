//! The money rules, each written once with the refusal it earns.
//!
//! What a request may ask for is checked when a [`Posting`] or [`Transfer`] is made: amounts from
//! 0 to `MAX_AMOUNT`, a posting that moves something, a transfer to another account. What the
//! accounts allow is [`rules`]: the caller's scope, the floor and the balance limit, each a
//! condition on the account's row with the refusal it earns. The same list is the `WHERE` of the
//! step-by-step path's conditional updates (`steps`), and, with SQL variables for its terms, the
//! checks of the grouped statement Postgres runs (`grouped`).

use entity::account;
use sea_orm::{
    ExprTrait,
    sea_query::{Condition, Expr},
};

use super::{LedgerError, scope};
use crate::domain::{AccountId, Amount, DomainError, MAX_BALANCE, Scope};

/// Money into and out of one account: each side 0 to `MAX_AMOUNT`, not both zero.
#[derive(Clone, Copy, Debug)]
pub struct Posting {
    pub account: AccountId,
    pub credit: Amount,
    pub debit: Amount,
}

/// A part of a posting a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostingPart {
    Credit,
    Debit,
    /// The posting as a whole (a posting of nothing).
    Whole,
}

/// A part of a transfer a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferPart {
    Amount,
    /// The account it goes to.
    Receiver,
}

/// Every rule a posting or transfer broke before it reached an account, each with the part
/// (`P`) that broke it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0:?}")]
pub struct Invalid<P: std::fmt::Debug>(pub Vec<(P, DomainError)>);

impl<P: std::fmt::Debug> Invalid<P> {
    pub(super) fn check<T>(&mut self, part: P, value: Result<T, DomainError>) -> Option<T> {
        value.map_err(|error| self.0.push((part, error))).ok()
    }

    /// `Ok(value)` when no rule was broken; `value` is only built then.
    pub(super) fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Self> {
        match value() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self),
        }
    }
}

impl Posting {
    pub fn new(account: AccountId, credit: i64, debit: i64) -> Result<Self, Invalid<PostingPart>> {
        let mut invalid = Invalid(Vec::new());
        let credit_amount = invalid.check(PostingPart::Credit, Amount::try_from(credit));
        let debit_amount = invalid.check(PostingPart::Debit, Amount::try_from(debit));
        if credit == 0 && debit == 0 {
            invalid
                .0
                .push((PostingPart::Whole, DomainError::NothingToPost));
        }
        invalid.finish(|| {
            Some(Self {
                account,
                credit: credit_amount?,
                debit: debit_amount?,
            })
        })
    }

    pub(super) fn change(&self, scope: Scope) -> BalanceChange {
        BalanceChange::moving(
            self.account,
            self.credit.minor_units() - self.debit.minor_units(),
            scope,
        )
    }
}

/// Money from one account to another: 1 to `MAX_AMOUNT`, between two different accounts.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
}

impl Transfer {
    pub fn new(from: AccountId, to: AccountId, amount: i64) -> Result<Self, Invalid<TransferPart>> {
        let mut invalid = Invalid(Vec::new());
        let amount = invalid.check(TransferPart::Amount, Amount::positive(amount));
        if from == to {
            invalid
                .0
                .push((TransferPart::Receiver, DomainError::SameAccount));
        }
        invalid.finish(|| {
            Some(Self {
                from,
                to,
                amount: amount?,
            })
        })
    }

    /// The sender's change, then the receiver's. Only the sender must be in the caller's scope:
    /// anyone may receive money.
    pub(super) fn changes(&self, scope: Scope) -> [BalanceChange; 2] {
        let amount = self.amount.minor_units();
        [
            BalanceChange::moving(self.from, -amount, scope),
            BalanceChange::moving(self.to, amount, Scope::All),
        ]
    }
}

/// `delta` added to one account's balance and `held` to what is held on it, on behalf of a
/// caller whose scope is `scope`.
#[derive(Clone, Copy, Debug)]
pub(super) struct BalanceChange {
    pub account: AccountId,
    pub delta: i64,
    pub held: i64,
    pub scope: Scope,
}

impl BalanceChange {
    /// `delta` added to the balance, nothing held.
    pub(super) fn moving(account: AccountId, delta: i64, scope: Scope) -> Self {
        Self {
            account,
            delta,
            held: 0,
            scope,
        }
    }

    pub(super) fn terms(&self) -> Terms {
        Terms {
            delta: Expr::val(self.delta),
            held: Expr::val(self.held),
            lowers: Some(self.delta - self.held < 0),
            owned: scope::admits(self.scope),
        }
    }

    /// The account's row, when every rule holds for it.
    pub(super) fn condition(&self) -> Condition {
        let row = Condition::all().add(Expr::col(account::Column::Id).eq(self.account.0));
        rules(&self.terms())
            .into_iter()
            .fold(row, |condition, rule| condition.add(rule.holds))
    }
}

/// What the rules are judged on: the amounts added to the balance and to what is held, whether
/// the change lowers what may be spent (`None`: known only when the statement runs), and the
/// condition on the account's owner (`None`: any).
pub(super) struct Terms {
    pub delta: Expr,
    pub held: Expr,
    pub lowers: Option<bool>,
    pub owned: Option<Expr>,
}

impl Terms {
    pub(super) fn new_balance(&self) -> Expr {
        Expr::col(account::Column::Balance).add(self.delta.clone())
    }

    pub(super) fn new_held(&self) -> Expr {
        Expr::col(account::Column::Held).add(self.held.clone())
    }

    /// What may be spent after the change: the balance less every pending hold.
    fn new_available(&self) -> Expr {
        self.new_balance().sub(self.new_held())
    }
}

/// A condition on the account's row, and what the change gets when it does not hold.
pub(super) struct Rule {
    pub holds: Expr,
    pub otherwise: LedgerError,
}

/// The rules a change to an account's balance must meet, in the order a refusal is told.
pub(super) fn rules(terms: &Terms) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(3);
    if let Some(owned) = &terms.owned {
        rules.push(Rule {
            holds: owned.clone(),
            otherwise: LedgerError::AccountNotFound,
        });
    }
    // The floor is judged on what may be spent, the balance less what is held, so no order of
    // holds and movements can spend money twice. Only a change that lowers it is held to the
    // floor: an account upgraded overdrawn from the Python original may receive money while
    // still below zero, and a capture or release only gives back what a hold reserved.
    let floor = terms.new_available().gte(0);
    let floor = match terms.lowers {
        Some(true) => Some(floor),
        Some(false) => None,
        None => Some(terms.delta.clone().sub(terms.held.clone()).gte(0).or(floor)),
    };
    if let Some(floor) = floor {
        rules.push(Rule {
            holds: floor,
            otherwise: LedgerError::InsufficientFunds,
        });
    }
    rules.push(Rule {
        holds: terms.new_balance().lte(MAX_BALANCE),
        otherwise: LedgerError::BalanceLimitExceeded,
    });
    rules
}
