//! Holds within the caller's scope: those whose source account the caller may act on. Anyone
//! else's hold is not found, exactly like a missing one.

use entity::hold;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement};

use super::HoldStatus;
use crate::{
    domain::Scope,
    ledger::{Listed, Page, reads::of_accounts_in},
};

/// `query` on holds, limited to those of accounts in `scope`.
pub(super) fn scoped<Q: QueryFilter>(scope: Scope, query: Q) -> Q {
    of_accounts_in(scope, query, hold::Column::FromAccId)
}

pub async fn hold(
    db: &impl ConnectionTrait,
    scope: Scope,
    id: i64,
) -> Result<Option<hold::Model>, DbErr> {
    scoped(scope, hold::Entity::find_by_id(id)).one(db).await
}

/// A page of the holds in `scope`, oldest first.
pub async fn holds(
    db: &impl ConnectionTrait,
    scope: Scope,
    page: Page,
) -> Result<Listed<hold::Model>, DbErr> {
    let rows = scoped(scope, hold::Entity::find()).order_by_asc(hold::Column::Id);
    let rows = page.of(rows, hold::Column::Id).all(db).await?;
    Ok(page.listed(rows, |hold| hold.id))
}

/// How many holds are pending, and what they hold together: one read of the status index.
pub(super) async fn pending(db: &impl ConnectionTrait) -> Result<(u64, i64), DbErr> {
    let statement = Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS pending, \
             CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS held FROM holds WHERE status = '{}'",
            HoldStatus::Pending.as_str()
        ),
    );
    let row = db
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| DbErr::Custom("no row from a count".into()))?;
    let pending: i64 = row.try_get("", "pending")?;
    Ok((pending.unsigned_abs(), row.try_get("", "held")?))
}
