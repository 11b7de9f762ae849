use sea_orm::entity::prelude::*;

/// A message waiting for (or delivered to) one endpoint, written by the database's triggers in
/// the transaction of the change it tells of. `subject_id` is the posting's ledger row, a
/// transfer's debit row (`second_id` its credit row) or the hold. Times are milliseconds since
/// the epoch; a message is due when `next_attempt_ms` and `lease_until_ms` have passed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub endpoint_id: i64,
    pub event_type: String,
    pub subject_id: i64,
    pub second_id: Option<i64>,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    /// A dispatcher sending it holds it until then; one that died lets it go by itself.
    pub lease_until_ms: i64,
    pub attempts: i32,
    pub delivered_ms: Option<i64>,
    pub last_status: Option<i32>,
    /// The W3C `traceparent` of the request that made the change, which the delivery links to.
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::webhook_endpoint::Entity",
        from = "Column::EndpointId",
        to = "super::webhook_endpoint::Column::Id"
    )]
    Endpoint,
}

impl Related<super::webhook_endpoint::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Endpoint.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
