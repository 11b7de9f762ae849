use sea_orm::entity::prelude::*;

/// A refresh token, by the SHA-256 digest of its text (the text itself is never stored). The
/// tokens one login led to share a `family`; times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    pub family: String,
    pub user_id: i64,
    pub expires_at: i64,
    /// When it was exchanged for the next token: a second use is a stolen token's.
    pub used_at: Option<i64>,
    /// When its family was revoked (logout, or a reuse detected).
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
