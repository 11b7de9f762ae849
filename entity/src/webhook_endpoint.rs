use sea_orm::entity::prelude::*;

/// A URL that receives signed messages about money events: those of its owner's accounts, or of
/// every account for an operator's (no owner). `events` is a comma-separated list of event
/// types. When its deliveries have failed, none succeeding, since `failing_since_ms` for longer
/// than the limit, it is disabled until its owner enables it again; its messages wait meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: Option<i64>,
    pub url: String,
    pub events: String,
    /// The signing secret, `whsec_` and base64, shown to the owner once.
    pub secret: String,
    pub enabled: bool,
    /// Failed attempts since the last one that succeeded.
    pub failures: i32,
    /// When the first of those failed (milliseconds since the epoch); `None` while none has.
    pub failing_since_ms: Option<i64>,
    pub created_at: DateTimeUtc,
    pub disabled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
