//! What every handler, extractor and middleware can reach: one container, registered once.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::{authentication::Auth, metrics::Metrics};

pub struct AppState {
    pub db: DatabaseConnection,
    pub metrics: Metrics,
    pub auth: Auth,
    /// How long a write whose connection failed may spend learning whether it was applied.
    pub settle_within: Duration,
}
