//! What failed on our side. The cause goes to the log with the request id (the access log writes
//! it), never to the client, who learns only what it may do: retry (503, nothing was done), or,
//! for a write whose outcome could not be learned, settle it with its key (500).

use actix_web::{HttpResponse, http::StatusCode};
use bank_core::database;
use sea_orm::DbErr;

use super::{Answer, Responses, answers_http, detail, documented, fixed_answer};

const UNAVAILABLE: &str = "Service temporarily unavailable";
const INTERNAL: &str = "Internal Server Error";

/// The detail of a 500 for a write whose outcome could not be learned.
const OUTCOME_UNKNOWN: &str = "The outcome of this write is unknown: the database connection \
failed after it was sent. Check the account's ledger (GET /accounts/{account_id}/transactions) \
before sending it again, or resend it with the same Idempotency-Key, which applies it at most once.";

/// A read, or a change that is not money, failed in the database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseFailed {
    /// It could not be reached in time, or went away: nothing was done, and a retry may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    #[error("database error: {0}")]
    Broken(#[source] DbErr),
}

impl From<DbErr> for DatabaseFailed {
    fn from(error: DbErr) -> Self {
        if database::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Broken(error)
        }
    }
}

impl Answer for DatabaseFailed {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn respond(&self) -> HttpResponse {
        match self {
            Self::Unavailable(_) => detail(self.status(), UNAVAILABLE, None),
            Self::Broken(_) => detail(self.status(), INTERNAL, None),
        }
    }

    fn responses() -> Responses {
        super::merge([
            documented(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database could not be reached in time and the request was not carried out: \
                 retry later",
                "unavailable",
                UNAVAILABLE,
            ),
            Internal::responses(),
        ])
    }
}

/// A write to the ledger failed in the database.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailed {
    /// It certainly was not applied: the database could not be reached before it was sent, or
    /// confirmed afterwards that it was not (and now never will be).
    #[error("write not applied: {0}")]
    NotApplied(#[source] DbErr),
    /// The connection failed after it was sent, and the database could not be asked in time
    /// whether it was applied.
    #[error("write outcome unknown: {0}")]
    OutcomeUnknown(#[source] DbErr),
    #[error("database error: {0}")]
    Broken(#[source] DbErr),
}

impl From<DbErr> for WriteFailed {
    fn from(error: DbErr) -> Self {
        if database::is_unavailable(&error) {
            Self::NotApplied(error)
        } else {
            Self::Broken(error)
        }
    }
}

impl Answer for WriteFailed {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotApplied(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::OutcomeUnknown(_) | Self::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn respond(&self) -> HttpResponse {
        let words = match self {
            Self::NotApplied(_) => UNAVAILABLE,
            Self::OutcomeUnknown(_) => OUTCOME_UNKNOWN,
            Self::Broken(_) => INTERNAL,
        };
        detail(self.status(), words, None)
    }

    fn responses() -> Responses {
        super::merge([
            documented(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database could not be reached in time and the write was certainly not \
                 applied: retry",
                "unavailable",
                UNAVAILABLE,
            ),
            documented(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The connection failed after the write was sent, and whether it was applied could \
                 not be learned in time. Check the ledger before sending it again, or resend it \
                 with the same `Idempotency-Key`, which applies it at most once",
                "outcome_unknown",
                OUTCOME_UNKNOWN,
            ),
            Internal::responses(),
        ])
    }
}

/// 500 for a failure of ours that is not the database's being away; its cause is logged, never
/// sent.
#[derive(Debug, thiserror::Error)]
#[error("internal error: {0}")]
pub struct Internal(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl Answer for Internal {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn respond(&self) -> HttpResponse {
        detail(self.status(), INTERNAL, None)
    }

    fn responses() -> Responses {
        let description = "Something failed on the server's side; the cause is in its log under \
                           the response's `X-Request-Id`";
        documented(
            StatusCode::INTERNAL_SERVER_ERROR,
            description,
            "internal",
            INTERNAL,
        )
    }
}
answers_http!(Internal);

/// 503 from the readiness probe: the database does not answer.
#[derive(Debug, thiserror::Error)]
#[error("not ready: {0}")]
pub struct NotReady(#[source] pub DbErr);

impl Answer for NotReady {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn respond(&self) -> HttpResponse {
        detail(self.status(), UNAVAILABLE, None)
    }

    fn responses() -> Responses {
        let description =
            "The database does not answer: take the instance out of the load balancer";
        documented(
            StatusCode::SERVICE_UNAVAILABLE,
            description,
            "not_ready",
            UNAVAILABLE,
        )
    }
}
answers_http!(NotReady);

fixed_answer!(
    /// 500 on purpose, from the diagnostics route.
    Diagnostic {
        status: INTERNAL_SERVER_ERROR,
        words: "Intentional error from the diagnostics route",
        rejected: None,
        log: "the diagnostics route failed on purpose",
        example: "intentional",
        description: "Always, for an operator",
    }
);
