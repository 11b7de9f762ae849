//! Bearer tokens: HS256 JWTs carrying the user's id, signed with `JWT_SECRET` and valid for
//! `TOKEN_TTL_SECS`. Only HS256 is accepted, so `alg: none` and other algorithms are refused.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
};
use serde::{Deserialize, Serialize};

use super::AuthError;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::UserId;

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The user's id.
    sub: String,
    iat: u64,
    exp: u64,
}

/// Why a request's token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Expired,
    BadSignature,
    UnknownUser,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: std::time::Duration,
}

impl Tokens {
    pub fn new(secret: Option<&SecretString>, ttl: std::time::Duration) -> Self {
        let key = match secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            // 256 random bits from two v4 UUIDs (the OS's random source).
            None => [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|id| id.into_bytes())
                .collect(),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: UserId) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            sub: user_id.0.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AuthError::internal)
    }

    /// The user id a token was issued to, if it is well-formed, ours and not expired.
    pub fn verify(&self, token: &str) -> Result<UserId, Refusal> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(
                |error| match error.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Expired,
                    ErrorKind::InvalidSignature => Refusal::BadSignature,
                    _ => Refusal::Malformed,
                },
            )?;
        data.claims
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| Refusal::Malformed)
    }
}
