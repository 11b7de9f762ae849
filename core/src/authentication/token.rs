//! Bearer tokens: HS256 JWTs carrying the user's id, signed with `JWT_SECRET` and valid for
//! `TOKEN_TTL_SECS`. Only HS256 is accepted, so `alg: none` and other algorithms are refused.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

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

/// How many verified tokens are remembered; when full, all are forgotten at once.
const REMEMBERED: usize = 4096;

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: std::time::Duration,
    /// Tokens already verified, to their user and expiry: a client sends the same token with
    /// every request, and checking its signature took a tenth of a read's CPU. Only tokens that
    /// passed are kept, under their whole text, signature included, so an entry matches nothing
    /// but the exact token that was verified.
    verified: Mutex<HashMap<String, (UserId, u64)>>,
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
            verified: Mutex::default(),
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
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let known = self.remembered().get(token).copied();
        if let Some((user, expires)) = known {
            // As jsonwebtoken decides with no leeway: valid through its `exp` second.
            return if now <= expires {
                Ok(user)
            } else {
                Err(Refusal::Expired)
            };
        }
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(
                |error| match error.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Expired,
                    ErrorKind::InvalidSignature => Refusal::BadSignature,
                    _ => Refusal::Malformed,
                },
            )?;
        let user = data
            .claims
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| Refusal::Malformed)?;
        let mut remembered = self.remembered();
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(token.to_owned(), (user, data.claims.exp));
        Ok(user)
    }

    fn remembered(&self) -> MutexGuard<'_, HashMap<String, (UserId, u64)>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ttl_secs: u64) -> Tokens {
        let key = SecretString::from("a test key of at least thirty-two characters");
        Tokens::new(Some(&key), std::time::Duration::from_secs(ttl_secs))
    }

    /// A remembered token stops working when it expires, as one checked afresh does.
    #[test]
    fn a_remembered_token_expires() {
        let tokens = tokens(0);
        let token = tokens.issue(UserId(7)).expect("issued");
        assert_eq!(tokens.verify(&token), Ok(UserId(7)));
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(tokens.verify(&token), Err(Refusal::Expired));
    }

    /// Remembering a token admits that exact text only: another signature on the same claims is
    /// still refused.
    #[test]
    fn only_the_exact_token_is_remembered() {
        let tokens = tokens(60);
        let token = tokens.issue(UserId(7)).expect("issued");
        assert_eq!(tokens.verify(&token), Ok(UserId(7)));
        let (claims, signature) = token.rsplit_once('.').expect("three parts");
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let forged = format!("{claims}.{flipped}{}", &signature[1..]);
        assert_eq!(tokens.verify(&forged), Err(Refusal::BadSignature));
        assert_eq!(tokens.verify(&token), Ok(UserId(7)));
    }

    /// Tokens of another key are refused even after this key's tokens were remembered.
    #[test]
    fn a_foreign_key_is_refused() {
        let ours = tokens(60);
        let theirs = Tokens::new(
            Some(&SecretString::from(
                "another key, also thirty-two characters",
            )),
            std::time::Duration::from_secs(60),
        );
        assert_eq!(
            ours.verify(&ours.issue(UserId(1)).expect("issued")),
            Ok(UserId(1))
        );
        let foreign = theirs.issue(UserId(1)).expect("issued");
        assert_eq!(ours.verify(&foreign), Err(Refusal::BadSignature));
    }
}
