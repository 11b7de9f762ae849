//! What every handler, extractor and middleware can reach: one container, registered once.

use bank_core::{
    authentication::Auth,
    ledger::{Accounts, Ledger},
};
use sea_orm::DatabaseConnection;

use crate::{
    faults::Faults, metrics::Metrics, middleware::RateLimits, webhooks::addresses::Allowed,
};

pub struct AppState {
    pub db: DatabaseConnection,
    /// Accounts by id, the reads of the busiest routes.
    pub accounts: Accounts,
    /// Every posting and transfer.
    pub ledger: Ledger,
    pub metrics: Metrics,
    /// What the fault flags ask for now; nothing unless `FAULT_FLAGS` is set.
    pub faults: Faults,
    pub auth: Auth,
    /// Each client's requests; `None` when `RATE_LIMIT_PER_SECOND=0`.
    pub rate_limits: Option<std::sync::Arc<RateLimits>>,
    /// Whose `X-Forwarded-For` names the client a login or request limit counts.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where webhook endpoints may be registered.
    pub webhook_addresses: Allowed,
}
