use sea_orm::entity::prelude::*;

/// Failed logins counted in a window, one row per thing counted: a username, a client address,
/// or the two together. Kept in the database so that every replica counts the same failures.
/// `key` is a SHA-256 digest, so what was typed as a username is never stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Milliseconds since the Unix epoch at the window's first failure.
    pub window_started_at: i64,
    pub failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
