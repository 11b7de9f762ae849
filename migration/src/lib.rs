//! Database migrations, one file each; a released migration is never edited, only followed by a new one.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_ledger;
mod m20261125_000001_upgrade_python_original;
mod m20261125_000002_create_ledger_writes;
mod m20261125_000003_create_users;
mod m20261201_000001_idempotency_keys_per_user;
mod m20261201_000002_notify_user_changes;
mod m20261202_000001_create_login_failures;
mod m20261203_000001_idempotency_keys_name_their_write;
mod m20261203_000002_create_holds;
mod m20261203_000003_usernames_ignore_case;
mod m20261203_000004_create_webhooks;
mod m20261204_000001_create_refresh_tokens;
mod m20261206_000001_outbox_per_statement;
mod m20261207_000001_outbox_only_with_endpoints;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_ledger::Migration),
            Box::new(m20261125_000001_upgrade_python_original::Migration),
            Box::new(m20261125_000002_create_ledger_writes::Migration),
            Box::new(m20261125_000003_create_users::Migration),
            Box::new(m20261201_000001_idempotency_keys_per_user::Migration),
            Box::new(m20261201_000002_notify_user_changes::Migration),
            Box::new(m20261202_000001_create_login_failures::Migration),
            Box::new(m20261203_000001_idempotency_keys_name_their_write::Migration),
            Box::new(m20261203_000002_create_holds::Migration),
            Box::new(m20261203_000003_usernames_ignore_case::Migration),
            Box::new(m20261203_000004_create_webhooks::Migration),
            Box::new(m20261204_000001_create_refresh_tokens::Migration),
            Box::new(m20261206_000001_outbox_per_statement::Migration),
            Box::new(m20261207_000001_outbox_only_with_endpoints::Migration),
        ]
    }
}

/// Runs `sql` on Postgres only: for what SQLite keeps in its own triggers.
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
