//! Integration tests: each starts the real application on port 0 with a fresh database and talks
//! HTTP to it, on SQLite always and on Postgres when `TEST_DATABASE_URL` is set.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/cpu_profiles.rs"]
mod cpu_profiles;

mod access;
mod accounts;
mod background;
mod batches;
mod conflicts;
mod docs;
mod errors;
mod faults;
mod headers;
mod helpers;
mod holds;
mod idempotency;
mod logins;
mod metrics;
mod open_access;
mod operations;
mod profiling;
mod rate_limits;
mod security;
mod sessions;
mod startup;
mod tokens;
mod transactions;
mod transfers;
mod upgrade;
mod webhooks;
