//! Every change to who a user is (a deleted user, a changed role) is announced on the Postgres
//! channel `bank_users`, with the user's id (`*` when the table is emptied), once it commits. Each
//! API replica listens, and forgets what it remembered of that user, so its token is refused, or
//! its new role applies, within the time a notification takes to arrive.
//!
//! SQLite has no notifications; there the API remembers no user and reads each one every time.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE OR REPLACE FUNCTION bank_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('bank_users', '*');
    ELSE
        PERFORM pg_notify('bank_users', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_changed AFTER UPDATE OF id, role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION bank_users_changed();
CREATE TRIGGER users_emptied AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bank_users_changed();
"#;

const DOWN: &str = "
DROP TRIGGER IF EXISTS users_emptied ON users;
DROP TRIGGER IF EXISTS users_changed ON users;
DROP FUNCTION IF EXISTS bank_users_changed();
";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
