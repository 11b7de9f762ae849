//! bank-api: accounts, a ledger and transfers over SeaORM, with Prometheus metrics and OpenAPI docs.

pub mod authentication;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod healthcheck;
pub mod idempotency;
pub mod ledger;
pub mod metrics;
pub mod middleware;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
