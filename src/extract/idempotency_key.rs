//! The optional `Idempotency-Key` header of a write; a key that is sent but malformed is a 422,
//! never ignored.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use bank_core::domain::IdempotencyKey;
use utoipa::IntoParams;

use crate::error::{Invalid, Loc};

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on a response that was replayed from a stored key rather than applied again.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// Makes retries safe: a key unique per intended write. A repeat with the same key and body is
/// answered as the first was, and writes nothing.
#[derive(IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct IdempotencyKeyHeader(
    #[param(schema_with = crate::extract::schemas::idempotency_key, required = false)]
    pub  Option<IdempotencyKey>,
);

impl FromRequest for IdempotencyKeyHeader {
    type Error = Invalid;
    type Future = Ready<Result<Self, Invalid>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req.headers().get(IDEMPOTENCY_KEY).map(|value| {
            IdempotencyKey::parse(value.to_str().unwrap_or_default())
                .map_err(|error| Invalid::domain(Loc::Header(IDEMPOTENCY_KEY), error))
        });
        ready(key.transpose().map(Self))
    }
}
