use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Accounts::Id))
                    .col(string_len(Accounts::FirstName, 200))
                    .col(string_len(Accounts::LastName, 200))
                    .col(string_len(Accounts::Address, 200))
                    // The CHECK is the last line of defence: the ledger never lets a balance go negative.
                    .col(
                        big_integer(Accounts::Balance)
                            .default(0)
                            .check(Expr::col(Accounts::Balance).gte(0)),
                    )
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Transactions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Transactions::Id))
                    .col(big_integer(Transactions::AccId))
                    .col(
                        big_integer(Transactions::Credit)
                            .check(Expr::col(Transactions::Credit).gte(0)),
                    )
                    .col(
                        big_integer(Transactions::Debit)
                            .check(Expr::col(Transactions::Debit).gte(0)),
                    )
                    .col(big_integer(Transactions::BalanceAfter))
                    .col(timestamp_with_time_zone(Transactions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_transactions_acc_id")
                            .from(Transactions::Table, Transactions::AccId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // An account's history is read page by page in id order: this index serves it without a sort.
        manager
            .create_index(
                Index::create()
                    .name("ix_transactions_acc_id_id")
                    .if_not_exists()
                    .table(Transactions::Table)
                    .col(Transactions::AccId)
                    .col(Transactions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string_len(IdempotencyKeys::Key, 255).primary_key())
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(text(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            Transactions::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    FirstName,
    LastName,
    Address,
    Balance,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Id,
    AccId,
    Credit,
    Debit,
    BalanceAfter,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Key,
    Fingerprint,
    ResponseBody,
    CreatedAt,
}
