//! Endpoints within the caller's scope: a customer's own, or every one for an operator. Anyone
//! else's endpoint is not found, exactly like a missing one.

use entity::{outbox, webhook_endpoint};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, sea_query::Expr,
};

use super::EventType;
use crate::{
    domain::Scope,
    ledger::{Listed, Page},
};

/// A checked URL and the events it wants, registered by a caller in `scope`: a customer's
/// endpoint hears of that customer's accounts; an operator's, of every account.
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<EventType>,
    pub secret: String,
}

fn scoped<Q: QueryFilter>(scope: Scope, query: Q) -> Q {
    match scope.owner() {
        Some(owner) => query.filter(webhook_endpoint::Column::OwnerId.eq(owner.0)),
        None => query,
    }
}

pub async fn register(
    db: &impl ConnectionTrait,
    scope: Scope,
    new: NewEndpoint,
) -> Result<webhook_endpoint::Model, DbErr> {
    let mut events = new.events;
    events.sort();
    events.dedup();
    let events: Vec<&str> = events.into_iter().map(EventType::as_str).collect();
    webhook_endpoint::ActiveModel {
        owner_id: Set(scope.owner().map(|owner| owner.0)),
        url: Set(new.url),
        events: Set(events.join(",")),
        secret: Set(new.secret),
        enabled: Set(true),
        failures: Set(0),
        failing_since_ms: Set(None),
        created_at: Set(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)),
        disabled_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn endpoint(
    db: &impl ConnectionTrait,
    scope: Scope,
    id: i64,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    scoped(scope, webhook_endpoint::Entity::find_by_id(id))
        .one(db)
        .await
}

/// A page of the endpoints in `scope`, oldest first.
pub async fn endpoints(
    db: &impl ConnectionTrait,
    scope: Scope,
    page: Page,
) -> Result<Listed<webhook_endpoint::Model>, DbErr> {
    let rows =
        scoped(scope, webhook_endpoint::Entity::find()).order_by_asc(webhook_endpoint::Column::Id);
    let rows = page.of(rows, webhook_endpoint::Column::Id).all(db).await?;
    Ok(page.listed(rows, |endpoint| endpoint.id))
}

/// Sends to the endpoint again, its failures forgotten; the messages that waited are due at once
/// (oldest first), whenever their next retry would have been.
pub async fn enable(
    db: &impl ConnectionTrait,
    scope: Scope,
    id: i64,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let update = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::val(true))
        .col_expr(webhook_endpoint::Column::Failures, Expr::val(0))
        .col_expr(
            webhook_endpoint::Column::FailingSinceMs,
            Expr::val(None::<i64>),
        )
        .col_expr(
            webhook_endpoint::Column::DisabledAt,
            Expr::val(None::<chrono::DateTime<chrono::Utc>>),
        )
        .filter(webhook_endpoint::Column::Id.eq(id));
    let Some(enabled) = scoped(scope, update).exec_with_returning(db).await?.pop() else {
        return Ok(None);
    };
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptMs, Expr::val(0))
        .filter(outbox::Column::EndpointId.eq(enabled.id))
        .filter(outbox::Column::DeliveredMs.is_null())
        .exec(db)
        .await?;
    Ok(Some(enabled))
}
