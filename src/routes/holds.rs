//! `/holds`: money reserved on one account for another, then captured or voided, once.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bank_core::{
    authentication::Caller,
    domain::{AccountId, Amount, IdempotencyKey},
    idempotency::WriteError,
    ledger::{
        self, HoldAction, HoldError, HoldPart, HoldStatus, HoldWrite, HoldWritten, LedgerError,
    },
};
use entity::hold;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    PageOf,
    transactions::{ListFailed, MoneyWriteFailed},
};
use crate::{
    error::{
        DatabaseFailed, HoldConflict, HoldNotFound, Invalid, KeyReused, MoneyRefused, Problems,
        WriteFailed, failures,
    },
    extract::{
        ApiJson, Authenticated, BodyRejected, CallerRejected, IdempotencyKeyHeader, Pagination,
        schemas,
    },
    state::AppState,
    telemetry,
};

failures! {
    /// What capturing or voiding a hold can answer besides 200.
    pub enum HoldResolveFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        KeyReused(KeyReused),
        NotFound(HoldNotFound),
        Conflict(HoldConflict),
        Refused(MoneyRefused),
        Failed(WriteFailed),
    }
}

failures! {
    /// What a read of one hold can answer besides 200.
    pub enum HoldReadFailed {
        Caller(CallerRejected),
        Invalid(Invalid),
        NotFound(HoldNotFound),
        Database(DatabaseFailed),
    }
}

impl From<HoldError> for HoldResolveFailed {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::NotFound => HoldNotFound.into(),
            HoldError::Resolved(HoldStatus::Captured) => HoldConflict::Captured.into(),
            HoldError::Resolved(HoldStatus::Voided) => HoldConflict::Voided.into(),
            HoldError::Resolved(HoldStatus::Expired) => HoldConflict::Expired.into(),
            HoldError::MoreThanHeld => HoldConflict::MoreThanHeld.into(),
            HoldError::Ledger(LedgerError::InsufficientFunds) => {
                MoneyRefused::InsufficientFunds.into()
            }
            HoldError::Ledger(LedgerError::BalanceLimitExceeded) => {
                MoneyRefused::BalanceLimitExceeded.into()
            }
            HoldError::Ledger(LedgerError::Database(error)) => WriteFailed::from(error).into(),
            HoldError::Ledger(LedgerError::AccountNotFound)
            | HoldError::Resolved(HoldStatus::Pending) => unresolvable(error),
        }
    }
}

/// A refusal no capture or void can earn (a pending hold is only "resolved" by the sweeper):
/// a fault of ours, answered as one.
fn unresolvable(error: impl std::fmt::Display) -> HoldResolveFailed {
    WriteFailed::Broken(sea_orm::DbErr::Custom(format!(
        "a hold refused with {error}"
    )))
    .into()
}

impl From<WriteError<HoldError>> for HoldResolveFailed {
    fn from(error: WriteError<HoldError>) -> Self {
        match error {
            WriteError::KeyReused => KeyReused.into(),
            WriteError::Ledger(error) => error.into(),
            WriteError::NotApplied(cause) => WriteFailed::NotApplied(cause).into(),
            WriteError::OutcomeUnknown(cause) => WriteFailed::OutcomeUnknown(cause).into(),
        }
    }
}

/// A new hold is refused like a transfer: an account missing or someone else's, or the money
/// rules.
impl From<HoldError> for MoneyWriteFailed {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::Ledger(error) => error.into(),
            other => WriteFailed::Broken(sea_orm::DbErr::Custom(format!(
                "a new hold refused with {other}"
            )))
            .into(),
        }
    }
}

/// The body of `POST /holds`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"from_acc_id": 1, "to_acc_id": 2, "amount": 1000, "expires_in_seconds": 3600}))]
pub struct NewHold {
    /// The account the money is reserved on.
    #[schema(schema_with = schemas::account_ref)]
    pub from_acc_id: i64,
    /// The account a capture pays; must differ from `from_acc_id`.
    #[schema(schema_with = schemas::account_ref)]
    pub to_acc_id: i64,
    #[schema(schema_with = schemas::hold_amount)]
    pub amount: i64,
    #[serde(default = "default_expiry")]
    #[schema(schema_with = schemas::hold_expiry)]
    pub expires_in_seconds: i64,
}

fn default_expiry() -> i64 {
    schemas::DEFAULT_HOLD_SECONDS
}

impl NewHold {
    const OPERATION: &str = "POST /holds";

    fn write(&self, caller: &Caller, key: Option<IdempotencyKey>) -> Result<HoldWrite, Invalid> {
        let new = ledger::NewHold::new(
            AccountId(self.from_acc_id),
            AccountId(self.to_acc_id),
            self.amount,
            self.expires_in_seconds,
        )
        .map_err(|invalid| Invalid::from_parts(invalid, Self::field))?;
        Ok(HoldWrite {
            action: HoldAction::Create(new),
            scope: caller.scope(),
            claim: super::claim(caller, key, Self::OPERATION, self),
            trace: telemetry::current_traceparent(),
        })
    }

    fn field(part: HoldPart) -> Option<&'static str> {
        Some(match part {
            HoldPart::Amount => "amount",
            HoldPart::Receiver => "to_acc_id",
            HoldPart::Expiry => "expires_in_seconds",
        })
    }
}

/// The body of `POST /holds/{hold_id}/capture`: `{}` captures all of the hold.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"amount": 600}))]
pub struct Capture {
    #[serde(default)]
    #[schema(schema_with = schemas::capture_amount)]
    pub amount: Option<i64>,
}

/// What a capture or void is fingerprinted by, for its key: the hold, and the body.
#[derive(Serialize)]
struct Resolving<'a> {
    hold_id: i64,
    capture: Option<&'a Capture>,
}

/// Where a hold is in its life: `pending` until it is captured, voided or expires, once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = HoldStatus)]
pub enum Status {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl From<HoldStatus> for Status {
    fn from(status: HoldStatus) -> Self {
        match status {
            HoldStatus::Pending => Self::Pending,
            HoldStatus::Captured => Self::Captured,
            HoldStatus::Voided => Self::Voided,
            HoldStatus::Expired => Self::Expired,
        }
    }
}

/// Money reserved on one account for another.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 3, "from_acc_id": 1, "to_acc_id": 2, "amount": 1000, "captured": null, "status": "pending", "expires_at": "2026-11-24T10:30:00.123456Z", "created_at": "2026-11-24T09:30:00.123456Z", "resolved_at": null}))]
pub struct Hold {
    #[schema(schema_with = schemas::row_id)]
    pub id: i64,
    #[schema(schema_with = schemas::account_id)]
    pub from_acc_id: i64,
    #[schema(schema_with = schemas::account_id)]
    pub to_acc_id: i64,
    /// What it reserves, minor units.
    #[schema(schema_with = schemas::hold_amount)]
    pub amount: i64,
    /// What a capture moved; the rest was released. `null` unless captured.
    #[schema(schema_with = schemas::captured_amount)]
    pub captured: Option<i64>,
    pub status: Status,
    /// When it releases its money by itself if still pending.
    #[schema(schema_with = schemas::timestamp)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    #[schema(schema_with = schemas::timestamp)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was captured, voided or expired.
    #[schema(schema_with = schemas::optional_timestamp)]
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<hold::Model> for Hold {
    type Error = sea_orm::DbErr;

    fn try_from(model: hold::Model) -> Result<Self, Self::Error> {
        Ok(Self {
            status: HoldStatus::of(&model)?.into(),
            id: model.id,
            from_acc_id: model.from_acc_id,
            to_acc_id: model.to_acc_id,
            amount: model.amount,
            captured: model.captured,
            expires_at: model.expires_at,
            created_at: model.created_at,
            resolved_at: model.resolved_at,
        })
    }
}

/// The hold a write left, as the write's answer, counted unless it is a replay.
fn written(state: &AppState, written: HoldWritten) -> Result<(Hold, bool), WriteFailed> {
    let HoldWritten { hold, replayed } = written;
    if !replayed {
        let status = HoldStatus::of(&hold).map_err(WriteFailed::Broken)?;
        let captured = hold.captured.unwrap_or_default();
        state.metrics.count_hold(status, 1, captured);
    }
    Ok((Hold::try_from(hold).map_err(WriteFailed::Broken)?, replayed))
}

/// Place a hold
///
/// Reserves `amount` on `from_acc_id` for `to_acc_id`: what the source may spend (`available`)
/// drops at once, its balance does not. The hold is captured (`POST /holds/{hold_id}/capture`),
/// voided (`POST /holds/{hold_id}/void`) or, after `expires_in_seconds`, expires and releases its
/// money by itself, and it ends only once. Refused with 409 if the source may not spend that
/// much. Supports `Idempotency-Key` like `POST /transactions`; a replay answers the hold as it
/// stands now.
#[utoipa::path(
    tag = "holds",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewHold,
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "The hold was placed (or replayed)", body = Hold),
        MoneyWriteFailed,
    )
)]
#[post("/holds")]
pub async fn create_hold(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    key: IdempotencyKeyHeader,
    body: ApiJson<NewHold>,
) -> Result<HttpResponse, MoneyWriteFailed> {
    let write = body.0.write(&caller, key.0)?;
    let (hold, replayed) = written(&state, state.ledger.hold(write).await?)?;
    Ok(super::created(hold, replayed))
}

/// The capture or void of `hold_id` by `caller`.
async fn resolve(
    state: &AppState,
    caller: &Caller,
    key: Option<IdempotencyKey>,
    (operation, hold_id, capture): (&str, i64, Option<&Capture>),
) -> Result<HttpResponse, HoldResolveFailed> {
    let action = match capture {
        Some(capture) => {
            let mut problems = Problems::default();
            let amount = capture
                .amount
                .and_then(|amount| problems.check("amount", Amount::positive(amount)));
            problems.finish(|| Some(()))?;
            HoldAction::Capture {
                hold: hold_id,
                amount,
            }
        }
        None => HoldAction::Void { hold: hold_id },
    };
    let fingerprinted = Resolving { hold_id, capture };
    let write = HoldWrite {
        action,
        scope: caller.scope(),
        claim: super::claim(caller, key, operation, &fingerprinted),
        trace: telemetry::current_traceparent(),
    };
    let (hold, replayed) = written(state, state.ledger.hold(write).await?)?;
    Ok(super::resolved(hold, replayed))
}

/// Capture a hold
///
/// Moves `amount` (all of the hold when left out, never more) from the hold's source to its
/// receiver, as a debit and a credit in the ledger like a transfer, and releases the rest. Only
/// a pending hold before its expiry can be captured: one already captured, voided or expired is
/// refused with 409, so of a capture and a void racing exactly one wins. Supports
/// `Idempotency-Key`.
#[utoipa::path(
    tag = "holds",
    security(("OAuth2PasswordBearer" = [])),
    params(("hold_id" = i64, Path, description = "The hold's id"), IdempotencyKeyHeader),
    request_body = Capture,
    responses(
        (status = 200, description = "The hold was captured (or replayed)", body = Hold),
        HoldResolveFailed,
    )
)]
#[post("/holds/{hold_id}/capture")]
pub async fn capture_hold(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    key: IdempotencyKeyHeader,
    hold_id: web::Path<i64>,
    body: ApiJson<Capture>,
) -> Result<HttpResponse, HoldResolveFailed> {
    let resolving = ("POST /holds/{hold_id}/capture", *hold_id, Some(&body.0));
    resolve(&state, &caller, key.0, resolving).await
}

/// Void a hold
///
/// Releases all of a pending hold's money back to what its source may spend. One already
/// captured, voided or expired is refused with 409. Supports `Idempotency-Key`.
#[utoipa::path(
    tag = "holds",
    security(("OAuth2PasswordBearer" = [])),
    params(("hold_id" = i64, Path, description = "The hold's id"), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The hold was voided (or replayed)", body = Hold),
        HoldResolveFailed,
    )
)]
#[post("/holds/{hold_id}/void")]
pub async fn void_hold(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    key: IdempotencyKeyHeader,
    hold_id: web::Path<i64>,
) -> Result<HttpResponse, HoldResolveFailed> {
    let resolving = ("POST /holds/{hold_id}/void", *hold_id, None);
    resolve(&state, &caller, key.0, resolving).await
}

/// List holds
///
/// The holds on the caller's accounts (every hold, for an operator), oldest first, a page at a
/// time, whatever their status.
#[utoipa::path(
    tag = "holds",
    security(("OAuth2PasswordBearer" = [])),
    params(Pagination),
    responses(PageOf<Hold>, ListFailed)
)]
#[get("/holds")]
pub async fn list_holds(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    page: Pagination,
    req: HttpRequest,
) -> Result<HttpResponse, ListFailed> {
    let page = ledger::Page::from(page);
    let holds = ledger::holds(&state.db, caller.scope(), page)
        .await
        .map_err(DatabaseFailed::from)?;
    let rows = holds
        .rows
        .into_iter()
        .map(Hold::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(DatabaseFailed::from)?;
    let holds = ledger::Listed {
        rows,
        next_after_id: holds.next_after_id,
    };
    Ok(super::listed(&req, page.limit, holds))
}

/// Read a hold
///
/// One hold on an account of the caller's, with where it is in its life.
#[utoipa::path(
    tag = "holds",
    security(("OAuth2PasswordBearer" = [])),
    params(("hold_id" = i64, Path, description = "The hold's id")),
    responses(
        (status = 200, description = "The hold", body = Hold),
        HoldReadFailed,
    )
)]
#[get("/holds/{hold_id}")]
pub async fn get_hold(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    hold_id: web::Path<i64>,
) -> Result<HttpResponse, HoldReadFailed> {
    let hold = ledger::hold(&state.db, caller.scope(), hold_id.into_inner())
        .await
        .map_err(DatabaseFailed::from)?
        .ok_or(HoldNotFound)?;
    let hold = Hold::try_from(hold).map_err(DatabaseFailed::from)?;
    Ok(HttpResponse::Ok().json(hold))
}
