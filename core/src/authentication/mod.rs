//! Who is calling, and what they may do.
//!
//! - `password`: argon2id hashes, made and checked off the async workers.
//! - `token`: the signed, short-lived bearer tokens `POST /token` hands out.
//! - `sessions`: the refresh tokens beside them, rotated on each use and revoked as a family.
//! - `throttle`: failed logins counted in the database, per username and client address.
//! - `caller`: the `Caller` a token names, and the scope of accounts it may act on.
//! - `directory`: the users this process remembers, kept true by Postgres's notices of changes.
//! - `users`: signing up, logging in, and the operator account made from the environment.
//!
//! Its failures are [`AuthError`]s; what a client is told of them is the web crate's business.

pub mod caller;
pub mod directory;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod token;
pub mod users;

pub use caller::{Caller, Role};

use std::{sync::Arc, time::Duration};

use sea_orm::DbErr;
use secrecy::SecretString;

/// Why a caller or a login was refused, in words for logs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or one that is malformed, expired, wrongly signed or names no user.
    #[error("token refused: {0:?}")]
    Token(token::Refusal),
    /// A login with an unknown username or a wrong password: the two look the same.
    #[error("unknown username or wrong password")]
    BadCredentials,
    /// Too many failed logins; the seconds until the next attempt is heard.
    #[error("login throttled for {0} s")]
    Throttled(u64),
    /// A refresh token that cannot be exchanged, and why.
    #[error("refresh token refused: {0:?}")]
    Refresh(sessions::Refused),
    #[error("sign-up is switched off")]
    SignUpDisabled,
    #[error("the username is taken")]
    UsernameTaken,
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// Hashing, signing or a task running them failed.
    #[error("authentication failed internally: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

/// How authentication is set up.
pub struct AuthOptions<'a> {
    /// The HS256 key; `None`: one is made at start, so tokens die with the process.
    pub signing_key: Option<&'a SecretString>,
    pub token_ttl: Duration,
    /// How long a refresh token may wait to be exchanged.
    pub refresh_token_ttl: Duration,
    /// How long failed logins are remembered.
    pub throttle_window: Duration,
    /// Data routes need a token; without, every caller is an operator.
    pub required: bool,
    pub signup_enabled: bool,
}

/// What authentication needs at request time, shared by every worker.
pub struct Auth {
    pub tokens: token::Tokens,
    pub sessions: sessions::Sessions,
    pub directory: Arc<directory::Directory>,
    pub throttle: throttle::Throttle,
    pub required: bool,
    pub signup_enabled: bool,
}

impl Auth {
    pub fn new(options: AuthOptions) -> Self {
        Self {
            tokens: token::Tokens::new(options.signing_key, options.token_ttl),
            sessions: sessions::Sessions::new(options.refresh_token_ttl),
            directory: Default::default(),
            throttle: throttle::Throttle::new(options.throttle_window),
            required: options.required,
            signup_enabled: options.signup_enabled,
        }
    }
}
