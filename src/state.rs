//! What every handler, extractor and middleware can reach: one container, registered once.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::{authentication::Auth, ledger::Accounts, metrics::Metrics};

pub struct AppState {
    pub db: DatabaseConnection,
    /// Accounts by id, the reads of the busiest routes.
    pub accounts: Accounts,
    pub metrics: Metrics,
    pub auth: Auth,
    /// How long a write whose connection failed may spend learning whether it was applied.
    pub settle_within: Duration,
}
