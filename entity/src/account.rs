use sea_orm::entity::prelude::*;

/// A customer account. `balance` is the running total of the account's ledger rows, in minor units,
/// kept in step with them inside the same database transaction.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub address: String,
    pub balance: i64,
    /// The sum of the account's pending holds: `balance - held` is what it may spend.
    pub held: i64,
    pub created_at: DateTimeUtc,
    /// The customer it belongs to; `None`: the operators' (opened by one, or from before users).
    pub owner_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::transaction::Entity")]
    Transaction,
}

impl Related<super::transaction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transaction.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
