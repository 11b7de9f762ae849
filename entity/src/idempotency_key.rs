use sea_orm::entity::prelude::*;

/// A write sent with an `Idempotency-Key` header, so that a retry of the same request (same
/// `fingerprint`) is answered from the write's ledger rows instead of being applied twice. Keys are
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
    /// The answer of a key stored before keys named their write; empty since.
    pub response_body: String,
    pub created_at: DateTimeUtc,
    /// The write the key was used for: its ledger rows are under this id in `ledger_writes`.
    pub write_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
