use sea_orm::entity::prelude::*;

/// Someone who may sign in. `role` is `customer` or `operator`; the password is kept only as an
/// argon2id hash in PHC format.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    /// The name in lower case, unique: one name whatever its case. `None` only for a name that
    /// differed from an older one only by case when the rule came (it signs in by its exact
    /// name).
    pub username_key: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
