//! What was wrong with the request itself: a body too large, too slow or unreadable, a value that
//! breaks a rule (422, each problem with where it is), an idempotency key used for another request.

use actix_web::{HttpResponse, http::StatusCode};
use bank_core::{
    domain::{
        DomainError, IdempotencyKey, MAX_AMOUNT, MAX_HOLD_SECONDS, MAX_TEXT_CHARS, Password,
        Username,
    },
    ledger,
};
use serde_json::json;

use super::{
    Answer, FieldError, Loc, Responses, ValidationErrorBody, answers_http, documented_with,
    fixed_answer,
};

/// 422: every problem found in the request, each with where it is.
#[derive(Debug, thiserror::Error)]
#[error("invalid request: {0:?}")]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(loc: Loc, msg: impl Into<String>, kind: &'static str) -> Self {
        Self(vec![FieldError::new(loc, msg, kind)])
    }

    /// A value refused by a domain rule, at `loc`.
    pub fn domain(loc: Loc, error: DomainError) -> Self {
        Self::one(loc, domain_words(error), domain_kind(error))
    }

    /// The rules a posting or transfer broke, each at the body field `field` names for its part
    /// (`None`: the body as a whole).
    pub fn from_parts<P: std::fmt::Debug>(
        invalid: ledger::Invalid<P>,
        field: fn(P) -> Option<&'static str>,
    ) -> Self {
        let mut problems = Problems::default();
        for (part, error) in invalid.0 {
            problems.refuse(field(part), error);
        }
        Self(problems.0)
    }
}

impl Answer for Invalid {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }

    fn respond(&self) -> HttpResponse {
        let mut response = HttpResponse::UnprocessableEntity().json(ValidationErrorBody {
            detail: self.0.iter().take(super::MAX_PROBLEMS).cloned().collect(),
        });
        response
            .extensions_mut()
            .insert(super::Rejected("validation"));
        response
    }

    fn responses() -> Responses {
        let example = json!({"detail": [
            {"loc": ["body", "credit"], "msg": super::NOT_AN_INTEGER, "type": "int_type"},
        ]});
        documented_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The request is invalid: `detail` lists every problem, with where it is (`loc`: the \
             body field, path or query parameter, or header), what is wrong (`msg`) and its kind \
             (`type`)",
            "ValidationErrorBody",
            "invalid",
            example,
            |response| response,
        )
    }
}
answers_http!(Invalid);

/// Every problem of one input, each at the field it came from, so that one answer lists them
/// all, as FastAPI does.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Keeps `result`'s value, or notes its error against the body field `field`.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, DomainError>) -> Option<T> {
        result.map_err(|error| self.refuse(Some(field), error)).ok()
    }

    /// Notes a problem with one body field, or with the body as a whole (`None`).
    pub fn refuse(&mut self, field: Option<&str>, error: DomainError) {
        let loc = field.map_or(Loc::Body, Loc::BodyField);
        self.0.push(FieldError::new(
            loc,
            domain_words(error),
            domain_kind(error),
        ));
    }

    /// `Ok(value)` when no problem was found; `value` is only built then.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Invalid> {
        match value() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(Invalid(self.0)),
        }
    }
}

/// What a client is told of a value a domain rule refused, in pydantic's style.
pub fn domain_words(error: DomainError) -> String {
    match error {
        DomainError::AmountOutOfRange => {
            format!("Input should be between 0 and {MAX_AMOUNT} (minor units)")
        }
        DomainError::NotPositive => "Input should be greater than 0".into(),
        DomainError::TextEmpty => "String should not be empty".into(),
        DomainError::TextTooLong => {
            format!("String should have at most {MAX_TEXT_CHARS} characters")
        }
        DomainError::TextControlCharacters => "String should not contain control characters".into(),
        DomainError::Username => format!(
            "Should be {} to {} letters, digits or {}",
            Username::MIN_CHARS,
            Username::MAX_CHARS,
            spaced(Username::SYMBOLS)
        ),
        DomainError::Password => format!(
            "Should be {} to {} characters, without NUL",
            Password::MIN_CHARS,
            Password::MAX_CHARS
        ),
        DomainError::IdempotencyKey => format!(
            "Idempotency-Key should be 1 to {} visible ASCII characters",
            IdempotencyKey::MAX_LEN
        ),
        DomainError::NothingToPost => {
            "At least one of credit and debit should be greater than 0".into()
        }
        DomainError::SameAccount => "Should differ from from_acc_id".into(),
        DomainError::ExpiryOutOfRange => {
            format!("Input should be between 1 and {MAX_HOLD_SECONDS} (seconds)")
        }
    }
}

/// The `type` of a refused value, as FastAPI (pydantic) would name it.
fn domain_kind(error: DomainError) -> &'static str {
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
        DomainError::ExpiryOutOfRange => "expiry_range",
    }
}

/// `._@` as `. _ @`, for people to read.
fn spaced(symbols: &str) -> String {
    let symbols: Vec<String> = symbols.chars().map(String::from).collect();
    symbols.join(" ")
}

/// 422: the idempotency key was used before, with a different request.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency key was used before with a different request")]
pub struct KeyReused;

impl KeyReused {
    const WORDS: &str = "Idempotency-Key was already used with a different request";

    fn invalid() -> Invalid {
        Invalid::one(
            Loc::Header(crate::extract::IDEMPOTENCY_KEY),
            Self::WORDS,
            "idempotency_key_reused",
        )
    }
}

impl Answer for KeyReused {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }

    fn respond(&self) -> HttpResponse {
        Self::invalid().respond()
    }

    fn responses() -> Responses {
        let example = json!({"detail": Self::invalid().0});
        documented_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The `Idempotency-Key` was used before with a different request (another body or \
             route): nothing was written",
            "ValidationErrorBody",
            "idempotency_key_reused",
            example,
            |response| response,
        )
    }
}

fixed_answer!(
    /// 413: the body is larger than `BODY_LIMIT_BYTES`.
    PayloadTooLarge {
        status: PAYLOAD_TOO_LARGE,
        words: "Request body too large",
        rejected: Some("payload_too_large"),
        log: "request body over the size limit",
        example: "too_large",
        description: "The body is larger than the configured limit",
    }
);
fixed_answer!(
    /// 408: the body did not arrive within `CLIENT_TIMEOUT_SECS`.
    RequestTimeout {
        status: REQUEST_TIMEOUT,
        words: "Request body not received in time",
        rejected: Some("request_timeout"),
        log: "request body not received in time",
        example: "too_slow",
        description: "The body did not arrive within the client timeout",
    }
);
fixed_answer!(
    /// 400: a body that could not be read at all (a broken transfer, an encoding it does not
    /// have).
    Unreadable {
        status: BAD_REQUEST,
        words: "Could not read the request body",
        rejected: Some("bad_request"),
        log: "request body unreadable",
        example: "unreadable",
        description: "The body could not be read at all: a broken transfer, or a `Content-Encoding` \
                      it does not have",
    }
);
