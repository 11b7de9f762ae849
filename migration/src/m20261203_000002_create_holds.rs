//! Holds: money reserved on one account for another, captured or released later. `accounts.held`
//! is the sum of the account's pending holds, kept in step with `holds` in the same transaction,
//! so the floor can be judged on `balance - held` in one conditional statement. A hold's write is
//! stored in `ledger_writes` like any other, naming the hold, so a lost answer is settled and a
//! key replayed the same way.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(big_integer(Accounts::Held).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LedgerWrites::Table)
                    .add_column(big_integer_null(LedgerWrites::HoldId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Holds::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Holds::Id))
                    .col(big_integer(Holds::FromAccId))
                    .col(big_integer(Holds::ToAccId))
                    .col(big_integer(Holds::Amount).check(Expr::col(Holds::Amount).gt(0)))
                    .col(big_integer_null(Holds::Captured))
                    .col(string_len(Holds::Status, 16))
                    .col(timestamp_with_time_zone(Holds::ExpiresAt))
                    .col(timestamp_with_time_zone(Holds::CreatedAt))
                    .col(timestamp_with_time_zone_null(Holds::ResolvedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_holds_from_acc_id")
                            .from(Holds::Table, Holds::FromAccId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_holds_to_acc_id")
                            .from(Holds::Table, Holds::ToAccId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweeper asks for pending holds past their expiry, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_holds_status_expires_at")
                    .if_not_exists()
                    .table(Holds::Table)
                    .col(Holds::Status)
                    .col(Holds::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_holds_from_acc_id_id")
                    .if_not_exists()
                    .table(Holds::Table)
                    .col(Holds::FromAccId)
                    .col(Holds::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Holds::Table).if_exists().to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LedgerWrites::Table)
                    .drop_column(LedgerWrites::HoldId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::Held)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Held,
}

#[derive(DeriveIden)]
enum LedgerWrites {
    Table,
    HoldId,
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
    FromAccId,
    ToAccId,
    Amount,
    Captured,
    Status,
    ExpiresAt,
    CreatedAt,
    ResolvedAt,
}
