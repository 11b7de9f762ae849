//! `/batches`: many postings and transfers in one request, for clients that have many (payroll,
//! imports). Each item is exactly what `POST /transactions` or `POST /transfers` takes, with its
//! own idempotency key if it has one, and gets its own result. By default every item stands alone;
//! with `atomic`, all apply or none does. A batch is validated whole: an invalid item (a value its
//! own route would refuse with 422) refuses the batch before anything is tried. The items reach
//! the database as groups, like any writes waiting at the same moment (the ledger decides that,
//! not this route).

use actix_web::{HttpResponse, body::to_bytes, http::StatusCode, post, web};
use bank_core::{
    authentication::Caller,
    domain::IdempotencyKey,
    idempotency::WriteError,
    ledger::{Movement, Together, Write, Written},
};
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    transactions::{MoneyWriteFailed, NewTransaction, Transaction},
    transfers::{NewTransfer, TransferReceipt},
};
use crate::{
    error::{
        Answer, FieldError, Invalid, Loc, LocItem, MoneyRefused, Rejected, Responses, WriteFailed,
        failures, problems_schema, words_schema,
    },
    extract::{ApiJson, Authenticated, BodyRejected, CallerRejected, schemas},
    state::AppState,
};

/// The most items one batch carries.
pub const MOST_ITEMS: usize = 1000;
/// The largest batch body: a thousand of the largest items, with room to spare.
pub const BODY_LIMIT_BYTES: usize = 1 << 20;

/// The body of `POST /batches`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"atomic": false, "items": [
    {"kind": "posting", "acc_id": 1, "credit": 250000},
    {"kind": "transfer", "from_acc_id": 1, "to_acc_id": 2, "amount": 1000, "idempotency_key": "payroll-2026-12-ada"},
]}))]
pub struct NewBatch {
    /// `true`: every item is applied, or none is. `false` (the default): each item on its own.
    #[serde(default)]
    pub atomic: bool,
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<BatchItem>,
}

/// One item: a posting or a transfer, as its own route takes it, with its own key if any.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BatchItem {
    /// A credit or debit on one account, as `POST /transactions` takes it.
    Posting {
        #[schema(schema_with = schemas::account_ref)]
        acc_id: i64,
        #[serde(default)]
        #[schema(schema_with = schemas::credit)]
        credit: i64,
        #[serde(default)]
        #[schema(schema_with = schemas::debit)]
        debit: i64,
        /// Like the `Idempotency-Key` header of `POST /transactions`, and shared with it: the
        /// same key and posting there or here is one write.
        #[schema(schema_with = schemas::optional_idempotency_key)]
        idempotency_key: Option<String>,
    },
    /// Money from one account to another, as `POST /transfers` takes it.
    Transfer {
        #[schema(schema_with = schemas::account_ref)]
        from_acc_id: i64,
        #[schema(schema_with = schemas::account_ref)]
        to_acc_id: i64,
        #[schema(schema_with = schemas::transfer_amount)]
        amount: i64,
        /// Like the `Idempotency-Key` header of `POST /transfers`, and shared with it.
        #[schema(schema_with = schemas::optional_idempotency_key)]
        idempotency_key: Option<String>,
    },
}

impl BatchItem {
    /// The write the item asks for, as its own route would make it; `Err` with each problem,
    /// located in the batch's body.
    fn write(&self, index: usize, caller: &Caller) -> Result<Write, Invalid> {
        let key = match self {
            Self::Posting {
                idempotency_key, ..
            }
            | Self::Transfer {
                idempotency_key, ..
            } => idempotency_key.as_deref(),
        };
        let key = key
            .map(|key| {
                IdempotencyKey::parse(key)
                    .map_err(|error| Invalid::domain(Loc::BodyField("idempotency_key"), error))
            })
            .transpose();
        let usable = key.as_ref().ok().cloned().flatten();
        let write = match *self {
            Self::Posting {
                acc_id,
                credit,
                debit,
                ..
            } => NewTransaction {
                acc_id,
                credit,
                debit,
            }
            .write(caller, usable),
            Self::Transfer {
                from_acc_id,
                to_acc_id,
                amount,
                ..
            } => NewTransfer {
                from_acc_id,
                to_acc_id,
                amount,
            }
            .write(caller, usable),
        };
        match (write, key) {
            (Ok(write), Ok(_)) => Ok(write),
            (write, key) => {
                let problems = [write.err(), key.err()].into_iter().flatten();
                let problems = problems.flat_map(|invalid| invalid.0);
                Err(Invalid(
                    problems.map(|problem| at(index, problem)).collect(),
                ))
            }
        }
    }
}

/// A problem of item `index`, located in the batch's body: `["body", "items", index, field]`.
fn at(index: usize, mut problem: FieldError) -> FieldError {
    let place = [LocItem::Name("items".into()), LocItem::Index(index as u64)];
    problem.loc.splice(1..1, place);
    problem
}

/// What became of each item, in the order sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"results": [
    {"status": 201, "transaction": {"id": 7, "acc_id": 1, "credit": 250000, "debit": 0, "balance_after": 262500, "created_at": "2026-12-03T09:31:00.654321Z"}},
    {"status": 201, "replayed": true, "transfer": {
        "from_transaction": {"id": 5, "acc_id": 1, "credit": 0, "debit": 1000, "balance_after": 12500, "created_at": "2026-12-03T09:30:00.123456Z"},
        "to_transaction": {"id": 6, "acc_id": 2, "credit": 1000, "debit": 0, "balance_after": 1000, "created_at": "2026-12-03T09:30:00.123456Z"},
    }},
]}))]
pub struct BatchResults {
    #[schema(max_items = 1000)]
    pub results: Vec<ItemResult>,
}

/// One item's result: the status it would have had as a request of its own, and its answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemResult {
    /// 201 applied; 404 or 409 refused as its own route refuses it, 422 for a key used before
    /// with another request; 503 certainly not applied, 500 outcome unknown (settle it by its
    /// key); in a refused atomic batch, 424 for an item that was fine but was not applied with
    /// the others.
    #[schema(minimum = 200, maximum = 599)]
    pub status: u16,
    /// A posting's ledger row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<Transaction>,
    /// A transfer's two rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferReceipt>,
    /// The item's key was used before for this same item: this is that first answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Why it was not applied: the `detail` its own route would answer, words or (for a key
    /// used before) a list of problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = detail)]
    pub detail: Option<Value>,
}

impl ItemResult {
    fn written(movement: &Movement, written: Written) -> Result<Self, WriteFailed> {
        let mut result = Self {
            status: StatusCode::CREATED.as_u16(),
            transaction: None,
            transfer: None,
            replayed: false,
            detail: None,
        };
        match movement {
            Movement::Post(_) => {
                (result.transaction, result.replayed) = wrap(super::answer(written)?)
            }
            Movement::Transfer(_) => {
                (result.transfer, result.replayed) = wrap(super::answer(written)?)
            }
        }
        Ok(result)
    }

    /// An item's failure, answered as its own route answers it.
    async fn failed(answer: impl Answer, state: &AppState) -> Self {
        let response = answer.respond();
        if let Some(Rejected(reason)) = response.extensions().get::<Rejected>().copied() {
            state.metrics.rejections.with_label_values(&[reason]).inc();
        }
        let status = response.status().as_u16();
        let body = to_bytes(response.into_body()).await.unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&body)
            .map(|mut body| body["detail"].take())
            .ok();
        Self {
            status,
            transaction: None,
            transfer: None,
            replayed: false,
            detail,
        }
    }
}

/// FastAPI's two shapes of `detail`: words, or the list of a 422.
fn detail() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::OneOfBuilder;
    OneOfBuilder::new()
        .item(words_schema())
        .item(problems_schema())
        .into()
}

fn wrap<T>((value, replayed): (T, bool)) -> (Option<T>, bool) {
    (Some(value), replayed)
}

/// The answer to an atomic batch of which an item was refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchRefused {
    /// Why nothing was applied.
    #[schema(schema_with = words_schema)]
    pub detail: String,
    /// Each item's own refusal, or 424 for an item that was fine but was not applied with the
    /// others.
    #[schema(max_items = 1000)]
    pub results: Vec<ItemResult>,
}

/// 409 for an atomic batch of which an item was refused: nothing was applied.
#[derive(Debug, thiserror::Error)]
#[error("an atomic batch with a refused item, not applied")]
pub struct BatchNotApplied(BatchRefused);

impl BatchNotApplied {
    const WORDS: &str = "The batch was not applied: at least one item was refused (see results)";
    const WITH_THE_OTHERS: &str = "Not applied: another item of this atomic batch was refused";
}

impl Answer for BatchNotApplied {
    fn status(&self) -> StatusCode {
        StatusCode::CONFLICT
    }

    fn respond(&self) -> HttpResponse {
        HttpResponse::build(self.status()).json(&self.0)
    }

    fn responses() -> Responses {
        let refused = MoneyRefused::InsufficientFunds.words();
        let example = json!({"detail": Self::WORDS, "results": [
            {"status": 424, "detail": Self::WITH_THE_OTHERS},
            {"status": 409, "detail": refused},
        ]});
        crate::error::documented_with(
            StatusCode::CONFLICT,
            "`atomic` and at least one item was refused: nothing was applied. `results` gives \
             each item's own refusal, and 424 for the items that would have been applied",
            "BatchRefused",
            "not_applied",
            example,
            |response| response,
        )
    }
}

failures! {
    /// What `POST /batches` can answer besides 200 and 201.
    pub enum BatchFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        NotApplied(BatchNotApplied),
        Failed(WriteFailed),
    }
}

impl From<WriteError> for BatchFailed {
    fn from(error: WriteError) -> Self {
        match MoneyWriteFailed::from(error) {
            MoneyWriteFailed::Failed(failed) => failed.into(),
            // Only a whole batch's failure reaches here: its items' refusals are in `results`.
            other => WriteFailed::Broken(DbErr::Custom(other.to_string())).into(),
        }
    }
}

/// Post many postings and transfers
///
/// Up to 1,000 items, each a posting (as `POST /transactions` takes it) or a transfer (as `POST
/// /transfers` takes it), with its own `idempotency_key` if it has one: the same key there or
/// here is one write. Each item gets its own result, in the order sent, with the status it would
/// have had alone; items on the same account apply in the order sent. Without `atomic`, the
/// answer is 200 and each item stands alone. With `atomic: true`, every item is applied in one
/// transaction (201), or none is (409, with each item's refusal). Either way, a batch with an
/// invalid item is refused whole (422, each problem located by its item's index).
#[utoipa::path(
    tag = "batches",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewBatch,
    responses(
        (status = 200, description = "Not atomic: each item's own result", body = BatchResults),
        (status = 201, description = "Atomic: every item was applied", body = BatchResults),
        BatchFailed,
    )
)]
#[post("")]
pub async fn create_batch(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: ApiJson<NewBatch>,
) -> Result<HttpResponse, BatchFailed> {
    let batch = body.0;
    if !(1..=MOST_ITEMS).contains(&batch.items.len()) {
        let words = format!("Should have 1 to {MOST_ITEMS} items");
        return Err(Invalid::one(Loc::BodyField("items"), words, "too_long").into());
    }
    // The batch is validated whole: any invalid item refuses it, with every problem located.
    let mut writes = Vec::with_capacity(batch.items.len());
    let mut problems = Vec::new();
    for (index, item) in batch.items.iter().enumerate() {
        match item.write(index, &caller) {
            Ok(write) => writes.push(write),
            Err(invalid) => problems.extend(invalid.0),
        }
    }
    if !problems.is_empty() {
        return Err(Invalid(problems).into());
    }
    let movements: Vec<Movement> = writes.iter().map(|write| write.movement).collect();
    if batch.atomic {
        return together(&state, writes, &movements).await;
    }
    let mut results = Vec::with_capacity(writes.len());
    for (written, movement) in state
        .ledger
        .write_each(writes)
        .await
        .into_iter()
        .zip(&movements)
    {
        results.push(match written {
            Ok(written) => {
                if !matches!(written, Written::Replayed(_)) {
                    state.metrics.record_movement(movement);
                }
                ItemResult::written(movement, written)?
            }
            Err(error) => ItemResult::failed(MoneyWriteFailed::from(error), &state).await,
        });
    }
    Ok(HttpResponse::Ok().json(BatchResults { results }))
}

/// An atomic batch: all applied in one transaction, or none.
async fn together(
    state: &AppState,
    writes: Vec<Write>,
    movements: &[Movement],
) -> Result<HttpResponse, BatchFailed> {
    match state.ledger.write_together(writes).await? {
        Together::Applied(written) => {
            let mut results = Vec::with_capacity(written.len());
            for (written, movement) in written.into_iter().zip(movements) {
                if !matches!(written, Written::Replayed(_)) {
                    state.metrics.record_movement(movement);
                }
                results.push(ItemResult::written(movement, written)?);
            }
            Ok(HttpResponse::Created().json(BatchResults { results }))
        }
        Together::Refused(refusals) => {
            let mut results = Vec::with_capacity(refusals.len());
            for refusal in refusals {
                results.push(match refusal {
                    Some(error) => ItemResult::failed(MoneyWriteFailed::from(error), state).await,
                    None => ItemResult {
                        status: StatusCode::FAILED_DEPENDENCY.as_u16(),
                        transaction: None,
                        transfer: None,
                        replayed: false,
                        detail: Some(Value::from(BatchNotApplied::WITH_THE_OTHERS)),
                    },
                });
            }
            Err(BatchNotApplied(BatchRefused {
                detail: BatchNotApplied::WORDS.to_owned(),
                results,
            })
            .into())
        }
    }
}
