//! `/transfers`: money from one account to another, atomically.

use actix_web::{HttpResponse, post, web};
use bank_core::{
    domain::AccountId,
    idempotency,
    ledger::{self, TransferPart},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transactions::{MoneyWriteFailed, Transaction};
use crate::{
    error::Invalid,
    extract::{ApiJson, Authenticated, IdempotencyKeyHeader, schemas},
    state::AppState,
};

/// The body of `POST /transfers`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"from_acc_id": 1, "to_acc_id": 2, "amount": 1000}))]
pub struct NewTransfer {
    pub from_acc_id: i64,
    /// Must differ from `from_acc_id`.
    pub to_acc_id: i64,
    #[schema(schema_with = schemas::transfer_amount)]
    pub amount: i64,
}

impl NewTransfer {
    /// The body field each part of a transfer comes from.
    fn field(part: TransferPart) -> Option<&'static str> {
        match part {
            TransferPart::Amount => Some("amount"),
            TransferPart::Receiver => Some("to_acc_id"),
        }
    }
}

/// Both ledger rows a transfer wrote.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferReceipt {
    /// The debit on the sending account.
    pub from_transaction: Transaction,
    /// The credit on the receiving account.
    pub to_transaction: Transaction,
}

/// A transfer writes the sender's debit row, then the receiver's credit row.
impl ledger::FromLedgerRows for TransferReceipt {
    fn from_ledger_rows(rows: Vec<entity::transaction::Model>) -> Option<Self> {
        let [debit, credit] = <[_; 2]>::try_from(rows).ok()?;
        Some(Self {
            from_transaction: debit.into(),
            to_transaction: credit.into(),
        })
    }
}

/// Transfer money between accounts
///
/// Debits `from_acc_id` and credits `to_acc_id` in one database transaction: both ledger rows and
/// both balances change, or nothing does. Refused with 409 if the sender's balance is too low.
/// Supports `Idempotency-Key` like `POST /transactions`.
#[utoipa::path(
    tag = "transfers",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewTransfer,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "The transfer was applied (or replayed)", body = TransferReceipt),
        MoneyWriteFailed,
    )
)]
#[post("/transfers")]
pub async fn create_transfer(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    key: IdempotencyKeyHeader,
    body: ApiJson<NewTransfer>,
) -> Result<HttpResponse, MoneyWriteFailed> {
    let new = &body.0;
    let transfer = ledger::Transfer::new(
        AccountId(new.from_acc_id),
        AccountId(new.to_acc_id),
        new.amount,
    )
    .map_err(|invalid| Invalid::from_parts(invalid, NewTransfer::field))?;
    let outcome = idempotency::run(
        &state.db,
        key.owned_by(&caller),
        "POST /transfers",
        new,
        state.settle_within,
        async |txn, write_id| {
            let (from, to) = ledger::transfer(txn, caller.scope(), &transfer, write_id).await?;
            Ok(TransferReceipt {
                from_transaction: from.into(),
                to_transaction: to.into(),
            })
        },
    )
    .await?;
    if !outcome.replayed {
        state.metrics.record_transfer(transfer.amount.minor_units());
    }
    Ok(super::created(outcome))
}
