//! Who is calling, and what they may do.
//!
//! - `password`: argon2id hashes, made and checked off the async workers.
//! - `token`: the signed, short-lived bearer tokens `POST /token` hands out.
//! - `throttle`: failed logins remembered per username and per client address.
//! - `caller`: the `Caller` extractor every data route asks for; a handler's signature shows its
//!   access rule, and `Caller::scope` is what the ledger filters by.
//! - `users`: signing up, logging in, and the operator account made from the environment.

pub mod caller;
pub mod password;
pub mod throttle;
pub mod token;
pub mod users;

pub use caller::{Caller, MaybeCaller, Role};

use crate::{config::Settings, metrics::Metrics};

/// What authentication needs at request time, shared by every worker.
pub struct Auth {
    pub db: sea_orm::DatabaseConnection,
    pub tokens: token::Tokens,
    pub throttle: throttle::Throttle,
    pub required: bool,
    pub signup_enabled: bool,
    pub metrics: Metrics,
}

impl Auth {
    pub fn new(settings: &Settings, db: sea_orm::DatabaseConnection, metrics: Metrics) -> Self {
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
            db,
            tokens: token::Tokens::new(settings.jwt_secret.as_ref(), settings.token_ttl),
            throttle: throttle::Throttle::new(settings.login_throttle_window),
            required: settings.auth_required,
            signup_enabled: settings.signup_enabled,
            metrics,
        }
    }
}
