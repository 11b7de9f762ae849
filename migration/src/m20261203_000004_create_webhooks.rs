//! Webhooks: the endpoints customers and operators register, and the outbox their messages wait
//! in. The database itself writes the outbox: triggers on `ledger_writes` (a posting or a
//! transfer) and on `holds` (a hold placed, captured, voided or expired) add one message per
//! endpoint that asked for the event, in the transaction that made the change. So an event is
//! stored exactly when its change commits, whichever path wrote it (the grouped function, a step
//! by step write, the expiry sweeper), and nothing is written when nobody listens.
//!
//! A message carries the `traceparent` of the request that made its change (stored with the
//! write in `ledger_writes`), so the delivery's span links to that request's trace.
//!
//! Times in the outbox are milliseconds since the epoch, read from the database's clock, so the
//! dispatcher compares them the same way on SQLite and Postgres.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One message per endpoint that wants `{type}` about account `{account}`: the endpoint's
/// owner's account, or any account for an operator's endpoint (no owner).
const ENQUEUE: &str = "
INSERT INTO outbox (endpoint_id, event_type, subject_id, second_id, created_ms, next_attempt_ms,
                    traceparent)
SELECT e.id, {type}, {subject}, {second}, {now}, 0, {trace}
FROM webhook_endpoints e
WHERE (e.owner_id IS NULL
       OR e.owner_id = (SELECT a.owner_id FROM accounts a WHERE a.id = {account}))
  AND (',' || e.events || ',') LIKE ('%,' || {type} || ',%');";

/// A posting (one ledger row) or a transfer (a debit and a credit); fences and the writes of
/// holds are left to the holds' own trigger.
const WRITE_TYPE: &str = "(CASE WHEN NEW.second_transaction_id IS NULL THEN 'transaction.posted' \
                          ELSE 'transfer.made' END)";
const WRITE_ACCOUNT: &str =
    "(SELECT t.acc_id FROM transactions t WHERE t.id = NEW.first_transaction_id)";

/// A hold's messages are written before its write is (the hold's row comes first), so the write
/// lends them its `traceparent` afterwards: the message of the hold's event as it now stands.
const TRACE_HOLD: &str = "
UPDATE outbox SET traceparent = NEW.traceparent
WHERE subject_id = NEW.hold_id AND traceparent IS NULL AND delivered_ms IS NULL
  AND event_type = (SELECT CASE WHEN h.status = 'pending' THEN 'hold.created'
                                ELSE 'hold.' || h.status END
                    FROM holds h WHERE h.id = NEW.hold_id);";

fn enqueue(event_type: &str, subject: &str, second: &str, account: &str, now: &str) -> String {
    let trace = if subject == "NEW.id" {
        "NULL"
    } else {
        "NEW.traceparent"
    };
    ENQUEUE
        .replace("{trace}", trace)
        .replace("{type}", event_type)
        .replace("{subject}", subject)
        .replace("{second}", second)
        .replace("{account}", account)
        .replace("{now}", now)
}

fn postgres() -> Vec<String> {
    let now = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)";
    let write = enqueue(
        WRITE_TYPE,
        "NEW.first_transaction_id",
        "NEW.second_transaction_id",
        WRITE_ACCOUNT,
        now,
    );
    let hold = enqueue("v_type", "NEW.id", "NULL", "NEW.from_acc_id", now);
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION bank_outbox_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN {write} RETURN NULL; END $$"
        ),
        "CREATE TRIGGER ledger_writes_outbox AFTER INSERT ON ledger_writes FOR EACH ROW \
         WHEN (NEW.first_transaction_id IS NOT NULL AND NEW.hold_id IS NULL) \
         EXECUTE FUNCTION bank_outbox_write()"
            .into(),
        format!(
            "CREATE OR REPLACE FUNCTION bank_outbox_hold() RETURNS trigger LANGUAGE plpgsql AS $$
             DECLARE v_type text := CASE WHEN TG_OP = 'INSERT' THEN 'hold.created'
                                         ELSE 'hold.' || NEW.status END;
             BEGIN {hold} RETURN NULL; END $$"
        ),
        "CREATE TRIGGER holds_outbox_created AFTER INSERT ON holds FOR EACH ROW \
         EXECUTE FUNCTION bank_outbox_hold()"
            .into(),
        format!(
            "CREATE OR REPLACE FUNCTION bank_outbox_hold_trace() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN {TRACE_HOLD} RETURN NULL; END $$"
        ),
        "CREATE TRIGGER ledger_writes_outbox_trace AFTER INSERT ON ledger_writes FOR EACH ROW \
         WHEN (NEW.hold_id IS NOT NULL AND NEW.traceparent IS NOT NULL) \
         EXECUTE FUNCTION bank_outbox_hold_trace()"
            .into(),
        "CREATE TRIGGER holds_outbox_resolved AFTER UPDATE OF status ON holds FOR EACH ROW \
         WHEN (NEW.status <> OLD.status) EXECUTE FUNCTION bank_outbox_hold()"
            .into(),
    ]
}

fn sqlite() -> Vec<String> {
    let now = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
    let write = enqueue(
        WRITE_TYPE,
        "NEW.first_transaction_id",
        "NEW.second_transaction_id",
        WRITE_ACCOUNT,
        now,
    );
    let created = enqueue("'hold.created'", "NEW.id", "NULL", "NEW.from_acc_id", now);
    let resolved = enqueue(
        "('hold.' || NEW.status)",
        "NEW.id",
        "NULL",
        "NEW.from_acc_id",
        now,
    );
    vec![
        format!(
            "CREATE TRIGGER ledger_writes_outbox AFTER INSERT ON ledger_writes FOR EACH ROW \
             WHEN NEW.first_transaction_id IS NOT NULL AND NEW.hold_id IS NULL BEGIN {write} END"
        ),
        format!(
            "CREATE TRIGGER holds_outbox_created AFTER INSERT ON holds FOR EACH ROW \
             BEGIN {created} END"
        ),
        format!(
            "CREATE TRIGGER ledger_writes_outbox_trace AFTER INSERT ON ledger_writes FOR EACH ROW \
             WHEN NEW.hold_id IS NOT NULL AND NEW.traceparent IS NOT NULL BEGIN {TRACE_HOLD} END"
        ),
        format!(
            "CREATE TRIGGER holds_outbox_resolved AFTER UPDATE OF status ON holds FOR EACH ROW \
             WHEN NEW.status <> OLD.status BEGIN {resolved} END"
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookEndpoints::Id))
                    .col(big_integer_null(WebhookEndpoints::OwnerId))
                    .col(string_len(WebhookEndpoints::Url, 2048))
                    .col(string_len(WebhookEndpoints::Events, 512))
                    .col(string_len(WebhookEndpoints::Secret, 64))
                    .col(boolean(WebhookEndpoints::Enabled).default(true))
                    .col(integer(WebhookEndpoints::Failures).default(0))
                    .col(big_integer_null(WebhookEndpoints::FailingSinceMs))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::DisabledAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_endpoints_owner_id")
                            .from(WebhookEndpoints::Table, WebhookEndpoints::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_endpoints_owner_id")
                    .if_not_exists()
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::OwnerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Id))
                    .col(big_integer(Outbox::EndpointId))
                    .col(string_len(Outbox::EventType, 32))
                    .col(big_integer(Outbox::SubjectId))
                    .col(big_integer_null(Outbox::SecondId))
                    .col(big_integer(Outbox::CreatedMs))
                    .col(big_integer(Outbox::NextAttemptMs))
                    .col(big_integer(Outbox::LeaseUntilMs).default(0))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(big_integer_null(Outbox::DeliveredMs))
                    .col(integer_null(Outbox::LastStatus))
                    .col(string_len_null(Outbox::Traceparent, 55))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_endpoint_id")
                            .from(Outbox::Table, Outbox::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The dispatcher asks for undelivered messages, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_delivered_ms_id")
                    .if_not_exists()
                    .table(Outbox::Table)
                    .col(Outbox::DeliveredMs)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LedgerWrites::Table)
                    .add_column(string_len_null(LedgerWrites::Traceparent, 55))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let triggers = match db.get_database_backend() {
            DbBackend::Postgres => postgres(),
            _ => sqlite(),
        };
        for trigger in triggers {
            db.execute_unprepared(&trigger).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for trigger in [
            "ledger_writes_outbox ON ledger_writes",
            "ledger_writes_outbox_trace ON ledger_writes",
            "holds_outbox_created ON holds",
            "holds_outbox_resolved ON holds",
        ] {
            let statement = match db.get_database_backend() {
                DbBackend::Postgres => format!("DROP TRIGGER IF EXISTS {trigger}"),
                _ => format!(
                    "DROP TRIGGER IF EXISTS {}",
                    trigger.split(' ').next().unwrap_or("")
                ),
            };
            db.execute_unprepared(&statement).await?;
        }
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "DROP FUNCTION IF EXISTS bank_outbox_write(); \
                 DROP FUNCTION IF EXISTS bank_outbox_hold(); \
                 DROP FUNCTION IF EXISTS bank_outbox_hold_trace();",
            )
            .await?;
        }
        manager
            .drop_table(Table::drop().table(Outbox::Table).if_exists().to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LedgerWrites::Table)
                    .drop_column(LedgerWrites::Traceparent)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(WebhookEndpoints::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum LedgerWrites {
    Table,
    Traceparent,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    OwnerId,
    Url,
    Events,
    Secret,
    Enabled,
    Failures,
    FailingSinceMs,
    CreatedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EndpointId,
    EventType,
    SubjectId,
    SecondId,
    CreatedMs,
    NextAttemptMs,
    LeaseUntilMs,
    Attempts,
    DeliveredMs,
    LastStatus,
    Traceparent,
}
