//! The optional `Idempotency-Key` header of a write; a key that is sent but malformed is a 422,
//! never ignored.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use utoipa::IntoParams;

use crate::{
    authentication::Caller,
    domain::IdempotencyKey,
    error::{ApiError, Loc, kind},
    idempotency::{HEADER, OwnedKey},
};

/// Makes retries safe: a key unique per intended write. A repeat with the same key and body is
/// answered as the first was, and writes nothing.
#[derive(IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct IdempotencyKeyHeader(
    #[param(schema_with = crate::extract::schemas::idempotency_key, required = false)]
    pub  Option<IdempotencyKey>,
);

impl FromRequest for IdempotencyKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req.headers().get(HEADER).map(|value| {
            IdempotencyKey::parse(value.to_str().unwrap_or_default()).map_err(|error| {
                ApiError::validation(Loc::Header(HEADER), error.to_string(), kind(error))
            })
        });
        ready(key.transpose().map(Self))
    }
}

impl Caller {
    /// The caller's key, among the caller's own keys.
    pub fn own(&self, header: IdempotencyKeyHeader) -> Option<OwnedKey> {
        header.0.map(|key| OwnedKey {
            owner: self.user_id,
            key,
        })
    }
}
