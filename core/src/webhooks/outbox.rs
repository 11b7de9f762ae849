//! The outbox from the dispatcher's side. A message is claimed with a lease (an update that
//! skips rows another replica has locked), sent, and settled: delivered, or due again later. A
//! dispatcher that dies mid-send leaves its lease to run out, and the message is sent again: at
//! least once, never by two replicas at the same time.

use std::collections::HashMap;

use entity::{hold, outbox, transaction, webhook_endpoint};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};

use super::EventType;
use crate::ledger::HoldStatus;

/// What a message tells of, read from the rows its change left. Ledger rows never change, and a
/// hold changes only once after it is placed, so a message says the same on every attempt.
pub enum Event {
    Posted(transaction::Model),
    /// The debit and the credit.
    Transfer(transaction::Model, transaction::Model),
    /// The hold as the event left it.
    Hold(hold::Model),
}

/// A message claimed for sending, with where it goes.
pub struct Due {
    pub message: outbox::Model,
    pub event_type: EventType,
    pub endpoint: webhook_endpoint::Model,
    pub event: Event,
}

/// Claims up to `limit` due messages of enabled endpoints until `now_ms + lease_ms`.
pub async fn claim(
    db: &impl ConnectionTrait,
    now_ms: i64,
    lease_ms: i64,
    limit: u64,
) -> Result<Vec<Due>, DbErr> {
    let due = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Id)
        .inner_join(webhook_endpoint::Entity)
        .filter(outbox::Column::DeliveredMs.is_null())
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(outbox::Column::NextAttemptMs.lte(now_ms))
        .filter(outbox::Column::LeaseUntilMs.lte(now_ms))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .into_query()
        .lock_with_tables_behavior(LockType::Update, [outbox::Entity], LockBehavior::SkipLocked)
        .to_owned();
    let messages = outbox::Entity::update_many()
        .col_expr(outbox::Column::LeaseUntilMs, Expr::val(now_ms + lease_ms))
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .filter(outbox::Column::Id.in_subquery(due))
        .exec_with_returning(db)
        .await?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints: HashMap<i64, webhook_endpoint::Model> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Id.is_in(messages.iter().map(|m| m.endpoint_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|endpoint| (endpoint.id, endpoint))
        .collect();
    let mut ledger_ids = Vec::new();
    let mut hold_ids = Vec::new();
    for message in &messages {
        if message.event_type.starts_with("hold.") {
            hold_ids.push(message.subject_id);
        } else {
            ledger_ids.extend(
                [Some(message.subject_id), message.second_id]
                    .into_iter()
                    .flatten(),
            );
        }
    }
    let rows: HashMap<i64, transaction::Model> = transaction::Entity::find()
        .filter(transaction::Column::Id.is_in(ledger_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let holds: HashMap<i64, hold::Model> = hold::Entity::find()
        .filter(hold::Column::Id.is_in(hold_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|hold| (hold.id, hold))
        .collect();
    let broken = |message: &outbox::Model| {
        DbErr::Custom(format!(
            "outbox message {} names {} {} that cannot be read",
            message.id, message.event_type, message.subject_id
        ))
    };
    messages
        .into_iter()
        .map(|message| {
            let event_type =
                EventType::parse(&message.event_type).ok_or_else(|| broken(&message))?;
            let row = |id: Option<i64>| id.and_then(|id| rows.get(&id).cloned());
            let event = match event_type {
                EventType::TransactionPosted => row(Some(message.subject_id)).map(Event::Posted),
                EventType::TransferMade => row(Some(message.subject_id))
                    .zip(row(message.second_id))
                    .map(|(debit, credit)| Event::Transfer(debit, credit)),
                EventType::HoldCreated => holds.get(&message.subject_id).map(|hold| {
                    Event::Hold(hold::Model {
                        status: HoldStatus::Pending.as_str().to_owned(),
                        captured: None,
                        resolved_at: None,
                        ..hold.clone()
                    })
                }),
                _ => holds.get(&message.subject_id).cloned().map(Event::Hold),
            };
            let endpoint = endpoints.get(&message.endpoint_id).cloned();
            match (event, endpoint) {
                (Some(event), Some(endpoint)) => Ok(Due {
                    message,
                    event_type,
                    endpoint,
                    event,
                }),
                _ => Err(broken(&message)),
            }
        })
        .collect()
}

/// The endpoints answered these messages 2xx (with the status beside each): the messages are
/// done, and their endpoints' failures are forgotten. A few statements for a whole pass.
pub async fn delivered(
    db: &impl ConnectionTrait,
    delivered: &[(&Due, u16)],
    now_ms: i64,
) -> Result<(), DbErr> {
    let mut by_status: HashMap<u16, Vec<i64>> = HashMap::new();
    for (due, status) in delivered {
        by_status.entry(*status).or_default().push(due.message.id);
    }
    for (status, ids) in by_status {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::DeliveredMs, Expr::val(now_ms))
            .col_expr(outbox::Column::LastStatus, Expr::val(i32::from(status)))
            .filter(outbox::Column::Id.is_in(ids))
            .exec(db)
            .await?;
    }
    let endpoints: Vec<i64> = delivered.iter().map(|(due, _)| due.endpoint.id).collect();
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Failures, Expr::val(0))
        .col_expr(
            webhook_endpoint::Column::FailingSinceMs,
            Expr::val(None::<i64>),
        )
        .filter(webhook_endpoint::Column::Id.is_in(endpoints))
        .filter(webhook_endpoint::Column::Failures.ne(0))
        .exec(db)
        .await?;
    Ok(())
}

/// A failed attempt at `now_ms`, to be made again at `retry_at_ms`.
pub struct Failed {
    /// The endpoint's answer, if it gave one.
    pub status: Option<u16>,
    pub now_ms: i64,
    pub retry_at_ms: i64,
    /// The endpoint is disabled once its deliveries have failed, none succeeding, this long.
    pub disable_after_ms: i64,
}

/// Records a failed attempt; whether it disabled the endpoint. Time decides, not a count: a busy
/// endpoint fails many messages in its first second down, a quiet one few in a day.
pub async fn failed(db: &impl ConnectionTrait, due: &Due, failed: Failed) -> Result<bool, DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptMs, Expr::val(failed.retry_at_ms))
        .col_expr(outbox::Column::LeaseUntilMs, Expr::val(0))
        .col_expr(
            outbox::Column::LastStatus,
            Expr::val(failed.status.map(i32::from)),
        )
        .filter(outbox::Column::Id.eq(due.message.id))
        .exec(db)
        .await?;
    let counted = webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::Failures,
            Expr::col(webhook_endpoint::Column::Failures).add(1),
        )
        .col_expr(
            webhook_endpoint::Column::FailingSinceMs,
            Expr::col(webhook_endpoint::Column::FailingSinceMs).if_null(failed.now_ms),
        )
        .filter(webhook_endpoint::Column::Id.eq(due.endpoint.id))
        .exec_with_returning(db)
        .await?;
    let reached = counted.first().is_some_and(|endpoint| {
        let since = endpoint.failing_since_ms.unwrap_or(failed.now_ms);
        endpoint.enabled && failed.now_ms - since >= failed.disable_after_ms
    });
    if !reached {
        return Ok(false);
    }
    let disabled = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::val(false))
        .col_expr(
            webhook_endpoint::Column::DisabledAt,
            Expr::val(chrono::Utc::now()),
        )
        .filter(webhook_endpoint::Column::Id.eq(due.endpoint.id))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .exec(db)
        .await?;
    Ok(disabled.rows_affected == 1)
}

/// The messages of enabled endpoints not yet delivered (those of disabled ones wait for their
/// owner, not for us): how many, how long the oldest has waited, and how long the one due
/// longest (new, or its retry's time come) has waited for a dispatcher to send it.
pub struct Backlog {
    pub waiting: u64,
    pub oldest_ms: Option<i64>,
    pub due_ms: Option<i64>,
}

pub async fn backlog(db: &impl ConnectionTrait, now_ms: i64) -> Result<Backlog, DbErr> {
    let statement = Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS waiting, MIN(o.created_ms) AS oldest, \
             MIN(CASE WHEN o.next_attempt_ms > {now_ms} THEN NULL \
                      WHEN o.next_attempt_ms > o.created_ms THEN o.next_attempt_ms \
                      ELSE o.created_ms END) AS due \
             FROM outbox o JOIN webhook_endpoints e ON e.id = o.endpoint_id \
             WHERE o.delivered_ms IS NULL AND e.enabled"
        ),
    );
    let row = db
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| DbErr::Custom("no row from a count".into()))?;
    let waiting: i64 = row.try_get("", "waiting")?;
    let since = |column: &str| -> Result<Option<i64>, DbErr> {
        let at: Option<i64> = row.try_get("", column)?;
        Ok(at.map(|at| Ord::max(now_ms - at, 0)))
    };
    Ok(Backlog {
        waiting: waiting.unsigned_abs(),
        oldest_ms: since("oldest")?,
        due_ms: since("due")?,
    })
}

/// Forgets the messages delivered before `before_ms`; how many.
pub async fn prune(db: &impl ConnectionTrait, before_ms: i64) -> Result<u64, DbErr> {
    let pruned = outbox::Entity::delete_many()
        .filter(outbox::Column::DeliveredMs.lt(before_ms))
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}
