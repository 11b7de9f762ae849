//! `users` (who may sign in, with an argon2id hash and a role) and `accounts.owner_id`. Accounts
//! without an owner (all of them before this migration, and those an operator opens) are the
//! operators' until one is given an owner.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    .col(string_len(Users::Username, 64).unique_key())
                    .col(text(Users::PasswordHash))
                    .col(
                        string_len(Users::Role, 16)
                            .check(Expr::col(Users::Role).is_in(["customer", "operator"])),
                    )
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let mut owner = Table::alter()
            .table(Accounts::Table)
            .add_column(big_integer_null(Accounts::OwnerId))
            .to_owned();
        // SQLite cannot add a foreign key to an existing table; Postgres, where it matters, can.
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            owner.add_foreign_key(
                TableForeignKey::new()
                    .name("fk_accounts_owner_id")
                    .from_tbl(Accounts::Table)
                    .from_col(Accounts::OwnerId)
                    .to_tbl(Users::Table)
                    .to_col(Users::Id),
            );
        }
        manager.alter_table(owner).await?;
        // A customer's accounts are listed by owner, in id order.
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_owner_id_id")
                    .table(Accounts::Table)
                    .col(Accounts::OwnerId)
                    .col(Accounts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_accounts_owner_id_id")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::OwnerId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).if_exists().to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    OwnerId,
}
