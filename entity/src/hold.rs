use sea_orm::entity::prelude::*;

/// Money reserved on `from_acc_id` for `to_acc_id`: while `status` is `pending` it counts in the
/// source's `held`; it ends once, as `captured` (`captured` moved, the rest released), `voided`
/// or `expired` (all released).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "holds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub from_acc_id: i64,
    pub to_acc_id: i64,
    pub amount: i64,
    pub captured: Option<i64>,
    pub status: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::FromAccId",
        to = "super::account::Column::Id"
    )]
    Source,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Source.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
