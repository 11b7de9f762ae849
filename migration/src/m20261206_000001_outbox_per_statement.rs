//! On Postgres, the messages of postings and transfers are written to the outbox once per
//! statement that stores writes, not once per write. The grouped function stores a whole group's
//! writes in one statement (up to 1,024), and a row trigger ran a statement of its own for each:
//! about a quarter of a batch of 100 postings' time in the function (pgbench, one client, the
//! trigger on against off: 5.0 against 4.0 ms, and 5.9 against 4.3). The messages are the same,
//! in the same order: each write's in the order of its ledger rows, then of its endpoints.
//!
//! SQLite has row triggers only, and one writer at a time: it keeps its own.

use sea_orm_migration::prelude::*;

use crate::on_postgres;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The messages of one statement's writes, for every endpoint that asked for them.
const WRITE_MESSAGES: &str = "
    INSERT INTO outbox (endpoint_id, event_type, subject_id, second_id, created_ms,
                        next_attempt_ms, traceparent)
    SELECT e.id, w.event_type, w.first_transaction_id, w.second_transaction_id,
           CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT), 0, w.traceparent
    FROM (SELECT n.*, CASE WHEN n.second_transaction_id IS NULL THEN 'transaction.posted'
                           ELSE 'transfer.made' END AS event_type
          FROM written n
          WHERE n.first_transaction_id IS NOT NULL AND n.hold_id IS NULL) w
    JOIN transactions t ON t.id = w.first_transaction_id
    JOIN accounts a ON a.id = t.acc_id
    JOIN webhook_endpoints e ON (e.owner_id IS NULL OR e.owner_id = a.owner_id)
                            AND (',' || e.events || ',') LIKE ('%,' || w.event_type || ',%')
    ORDER BY w.first_transaction_id, e.id;";

/// `bank_outbox_writes`: `guard`, then the messages. A later migration adds a guard.
pub(crate) fn outbox_function(guard: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION bank_outbox_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{guard}{WRITE_MESSAGES}
    RETURN NULL;
END $$;"
    )
}

const TRIGGER: &str = "
DROP TRIGGER ledger_writes_outbox ON ledger_writes;
CREATE TRIGGER ledger_writes_outbox_each_statement AFTER INSERT ON ledger_writes
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION bank_outbox_writes();";

const DOWN: &str = "
DROP TRIGGER ledger_writes_outbox_each_statement ON ledger_writes;
DROP FUNCTION bank_outbox_writes();
CREATE TRIGGER ledger_writes_outbox AFTER INSERT ON ledger_writes FOR EACH ROW
    WHEN (NEW.first_transaction_id IS NOT NULL AND NEW.hold_id IS NULL)
    EXECUTE FUNCTION bank_outbox_write();";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, &outbox_function("")).await?;
        on_postgres(manager, TRIGGER).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, DOWN).await
    }
}
