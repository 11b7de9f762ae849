//! On Postgres, the outbox is written once per statement that adds rows to `ledger_writes`
//! instead of once per row. The grouped function writes a whole group with one `INSERT`, and a
//! trigger call per row cost about as much as the rest of that statement's triggers together.
//! The statement's new rows are read from its transition table; the messages are the same, in
//! the order of the writes. SQLite keeps its row trigger: it has no transition tables.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

use crate::m20261203_000004_create_webhooks::{POSTGRES_NOW, postgres_write_trigger};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One message per write and endpoint that wants its event: the endpoint's owner's account, or
/// any account for an operator's endpoint (no owner). Fences and the writes of holds are left
/// to the holds' own trigger.
const ENQUEUE: &str = "
INSERT INTO outbox (endpoint_id, event_type, subject_id, second_id, created_ms, next_attempt_ms,
                    traceparent)
SELECT e.id, w.event_type, w.first_transaction_id, w.second_transaction_id, {now}, 0,
       w.traceparent
FROM (SELECT n.first_transaction_id, n.second_transaction_id, n.traceparent,
             CASE WHEN n.second_transaction_id IS NULL THEN 'transaction.posted'
                  ELSE 'transfer.made' END AS event_type
      FROM written n
      WHERE n.first_transaction_id IS NOT NULL AND n.hold_id IS NULL) w
JOIN transactions t ON t.id = w.first_transaction_id
JOIN accounts a ON a.id = t.acc_id
JOIN webhook_endpoints e ON (e.owner_id IS NULL OR e.owner_id = a.owner_id)
                        AND (',' || e.events || ',') LIKE ('%,' || w.event_type || ',%')
ORDER BY w.first_transaction_id, e.id;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let enqueue = ENQUEUE.replace("{now}", POSTGRES_NOW);
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION bank_outbox_writes() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN {enqueue} RETURN NULL; END $$;
             DROP TRIGGER IF EXISTS ledger_writes_outbox ON ledger_writes;
             DROP FUNCTION IF EXISTS bank_outbox_write();
             CREATE TRIGGER ledger_writes_outbox AFTER INSERT ON ledger_writes
                 REFERENCING NEW TABLE AS written FOR EACH STATEMENT
                 EXECUTE FUNCTION bank_outbox_writes();"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        db.execute_unprepared(
            "DROP TRIGGER IF EXISTS ledger_writes_outbox ON ledger_writes; \
             DROP FUNCTION IF EXISTS bank_outbox_writes();",
        )
        .await?;
        for statement in postgres_write_trigger() {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}
