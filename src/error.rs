//! The one place that turns failures into HTTP: every layer's error (the domain's, the ledger's,
//! authentication's, a write's, the database's) becomes an [`ApiError`], and every `ApiError` is
//! a status and JSON in FastAPI's shapes, `{"detail": "..."}` or, for 422,
//! `{"detail": [{"loc", "msg", "type"}]}`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    authentication::AuthError,
    db,
    domain::{DomainError, Problems},
    idempotency::{self, WriteError},
    ledger::LedgerError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(&'static str),
    /// Carries the `Allow` header value: the methods the route does answer.
    #[error("Method Not Allowed")]
    MethodNotAllowed(String),
    /// 401 with `WWW-Authenticate: Bearer`: no usable token, or a failed login.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    /// Too many failed logins; carries the seconds until the next attempt is heard.
    #[error("Too many failed login attempts; try again later")]
    TooManyAttempts(u64),
    #[error("Insufficient funds")]
    InsufficientFunds,
    #[error("Balance limit exceeded")]
    BalanceLimitExceeded,
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("Request body not received in time")]
    RequestTimeout,
    #[error("{0}")]
    BadRequest(String),
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("Intentional error from the diagnostics route")]
    Diagnostic,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// The connection failed after a write was sent, and the database could not be asked in time
    /// whether it was applied.
    #[error("write outcome unknown: {0}")]
    OutcomeUnknown(#[source] DbErr),
    #[error("database error: {0}")]
    Database(#[source] DbErr),
    /// A failure of ours that is not the database's; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The detail of a 500 for a write whose outcome could not be learned.
pub const OUTCOME_UNKNOWN: &str = "The outcome of this write is unknown: the database connection \
failed after it was sent. Check the account's ledger (GET /accounts/{account_id}/transactions) \
before sending it again, or resend it with the same Idempotency-Key, which applies it at most once.";

impl ApiError {
    pub fn validation(loc: Loc, msg: impl Into<String>, kind: &'static str) -> Self {
        Self::Validation(vec![FieldError::new(loc, msg, kind)])
    }

    /// A bounded label for `bank_rejections_total`; `None` for failures that are ours, not the client's.
    pub fn rejection_reason(&self) -> Option<&'static str> {
        Some(match self {
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::TooManyAttempts(_) => "throttled",
            Self::InsufficientFunds => "insufficient_funds",
            Self::BalanceLimitExceeded => "balance_limit",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation",
            Self::Diagnostic
            | Self::Unavailable(_)
            | Self::OutcomeUnknown(_)
            | Self::Database(_)
            | Self::Internal(_) => return None,
        })
    }
}

/// A failed statement is the database's fault, not the client's: 503 (retry) when the database
/// could not be reached, else an opaque 500.
impl From<DbErr> for ApiError {
    fn from(error: DbErr) -> Self {
        if db::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Database(error)
        }
    }
}

/// Every problem of a request body, each at `["body", field]` (or `["body"]`), in pydantic's
/// words and types.
impl From<Problems> for ApiError {
    fn from(problems: Problems) -> Self {
        let errors = problems.iter().map(|invalid| {
            let loc = match invalid.field {
                Some(field) => Loc::BodyField(field),
                None => Loc::Body,
            };
            FieldError::new(loc, invalid.error.to_string(), kind(invalid.error))
        });
        Self::Validation(errors.collect())
    }
}

/// The `type` of a refused value, as FastAPI (pydantic) would name it.
pub fn kind(error: DomainError) -> &'static str {
    match error {
        DomainError::AmountOutOfRange => "amount_range",
        DomainError::NotPositive => "greater_than",
        DomainError::TextEmpty => "string_too_short",
        DomainError::TextTooLong => "string_too_long",
        DomainError::TextControlCharacters => "string_pattern_mismatch",
        DomainError::Username => "username",
        DomainError::Password => "password",
        DomainError::IdempotencyKey => "idempotency_key",
        DomainError::NothingToPost => "nothing_to_post",
        DomainError::SameAccount => "same_account",
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::AccountNotFound => Self::NotFound("Account not found"),
            LedgerError::TransactionNotFound => Self::NotFound("Transaction not found"),
            LedgerError::InsufficientFunds => Self::InsufficientFunds,
            LedgerError::BalanceLimitExceeded => Self::BalanceLimitExceeded,
            LedgerError::Database(error) => error.into(),
        }
    }
}

/// FastAPI's words for each refusal of a token or a login.
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::NotAuthenticated => Self::Unauthorized("Not authenticated"),
            AuthError::InvalidToken => Self::Unauthorized("Could not validate credentials"),
            AuthError::BadCredentials => Self::Unauthorized("Incorrect username or password"),
            AuthError::Throttled(seconds) => Self::TooManyAttempts(seconds),
            AuthError::SignUpDisabled => Self::Forbidden("Sign-up is disabled"),
            AuthError::UsernameTaken => Self::Conflict("Username already taken"),
            AuthError::Database(error) => error.into(),
            AuthError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// A 503 only for a write that was certainly not applied; a 500 with instructions for one whose
/// outcome is unknown.
impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::KeyReused => Self::validation(
                Loc::Header(idempotency::HEADER),
                error.to_string(),
                "idempotency_key_reused",
            ),
            WriteError::Ledger(error) => error.into(),
            WriteError::NotApplied(cause) => Self::Unavailable(cause),
            WriteError::OutcomeUnknown(cause) => Self::OutcomeUnknown(cause),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::InsufficientFunds | Self::BalanceLimitExceeded => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Diagnostic | Self::Database(_) | Self::OutcomeUnknown(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        use actix_web::http::header;
        match self {
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::TooManyAttempts(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            _ => {}
        }
        match self {
            Self::Validation(errors) => response.json(ValidationErrorBody {
                detail: errors.clone(),
            }),
            // Internal causes are logged with the request id by the access log, never sent.
            Self::Unavailable(_) => {
                response.json(ErrorBody::new("Service temporarily unavailable"))
            }
            Self::Database(_) | Self::Internal(_) => {
                response.json(ErrorBody::new("Internal Server Error"))
            }
            Self::OutcomeUnknown(_) => response.json(ErrorBody::new(OUTCOME_UNKNOWN)),
            _ => response.json(ErrorBody::new(self.to_string())),
        }
    }
}

/// FastAPI's `HTTPError`: the body of every non-422 error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"detail": "Account not found"}))]
pub struct ErrorBody {
    pub detail: String,
}

impl ErrorBody {
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

/// FastAPI's `HTTPValidationError`: every problem found in the request, each with where it is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"detail": [{"loc": ["body", "credit"], "msg": "Input should be a valid integer", "type": "int_type"}]}))]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is: `["body", "credit"]`, `["query", "limit"]`, `["path", "account_id"]`.
    pub loc: Vec<LocItem>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn new(loc: Loc, msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.into_items(),
            msg: msg.into(),
            kind: kind.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(u64),
}

/// Where in the request a problem is.
#[derive(Clone, Copy, Debug)]
pub enum Loc<'a> {
    Body,
    BodyField(&'a str),
    /// A byte offset into a body that is not valid JSON.
    BodyOffset(u64),
    Query(&'a str),
    Path(&'a str),
    Header(&'a str),
}

impl Loc<'_> {
    fn into_items(self) -> Vec<LocItem> {
        let name = |s: &str| LocItem::Name(s.to_owned());
        match self {
            Loc::Body => vec![name("body")],
            Loc::BodyField(field) => vec![name("body"), name(field)],
            Loc::BodyOffset(offset) => vec![name("body"), LocItem::Index(offset)],
            Loc::Query(field) => vec![name("query"), name(field)],
            Loc::Path(field) => vec![name("path"), name(field)],
            Loc::Header(field) => vec![name("header"), name(field)],
        }
    }
}
