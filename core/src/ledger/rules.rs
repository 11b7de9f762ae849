//! The money rules, each written once with the refusal it earns.
//!
//! What a request may ask for is checked when a [`Posting`] or [`Transfer`] is made: amounts from
//! 0 to `MAX_AMOUNT`, a posting that moves something, a transfer to another account. What the
//! accounts allow is [`BalanceChange::rules`]: the caller's scope, the floor and the balance
//! limit. Those rules are the `WHERE` of every conditional `UPDATE` of a balance (one statement
//! on Postgres, or [`apply_step_by_step`]), and when an update changes nothing, the columns of
//! the `SELECT` that finds which rule refused it ([`refusal`]).

use entity::account;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, ExprTrait, IdenStatic,
    sea_query::{Condition, Expr, LockType, Query, UpdateStatement},
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
    fn check<T>(&mut self, part: P, value: Result<T, DomainError>) -> Option<T> {
        value.map_err(|error| self.0.push((part, error))).ok()
    }

    /// `Ok(value)` when no rule was broken; `value` is only built then.
    fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Self> {
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
        BalanceChange {
            account: self.account,
            delta: self.credit.minor_units() - self.debit.minor_units(),
            scope,
        }
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
            BalanceChange {
                account: self.from,
                delta: -amount,
                scope,
            },
            BalanceChange {
                account: self.to,
                delta: amount,
                scope: Scope::All,
            },
        ]
    }
}

/// `delta` added to one account's balance, on behalf of a caller whose scope is `scope`.
#[derive(Clone, Copy, Debug)]
pub(super) struct BalanceChange {
    pub account: AccountId,
    pub delta: i64,
    pub scope: Scope,
}

/// A condition on the account's row, and what the change gets when it does not hold.
struct Rule {
    holds: Expr,
    otherwise: fn() -> LedgerError,
}

impl BalanceChange {
    pub(super) fn new_balance(&self) -> Expr {
        Expr::col(account::Column::Balance).add(self.delta)
    }

    fn rules(&self) -> Vec<Rule> {
        let mut rules = Vec::with_capacity(3);
        if let Some(owned) = scope::admits(self.scope) {
            rules.push(Rule {
                holds: owned,
                otherwise: || LedgerError::AccountNotFound,
            });
        }
        // Only a change that lowers the balance is held to the floor: an account upgraded
        // overdrawn from the Python original may receive money while still below zero.
        if self.delta < 0 {
            rules.push(Rule {
                holds: self.new_balance().gte(0),
                otherwise: || LedgerError::InsufficientFunds,
            });
        }
        rules.push(Rule {
            holds: self.new_balance().lte(MAX_BALANCE),
            otherwise: || LedgerError::BalanceLimitExceeded,
        });
        rules
    }

    /// The account's row, when every rule holds for it.
    fn condition(&self) -> Condition {
        let row = Condition::all().add(Expr::col(account::Column::Id).eq(self.account.0));
        self.rules()
            .into_iter()
            .fold(row, |condition, rule| condition.add(rule.holds))
    }

    /// The guarded change: adds `delta` to the account's balance where every rule holds, and
    /// returns the account's id and new balance (no row: a rule refused it, or no such account).
    /// The one statement a posting runs on Postgres and each step of the step-by-step path.
    pub(super) fn guarded_update(&self) -> UpdateStatement {
        Query::update()
            .table(account::Entity)
            .value(account::Column::Balance, self.new_balance())
            .cond_where(self.condition())
            .returning(Query::returning().columns([account::Column::Id, account::Column::Balance]))
            .to_owned()
    }

    /// Adds `delta` if every rule holds, in one statement; the new balance, or `None`.
    async fn apply(&self, txn: &DatabaseTransaction) -> Result<Option<i64>, DbErr> {
        let statement = txn.get_database_backend().build(&self.guarded_update());
        let updated = txn.query_one_raw(statement).await?;
        updated
            .map(|row| row.try_get::<i64>("", account::Column::Balance.as_str()))
            .transpose()
    }

    /// The first rule that does not hold for the account's row as it is now, which this locks.
    async fn broken_rule(&self, txn: &DatabaseTransaction) -> Result<Option<LedgerError>, DbErr> {
        let rules = self.rules();
        let mut judged = Query::select();
        judged
            .from(account::Entity)
            .and_where(Expr::col(account::Column::Id).eq(self.account.0))
            .lock(LockType::Update);
        for (i, rule) in rules.iter().enumerate() {
            judged.expr_as(rule.holds.clone(), format!("rule{i}"));
        }
        let backend = txn.get_database_backend();
        let Some(row) = txn.query_one_raw(backend.build(&judged)).await? else {
            return Ok(Some(LedgerError::AccountNotFound));
        };
        for (i, rule) in rules.iter().enumerate() {
            // NULL (an account without an owner, asked for by a customer) does not hold.
            if row.try_get::<Option<bool>>("", &format!("rule{i}"))? != Some(true) {
                return Ok(Some((rule.otherwise)()));
            }
        }
        Ok(None)
    }
}

/// Applies `changes` in one transaction, in the order of their accounts' ids, so that two
/// transfers in opposite directions cannot deadlock; returns each account's new balance, in the
/// order of `changes`. When a change is refused, nothing of `txn` is to be committed.
///
/// A change is first tried as a conditional `UPDATE`. If it changes nothing, the changes not yet
/// made are judged under a lock on their rows, so the refusal given is true at a moment when
/// nothing else can change them. If every rule holds by then (another request moved money in
/// between), the update is made again under that lock, where it must succeed.
pub(super) async fn apply_step_by_step(
    txn: &DatabaseTransaction,
    changes: &[BalanceChange],
) -> Result<Vec<i64>, LedgerError> {
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by_key(|&i| changes[i].account);
    let mut balances = vec![0; changes.len()];
    for (done, &i) in order.iter().enumerate() {
        if let Some(balance) = changes[i].apply(txn).await? {
            balances[i] = balance;
            continue;
        }
        if let Some(refused) = refusal(txn, changes, &order[done..]).await? {
            return Err(refused);
        }
        balances[i] = changes[i].apply(txn).await?.ok_or_else(|| {
            DbErr::Custom("a balance change refused under a lock that its rules allowed".into())
        })?;
    }
    Ok(balances)
}

/// Why the changes at `pending` (indexes into `changes`, in id order) cannot be made, judged in
/// that order. A missing account is told before a refusal of the money rules, and the earlier
/// change (a transfer's sender) before the later; `None` if every rule holds now.
async fn refusal(
    txn: &DatabaseTransaction,
    changes: &[BalanceChange],
    pending: &[usize],
) -> Result<Option<LedgerError>, DbErr> {
    let mut refusals = Vec::new();
    for &i in pending {
        if let Some(refused) = changes[i].broken_rule(txn).await? {
            refusals.push((i, refused));
        }
    }
    let rank = |(i, refused): &(usize, LedgerError)| {
        (!matches!(refused, LedgerError::AccountNotFound), *i)
    };
    Ok(refusals
        .into_iter()
        .min_by_key(rank)
        .map(|(_, refused)| refused))
}
