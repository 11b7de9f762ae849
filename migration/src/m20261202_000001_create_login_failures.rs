//! `login_failures`: failed logins counted in the database instead of in each process, so that
//! every replica sees the same counts and N replicas do not give N times the guesses.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .col(string_len(LoginFailures::Key, 64).primary_key())
                    .col(big_integer(LoginFailures::WindowStartedAt))
                    .col(integer(LoginFailures::Failures))
                    .to_owned(),
            )
            .await?;
        // Expired windows are swept by age.
        manager
            .create_index(
                Index::create()
                    .name("login_failures_window_started_at")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::WindowStartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Key,
    WindowStartedAt,
    Failures,
}
