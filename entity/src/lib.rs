//! SeaORM entities, one module per table. No logic lives here: the money rules are in the app's ledger.

pub mod account;
pub mod hold;
pub mod idempotency_key;
pub mod ledger_write;
pub mod login_failure;
pub mod outbox;
pub mod refresh_token;
pub mod transaction;
pub mod user;
pub mod webhook_endpoint;
