use sea_orm::entity::prelude::*;

/// One row per write that changed the ledger, stored with its ledger rows, keyed by an id the
/// server chose for the request. When the connection fails after a write was sent, the server
/// learns what happened by inserting this key itself: a conflict means the write was stored; an
/// insert means it was not, and now never can be (a "fence").
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_writes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub write_id: Uuid,
    /// The posting's row, or a transfer's debit row; `None` for a fence.
    pub first_transaction_id: Option<i64>,
    /// A transfer's credit row.
    pub second_transaction_id: Option<i64>,
    /// The hold a write created, captured or voided.
    pub hold_id: Option<i64>,
    /// The W3C `traceparent` of the request that wrote it, when traces were on.
    pub traceparent: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
