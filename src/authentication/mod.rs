//! Who is calling, and what they may do.
//!
//! - `password`: argon2id hashes, made and checked off the async workers.
//! - `token`: the signed, short-lived bearer tokens `POST /token` hands out.
//! - `throttle`: failed logins counted in the database, per username and client address.
//! - `caller`: the `Caller` a token names, and the scope of accounts it may act on; data routes
//!   ask for one as an argument (the extractor is in `extract`), so a handler's signature shows
//!   its access rule.
//! - `directory`: the users this process remembers, kept true by Postgres's notices of changes.
//! - `users`: signing up, logging in, and the operator account made from the environment.
//!
//! Its failures are [`AuthError`]s; `error.rs` decides their HTTP answers.

pub mod caller;
pub mod directory;
pub mod password;
pub mod throttle;
pub mod token;
pub mod users;

pub use caller::{Caller, Role};

use sea_orm::DbErr;

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header at all.
    #[error("Not authenticated")]
    NotAuthenticated,
    /// A token that is malformed, expired, wrongly signed or names no user.
    #[error("Could not validate credentials")]
    InvalidToken,
    /// A login with an unknown username or a wrong password: the two look the same.
    #[error("Incorrect username or password")]
    BadCredentials,
    /// Too many failed logins; the seconds until the next attempt is heard.
    #[error("Too many failed login attempts; try again later")]
    Throttled(u64),
    #[error("Sign-up is disabled")]
    SignUpDisabled,
    #[error("Username already taken")]
    UsernameTaken,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// Hashing or signing failed; the text is logged, never sent.
    #[error("authentication failed internally: {0}")]
    Internal(String),
}

/// What authentication needs at request time, shared by every worker.
pub struct Auth {
    pub tokens: token::Tokens,
    pub directory: std::sync::Arc<directory::Directory>,
    pub throttle: throttle::Throttle,
    /// Whose `X-Forwarded-For` names the client a login limit counts.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub required: bool,
    pub signup_enabled: bool,
}

impl Auth {
    pub fn new(settings: &Settings) -> Self {
        if settings.jwt_secret.is_none() {
            log::warn!(
                "JWT_SECRET is not set: tokens are signed with a key made at start, so they stop \
                 working when this process stops and other replicas refuse them"
            );
        }
        if !settings.auth_required {
            log::warn!(
                "AUTH_REQUIRED=false: every caller is treated as an operator and can read and move \
                 every account's money. Use this for local demos only"
            );
        }
        Self {
            tokens: token::Tokens::new(settings.jwt_secret.as_ref(), settings.token_ttl),
            directory: Default::default(),
            throttle: throttle::Throttle::new(settings.login_throttle_window),
            trusted_proxies: settings.trusted_proxies.clone(),
            required: settings.auth_required,
            signup_enabled: settings.signup_enabled,
        }
    }
}
