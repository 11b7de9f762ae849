//! Whose accounts a statement may touch, as conditions on `accounts.owner_id`: every read, every
//! guarded balance change and the coalesced reads build theirs here.

use entity::account;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};

use crate::domain::Scope;

fn owner() -> Expr {
    Expr::col((account::Entity, account::Column::OwnerId))
}

/// The rows a caller of `scope` may touch: every row for an operator, else the owner's. `None`
/// when there is nothing to check.
pub(super) fn admits(scope: Scope) -> Option<Expr> {
    scope.owner().map(|owner_id| owner().eq(owner_id.0))
}

/// The same for a statement that serves many callers at once, each row with its caller's scope in
/// two columns: whether any owner will do (an operator's), and if not, which (`wanted`).
pub(super) fn admits_each(any: Expr, wanted: Expr) -> Expr {
    Condition::any().add(any).add(owner().eq(wanted)).into()
}
