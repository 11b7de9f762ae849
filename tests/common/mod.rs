//! What every Rust test crate here needs: a fresh database of its own, on SQLite or on the
//! Postgres server `TEST_DATABASE_URL` names.

use sea_orm::{ConnectionTrait, Database};

/// A new SQLite file in the temporary directory.
pub fn sqlite_database() -> String {
    let path = std::env::temp_dir().join(format!("bank-test-{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A new, empty database on the test server, so tests can run in parallel.
pub async fn postgres_database(server_url: &str) -> String {
    let server = Database::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL is set but Postgres is unreachable");
    let name = format!("bank_test_{}", uuid::Uuid::new_v4().simple());
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    format!("{base}/{name}")
}
