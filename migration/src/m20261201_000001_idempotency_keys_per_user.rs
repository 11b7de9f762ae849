//! `idempotency_keys` are stored under (owner, key): one user's key can never replay, refuse or
//! reveal another's. `owner_id` is the user who sent the key, `0` for every caller when access
//! control is off, and `-1` for the keys stored before this migration, whose owner is not
//! recorded (the app still replays such a key to the request that matches it exactly).
//!
//! A primary key cannot be changed in place on SQLite, so the table is rebuilt on both backends.

use sea_orm_migration::{prelude::*, schema::*};

/// The owner of the keys stored before keys were per user.
const BEFORE_OWNERS: i64 = -1;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rebuilt::Table)
                    .col(big_integer(IdempotencyKeys::OwnerId))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(text(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::OwnerId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        let copy = Query::insert()
            .into_table(Rebuilt::Table)
            .columns(COLUMNS_WITH_OWNER)
            .select_from(
                Query::select()
                    .expr(Expr::val(BEFORE_OWNERS))
                    .columns(COLUMNS)
                    .from(IdempotencyKeys::Table)
                    .to_owned(),
            )
            .map_err(|error| DbErr::Migration(error.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await?;
        replace(manager).await
    }

    /// Back to one key for everyone: a key that two owners used is dropped, since the old shape
    /// cannot hold both.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rebuilt::Table)
                    .col(string_len(IdempotencyKeys::Key, 255).primary_key())
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(text(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let unique = Query::select()
            .column(IdempotencyKeys::Key)
            .from(IdempotencyKeys::Table)
            .group_by_col(IdempotencyKeys::Key)
            .and_having(Expr::col(IdempotencyKeys::Key).count().eq(1))
            .to_owned();
        let copy = Query::insert()
            .into_table(Rebuilt::Table)
            .columns(COLUMNS)
            .select_from(
                Query::select()
                    .columns(COLUMNS)
                    .from(IdempotencyKeys::Table)
                    .and_where(Expr::col(IdempotencyKeys::Key).in_subquery(unique))
                    .to_owned(),
            )
            .map_err(|error| DbErr::Migration(error.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await?;
        replace(manager).await
    }
}

const COLUMNS: [IdempotencyKeys; 4] = [
    IdempotencyKeys::Key,
    IdempotencyKeys::Fingerprint,
    IdempotencyKeys::ResponseBody,
    IdempotencyKeys::CreatedAt,
];

const COLUMNS_WITH_OWNER: [IdempotencyKeys; 5] = [
    IdempotencyKeys::OwnerId,
    IdempotencyKeys::Key,
    IdempotencyKeys::Fingerprint,
    IdempotencyKeys::ResponseBody,
    IdempotencyKeys::CreatedAt,
];

/// The rebuilt table takes the old one's place.
async fn replace(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(Rebuilt::Table, IdempotencyKeys::Table)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    OwnerId,
    Key,
    Fingerprint,
    ResponseBody,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Rebuilt {
    #[sea_orm(iden = "idempotency_keys_rebuilt")]
    Table,
}
