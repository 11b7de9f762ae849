//! A username is one name whatever its case: `username_key`, the name in lower case, is unique,
//! so `Ada` cannot sign up beside `ada`, and `ADA` signs in as `ada`. Names that already differ
//! only by case (sign-up allowed it before) are reported in the log and left working: the oldest
//! of them keeps the key and signs in by any case, the others keep signing in by their exact
//! name. None is merged or renamed.

use std::collections::BTreeMap;

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(Users::UsernameKey, 64))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE users SET username_key = lower(username) \
             WHERE id IN (SELECT MIN(id) FROM users GROUP BY lower(username))",
        )
        .await?;
        report_names_that_differ_by_case(db).await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_users_username_key")
                    .table(Users::Table)
                    .col(Users::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_users_username_key")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::UsernameKey)
                    .to_owned(),
            )
            .await
    }
}

async fn report_names_that_differ_by_case(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT username, username_key FROM users WHERE lower(username) IN \
             (SELECT lower(username) FROM users GROUP BY lower(username) HAVING COUNT(*) > 1) \
             ORDER BY id",
        ))
        .await?;
    let mut names: BTreeMap<String, (Option<String>, Vec<String>)> = BTreeMap::new();
    for row in rows {
        let username: String = row.try_get("", "username")?;
        let key: Option<String> = row.try_get("", "username_key")?;
        let entry = names.entry(username.to_lowercase()).or_default();
        match key {
            Some(_) => entry.0 = Some(username),
            None => entry.1.push(username),
        }
    }
    for (kept, others) in names.into_values() {
        log::warn!(
            "usernames that differ only by case: {} signs in by any case, {} only by the exact \
             name; none was changed",
            kept.unwrap_or_default(),
            others.join(", ")
        );
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    UsernameKey,
}
