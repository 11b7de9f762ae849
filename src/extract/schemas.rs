//! The OpenAPI schemas of values with limits, built from the constants that enforce them, so the
//! document cannot say one thing while the rules do another. Used with `schema_with`.

use utoipa::openapi::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type, schema::SchemaType};

use bank_core::domain::{
    DomainError, IdempotencyKey, MAX_AMOUNT, MAX_HOLD_SECONDS, MAX_TEXT_CHARS, Password, Text,
    Username,
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
