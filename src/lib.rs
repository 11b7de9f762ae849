//! bank-api: the web edge of the bank. HTTP routes, their OpenAPI description, what clients are
//! told when something fails, metrics, logs and traces, all around `bank-core`, which decides
//! everything about money and callers and knows nothing of HTTP.

pub mod background;
pub mod config;
pub mod error;
pub mod extract;
pub mod faults;
pub mod healthcheck;
pub mod metrics;
pub mod middleware;
pub mod profiling;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
