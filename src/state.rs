//! What every handler, extractor and middleware can reach: one container, registered once.

use bank_core::{
    authentication::Auth,
    ledger::{Accounts, Ledger},
};
use sea_orm::DatabaseConnection;

use crate::{metrics::Metrics, webhooks::addresses::Allowed};

pub struct AppState {
    pub db: DatabaseConnection,
    /// Accounts by id, the reads of the busiest routes.
    pub accounts: Accounts,
    /// Every posting and transfer.
    pub ledger: Ledger,
    pub metrics: Metrics,
    pub auth: Auth,
    /// Whose `X-Forwarded-For` names the client a login limit counts.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where webhook endpoints may be registered.
    pub webhook_addresses: Allowed,
}
