//! `/transfers`: money from one account to another, atomically.

use actix_web::{HttpResponse, post, web};
use bank_core::{
    authentication::Caller,
    domain::{AccountId, IdempotencyKey},
    ledger::{self, Movement, TransferPart, Write},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transactions::{MoneyWriteFailed, Transaction};
use crate::{
    error::Invalid,
    extract::{ApiJson, Authenticated, IdempotencyKeyHeader, schemas},
    state::AppState,
    telemetry,
};

/// The body of `POST /transfers`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"from_acc_id": 1, "to_acc_id": 2, "amount": 1000}))]
pub struct NewTransfer {
    #[schema(schema_with = schemas::account_ref)]
    pub from_acc_id: i64,
    /// Must differ from `from_acc_id`.
    #[schema(schema_with = schemas::account_ref)]
    pub to_acc_id: i64,
    #[schema(schema_with = schemas::transfer_amount)]
    pub amount: i64,
}

impl NewTransfer {
    pub const OPERATION: &str = "POST /transfers";

    /// The write this body asks for, on behalf of `caller`, claimed under `key` if one is given.
    pub fn write(&self, caller: &Caller, key: Option<IdempotencyKey>) -> Result<Write, Invalid> {
        let transfer = ledger::Transfer::new(
            AccountId(self.from_acc_id),
            AccountId(self.to_acc_id),
            self.amount,
        )
        .map_err(|invalid| Invalid::from_parts(invalid, Self::field))?;
        Ok(Write {
            movement: Movement::Transfer(transfer),
            scope: caller.scope(),
            claim: super::claim(caller, key, Self::OPERATION, self),
            trace: telemetry::current_traceparent(),
        })
    }

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
    let write = body.0.write(&caller, key.0)?;
    let movement = write.movement;
    let (receipt, replayed): (TransferReceipt, _) =
        super::answer(state.ledger.write(write).await?)?;
    if !replayed {
        state.metrics.record_movement(&movement);
    }
    Ok(super::created(receipt, replayed))
}
