//! Values checked once, where a request enters, so code past the boundary cannot hold a bad one:
//! amounts of money, the text of an account, usernames, passwords and idempotency keys, the ids
//! of accounts and users, and the scope of accounts a caller may act on.
//!
//! A refused value is a [`DomainError`]; [`Problems`] collects every one an input has, each with
//! the field it came from. Nothing here knows HTTP: `error.rs` decides how a refusal is answered.

mod access;
mod credentials;
mod money;
mod text;

pub use access::{AccountId, Scope, UserId};
pub use credentials::{IdempotencyKey, Password, Username};
pub use money::{Amount, MAX_AMOUNT, MAX_BALANCE};
pub use text::{MAX_TEXT_CHARS, Text};

/// Why a value was refused. The text is what the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("Input should be between 0 and {} (minor units)", MAX_AMOUNT)]
    AmountOutOfRange,
    #[error("Input should be greater than 0")]
    NotPositive,
    #[error("String should not be empty")]
    TextEmpty,
    #[error("String should have at most {} characters", MAX_TEXT_CHARS)]
    TextTooLong,
    #[error("String should not contain control characters")]
    TextControlCharacters,
    #[error(
        "Should be {} to {} letters, digits or {}",
        Username::MIN_CHARS,
        Username::MAX_CHARS,
        spaced(Username::SYMBOLS)
    )]
    Username,
    #[error(
        "Should be {} to {} characters, without NUL",
        Password::MIN_CHARS,
        Password::MAX_CHARS
    )]
    Password,
    #[error(
        "Idempotency-Key should be 1 to {} visible ASCII characters",
        IdempotencyKey::MAX_LEN
    )]
    IdempotencyKey,
    /// A posting must move money one way or the other.
    #[error("At least one of credit and debit should be greater than 0")]
    NothingToPost,
    /// A transfer must go to another account.
    #[error("Should differ from from_acc_id")]
    SameAccount,
}

/// `._@` as `. _ @`, for people to read.
fn spaced(symbols: &str) -> String {
    let symbols: Vec<String> = symbols.chars().map(String::from).collect();
    symbols.join(" ")
}

/// A refused value and the input field it came from; `None` when the input as a whole is wrong
/// (a posting of nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: Option<&'static str>,
    pub error: DomainError,
}

/// Every problem found in one input, so that one answer lists them all, as FastAPI does.
#[derive(Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {0:?}")]
pub struct Problems(Vec<Invalid>);

impl Problems {
    /// Keeps `result`'s value, or notes its error against `field`.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, DomainError>) -> Option<T> {
        result
            .map_err(|error| {
                self.0.push(Invalid {
                    field: Some(field),
                    error,
                })
            })
            .ok()
    }

    /// Notes a problem with one field that no parser of its own found (`to_acc_id` equal to
    /// `from_acc_id`), or with the input as a whole (`field: None`).
    pub fn refuse(&mut self, field: Option<&'static str>, error: DomainError) {
        self.0.push(Invalid { field, error });
    }

    /// `Ok(value)` when no problem was found; `value` is only built then.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Self> {
        match value() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Invalid> {
        self.0.iter()
    }
}
