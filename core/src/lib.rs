//! bank-core: what the bank decides, with no HTTP in it. The web crate (`bank-api`) parses
//! requests into the values defined here, calls these functions, and decides what a client is
//! told and what is counted; nothing here knows a status code, a header, a metric or a span
//! exporter, and the compiler keeps it so (this crate does not depend on any of them).
//!
//! - `domain`: values checked where requests enter (amounts, text, credentials, ids, scopes).
//! - `ledger`: the money rules and every balance change, and the reads of accounts and rows.
//! - `idempotency`: keys that make a write safe to resend, and settling a write whose
//!   connection failed before its answer came back.
//! - `authentication`: passwords, tokens, login limits, and who a token names.
//! - `webhooks`: endpoints that hear of money events, and the outbox their messages wait in.
//! - `database`: opening the pool and migrating, and telling an unavailable database from a
//!   failed statement.
//!
//! Each module's failures are its own error type; their texts are for logs, never for clients.

pub mod authentication;
pub mod database;
pub mod domain;
pub mod idempotency;
pub mod ledger;
pub mod webhooks;
