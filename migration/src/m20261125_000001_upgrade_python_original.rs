//! Upgrades the Python original's database in place, keeping every row, id and amount.
//!
//! The original (FastAPI + SQLAlchemy) created `accounts (id, first_name, last_name, address)` and
//! `transactions (id, acc_id, credit, debit)`, all nullable `integer`/`varchar` columns, and checked
//! nothing. Migration 1 skips existing tables (`if_not_exists`), so such a database reaches this
//! migration without a `balance` column; any other database passes through untouched.
//!
//! What happens to each kind of row the original accepted and bank-api refuses:
//! - NULL names or address: stored as empty text (the API's fields are strings, never null).
//!   Empty and over-long names are kept as they are; the 1-200 rule applies to new input only.
//! - NULL `credit` or `debit`: 0, which is what the original's sums counted them as.
//! - Negative amounts: kept. The `>= 0` checks are added `NOT VALID`: enforced on new rows only.
//! - Rows with a NULL `acc_id`: moved to one new "Unassigned" account (a suspense account), so
//!   every row stays readable and every balance adds up; their ids and amounts do not change.
//! - Overdrawn accounts (ledger sum below zero): the balance stays the ledger's sum. Such an
//!   account may receive credits and transfers; debits and transfers out are refused while they
//!   would leave it below zero. `balance_floor` records the overdraft, and the balance check
//!   becomes `balance >= balance_floor`, so it can never sink below where it was.
//! - `created_at`, which the original did not record, is the time of the upgrade.
//!
//! Balances and `balance_after` are the ledger's running sums in id order. A ledger that sums above
//! bank-api's balance limit stops the upgrade. It runs in the caller's transaction (see the app's
//! `db.rs`), so a failure leaves the database exactly as it was.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

/// bank-api's largest balance (the app's `domain::MAX_BALANCE`).
const MAX_BALANCE: i64 = 1_000_000_000_000_000;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("accounts", "balance").await? {
            return Ok(());
        }
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Err(DbErr::Migration(
                "the accounts table has no balance column: this looks like the Python original's \
                 schema, which bank-api upgrades on Postgres only"
                    .into(),
            ));
        }
        let found = Legacy::count(db).await?;
        log::info!(
            "upgrading the Python original's database: {} accounts ({} with a NULL name or \
             address), {} ledger rows ({} with a NULL amount, {} with a negative amount, {} \
             without an account)",
            found.accounts,
            found.null_names,
            found.rows,
            found.null_amounts,
            found.negative_amounts,
            found.orphans
        );
        for step in WIDEN_AND_FILL {
            db.execute_unprepared(step).await?;
        }
        if found.orphans > 0 {
            let suspense = scalar(db, SUSPENSE_ACCOUNT).await?;
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE transactions SET acc_id = $1 WHERE acc_id IS NULL",
                [suspense.into()],
            ))
            .await?;
            log::info!(
                "{} ledger rows without an account now belong to account {suspense}, \"Unassigned\"",
                found.orphans
            );
        }
        for step in BALANCES_AND_CHECKS {
            db.execute_unprepared(step).await?;
        }
        let over_limit = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, balance FROM accounts WHERE balance > $1 ORDER BY id LIMIT 1",
                [MAX_BALANCE.into()],
            ))
            .await?;
        if let Some(row) = over_limit {
            let (id, balance): (i64, i64) = (row.try_get("", "id")?, row.try_get("", "balance")?);
            return Err(DbErr::Migration(format!(
                "cannot upgrade the Python original's database: account {id}'s ledger sums to \
                 {balance}, above bank-api's balance limit of {MAX_BALANCE}; nothing was changed"
            )));
        }
        let overdrawn = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT id, balance FROM accounts WHERE balance < 0 ORDER BY id",
            ))
            .await?;
        if !overdrawn.is_empty() {
            let mut listed = Vec::with_capacity(overdrawn.len());
            for row in &overdrawn {
                let (id, balance): (i64, i64) =
                    (row.try_get("", "id")?, row.try_get("", "balance")?);
                listed.push(format!("{id} ({balance})"));
            }
            log::warn!(
                "{} accounts are overdrawn and keep their balance; they may receive money but not \
                 pay out until back above zero: {}",
                overdrawn.len(),
                listed.join(", ")
            );
        }
        log::info!(
            "the Python original's database is upgraded; new ids continue after the largest"
        );
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        // The upgrade cannot be undone without losing what it learned (balances, the suspense
        // account); restore the backup taken before it instead.
        Ok(())
    }
}

/// What the original's tables hold that bank-api would refuse, for the upgrade's report.
struct Legacy {
    accounts: i64,
    null_names: i64,
    rows: i64,
    null_amounts: i64,
    negative_amounts: i64,
    orphans: i64,
}

impl Legacy {
    async fn count(db: &SchemaManagerConnection<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            accounts: scalar(db, "SELECT count(*) FROM accounts").await?,
            null_names: scalar(
                db,
                "SELECT count(*) FROM accounts \
                 WHERE first_name IS NULL OR last_name IS NULL OR address IS NULL",
            )
            .await?,
            rows: scalar(db, "SELECT count(*) FROM transactions").await?,
            null_amounts: scalar(
                db,
                "SELECT count(*) FROM transactions WHERE credit IS NULL OR debit IS NULL",
            )
            .await?,
            negative_amounts: scalar(
                db,
                "SELECT count(*) FROM transactions WHERE credit < 0 OR debit < 0",
            )
            .await?,
            orphans: scalar(db, "SELECT count(*) FROM transactions WHERE acc_id IS NULL").await?,
        })
    }
}

async fn scalar(db: &SchemaManagerConnection<'_>, sql: &str) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("no answer to {sql}")))?;
    row.try_get_by_index(0)
}

/// bank-api's column types (64-bit ids and amounts) and no NULLs where it reads values.
const WIDEN_AND_FILL: &[&str] = &[
    "ALTER TABLE accounts ALTER COLUMN id TYPE bigint",
    "ALTER SEQUENCE IF EXISTS accounts_id_seq AS bigint",
    "ALTER TABLE transactions ALTER COLUMN id TYPE bigint, ALTER COLUMN acc_id TYPE bigint, \
     ALTER COLUMN credit TYPE bigint, ALTER COLUMN debit TYPE bigint",
    "ALTER SEQUENCE IF EXISTS transactions_id_seq AS bigint",
    "UPDATE accounts SET first_name = coalesce(first_name, ''), \
     last_name = coalesce(last_name, ''), address = coalesce(address, '') \
     WHERE first_name IS NULL OR last_name IS NULL OR address IS NULL",
    "ALTER TABLE accounts ALTER COLUMN first_name SET NOT NULL, \
     ALTER COLUMN last_name SET NOT NULL, ALTER COLUMN address SET NOT NULL",
    "UPDATE transactions SET credit = coalesce(credit, 0), debit = coalesce(debit, 0) \
     WHERE credit IS NULL OR debit IS NULL",
    "ALTER TABLE transactions ALTER COLUMN credit SET NOT NULL, ALTER COLUMN debit SET NOT NULL",
    "ALTER TABLE accounts ADD COLUMN balance bigint NOT NULL DEFAULT 0, \
     ADD COLUMN balance_floor bigint NOT NULL DEFAULT 0, \
     ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
    "ALTER TABLE accounts ALTER COLUMN created_at DROP DEFAULT",
    "ALTER TABLE transactions ADD COLUMN balance_after bigint, \
     ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
    "ALTER TABLE transactions ALTER COLUMN created_at DROP DEFAULT",
    // New ids continue after the largest, even where the original inserted ids by hand.
    "SELECT setval(pg_get_serial_sequence('accounts', 'id'), max(id)) \
     FROM accounts HAVING max(id) IS NOT NULL",
    "SELECT setval(pg_get_serial_sequence('transactions', 'id'), max(id)) \
     FROM transactions HAVING max(id) IS NOT NULL",
];

/// Opened only when some rows have no account; its id follows the largest existing one.
const SUSPENSE_ACCOUNT: &str = "INSERT INTO accounts (first_name, last_name, address, created_at) \
     VALUES ('Unassigned', 'ledger rows', 'rows the Python original stored without an account', \
     now()) RETURNING id";

/// Running sums in id order, balances from them, and the checks bank-api relies on.
const BALANCES_AND_CHECKS: &[&str] = &[
    "UPDATE transactions t SET balance_after = r.running FROM ( \
       SELECT id, sum(credit - debit) OVER (PARTITION BY acc_id ORDER BY id) AS running \
       FROM transactions) r \
     WHERE t.id = r.id",
    "ALTER TABLE transactions ALTER COLUMN acc_id SET NOT NULL, \
     ALTER COLUMN balance_after SET NOT NULL",
    "UPDATE accounts a SET balance = s.total FROM ( \
       SELECT acc_id, sum(credit - debit) AS total FROM transactions GROUP BY acc_id) s \
     WHERE a.id = s.acc_id",
    "UPDATE accounts SET balance_floor = balance WHERE balance < 0",
    "ALTER TABLE accounts ADD CONSTRAINT accounts_balance_floor_check CHECK (balance_floor <= 0), \
     ADD CONSTRAINT accounts_balance_check CHECK (balance >= balance_floor)",
    "ALTER TABLE transactions ADD CONSTRAINT transactions_credit_check CHECK (credit >= 0) NOT VALID, \
     ADD CONSTRAINT transactions_debit_check CHECK (debit >= 0) NOT VALID",
];
