//! On Postgres, a statement that stores writes looks for their messages' endpoints only when there
//! is an endpoint at all. Without one, the outbox's join over the written rows, their ledger rows
//! and accounts found nothing at about 80 µs per group of 24 postings; a server that nobody has
//! asked for webhooks is the usual case, and the one the benchmarks run.
//!
//! The check reads `webhook_endpoints` in a snapshot of its own, as the join did: a write that
//! misses an endpoint registered meanwhile is one made before it, and gets no message either way.

use sea_orm_migration::prelude::*;

use crate::{m20261206_000001_outbox_per_statement::outbox_function, on_postgres};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ONLY_WITH_ENDPOINTS: &str = "
    IF NOT EXISTS (SELECT FROM webhook_endpoints) THEN
        RETURN NULL;
    END IF;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, &outbox_function(ONLY_WITH_ENDPOINTS)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, &outbox_function("")).await
    }
}
