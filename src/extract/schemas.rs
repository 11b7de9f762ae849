//! The OpenAPI schemas of values with limits, built from the constants that enforce them, so the
//! document cannot say one thing while the rules do another. Used with `schema_with`.

use utoipa::openapi::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type, schema::SchemaType};

use bank_core::domain::{
    DomainError, IdempotencyKey, MAX_AMOUNT, MAX_BALANCE, MAX_HOLD_SECONDS, MAX_TEXT_CHARS,
    Password, Text, Username,
};

use crate::{error::domain_words, extract::Pagination};

fn integer(description: String, minimum: i64, maximum: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .description(Some(description))
}

fn minor_units(what: &str, minimum: i64) -> ObjectBuilder {
    integer(
        format!("{what}, {minimum} to {MAX_AMOUNT} minor units."),
        minimum,
        MAX_AMOUNT,
    )
}

pub fn credit() -> Object {
    minor_units("Money in", 0).default(Some(0.into())).build()
}

pub fn debit() -> Object {
    minor_units("Money out (the balance may not go below zero)", 0)
        .default(Some(0.into()))
        .build()
}

pub fn transfer_amount() -> Object {
    minor_units("The amount moved", 1).build()
}

pub fn hold_amount() -> Object {
    minor_units("The amount reserved", 1).build()
}

/// A capture's amount: all of the hold when left out.
pub fn capture_amount() -> Object {
    minor_units(
        "The amount moved, at most the hold's (all of it when left out)",
        1,
    )
    .build()
}

pub fn hold_expiry() -> Object {
    integer(
        format!(
            "Seconds until the hold expires and releases its money by itself, 1 to \
             {MAX_HOLD_SECONDS}."
        ),
        1,
        MAX_HOLD_SECONDS,
    )
    .default(Some(DEFAULT_HOLD_SECONDS.into()))
    .build()
}

/// How long a hold lasts when the client does not say: an hour.
pub const DEFAULT_HOLD_SECONDS: i64 = 60 * 60;

/// A name or an address.
pub fn account_text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TEXT_CHARS))
        .pattern(Some(Text::PATTERN))
        .description(Some(format!(
            "1 to {MAX_TEXT_CHARS} characters after trimming; no control characters."
        )))
        .build()
}

pub fn username() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(Username::MIN_CHARS))
        .max_length(Some(Username::MAX_CHARS))
        .pattern(Some(Username::pattern()))
        .description(Some(domain_words(DomainError::Username)))
        .build()
}

pub fn password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(Password::MIN_CHARS))
        .max_length(Some(Password::MAX_CHARS))
        .pattern(Some(Password::pattern()))
        .description(Some(format!(
            "{}. Never echoed or logged.",
            domain_words(DomainError::Password)
        )))
        .build()
}

pub fn idempotency_key() -> Object {
    key().build()
}

fn key() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(IdempotencyKey::MAX_LEN))
        .pattern(Some(IdempotencyKey::pattern()))
        .description(Some(domain_words(DomainError::IdempotencyKey)))
}

/// A batch item's key: as the header's, or null for none.
pub fn optional_idempotency_key() -> Object {
    key()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

pub fn page_limit() -> Object {
    integer(
        "How many rows to return.".into(),
        1,
        Pagination::MAX_LIMIT as i64,
    )
    .default(Some(Pagination::DEFAULT_LIMIT.into()))
    .build()
}

/// A row's id (account, ledger row, hold, user, endpoint): ids start at 1.
pub fn row_id() -> Object {
    integer("The row's id.".into(), 1, i64::MAX).build()
}

/// An account a request names: any id is heard, and one that names no account of the caller's
/// is answered as not found (404, or in a batch that item's 404).
pub fn account_ref() -> Object {
    integer("An account's id.".into(), i64::MIN, i64::MAX).build()
}

/// An account an answer names.
pub fn account_id() -> Object {
    integer("An account's id.".into(), 1, i64::MAX).build()
}

/// A balance, or what may be spent of it: up to the highest balance an account may hold, and
/// below zero only on an account upgraded overdrawn from the Python original (whose balances
/// were any 64-bit number).
pub fn balance() -> Object {
    integer(
        format!("In minor units (cents), at most {MAX_BALANCE}."),
        i64::MIN,
        MAX_BALANCE,
    )
    .build()
}

/// What a ledger row moved in or out: any amount on a row upgraded from the Python original.
pub fn row_amount() -> Object {
    integer(
        "Minor units (cents); 0 on the side the row did not move.".into(),
        0,
        i64::MAX,
    )
    .build()
}

/// What a captured hold moved: null until it is captured.
pub fn captured_amount() -> Object {
    minor_units("The amount captured, or null while none is", 1)
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .build()
}

/// An instant as the server writes it, RFC 3339 in UTC (`2026-11-24T09:30:00.123456789Z` at most).
pub fn timestamp() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .max_length(Some(TIMESTAMP_MAX_LEN))
        .build()
}

/// A timestamp, or null while the event it marks has not happened.
pub fn optional_timestamp() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .max_length(Some(TIMESTAMP_MAX_LEN))
        .build()
}

/// RFC 3339 with nanoseconds and an offset: `2026-11-24T09:30:00.123456789+00:00`.
const TIMESTAMP_MAX_LEN: usize = 35;
