//! `ledger_writes`: the key each ledger write is stored under, so that a write whose connection
//! failed can be settled as applied or not (see the app's `ledger::settle`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LedgerWrites::Table)
                    .if_not_exists()
                    .col(uuid(LedgerWrites::WriteId).primary_key())
                    .col(big_integer_null(LedgerWrites::FirstTransactionId))
                    .col(big_integer_null(LedgerWrites::SecondTransactionId))
                    .col(timestamp_with_time_zone(LedgerWrites::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(LedgerWrites::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum LedgerWrites {
    Table,
    WriteId,
    FirstTransactionId,
    SecondTransactionId,
    CreatedAt,
}
