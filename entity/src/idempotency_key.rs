use sea_orm::entity::prelude::*;

/// The stored outcome of a write sent with an `Idempotency-Key` header, so that a retry of the same
/// request (same `fingerprint`) is answered from here instead of being applied twice. Keys are
/// per owner: the user who sent it, `0` for everyone when access control is off, `-1` for keys
/// stored before keys were per user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub fingerprint: String,
    pub response_body: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
