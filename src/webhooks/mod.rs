//! Webhooks: the money events of an account, sent to the endpoints its owner (or an operator)
//! registered, signed the Standard Webhooks way. The database writes each message into the
//! outbox in the transaction of its change (see `bank_core::webhooks`); the dispatcher here sends
//! what is due, retries on a growing schedule (a `Retry-After` is honoured), and disables an
//! endpoint that keeps failing until its owner enables it again. Every replica runs one; a
//! message is sent at least once, and never by two at the same time.
//!
//! - `addresses`: where webhooks may go (no private addresses unless an operator allows them).
//! - `signing`: secrets and signatures.
//! - `dispatcher`: claiming, sending and settling.

pub mod addresses;
mod dispatcher;
pub mod signing;

pub use dispatcher::{Dispatcher, Render, Retries};
