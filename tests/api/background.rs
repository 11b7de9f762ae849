//! The work the server runs besides requests: each task runs while the server does, is started
//! again when it fails (and the failure counted), and is stopped with the server.

use std::time::Duration;

use bank_api::startup::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::helpers::{postgres_settings, sample};

/// Sessions of this database that listen for user changes.
async fn listeners(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Waits up to 10 s for `check` to hold.
async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within 10 s");
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_failed_task_starts_again_and_every_task_stops_with_the_server() {
    let app = Application::build(postgres_settings().await)
        .await
        .expect("the app starts");
    let (handle, db) = (app.handle(), app.db().clone());
    let metrics_url = format!("http://127.0.0.1:{}/metrics", app.port());
    let running = tokio::spawn(app.run_until_stopped());
    let metric = async |name: &str| {
        let text = reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sample(&text, name, &[("task", "user_directory")])
    };
    eventually("the listener runs", async || listeners(&db).await == 1).await;
    assert_eq!(metric("bank_background_tasks_running").await, Some(1.0));

    // Its connection is cut: the task fails, is counted, and listens again on a new one.
    db.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    eventually("the failure is counted", async || {
        metric("bank_background_task_failures_total").await == Some(1.0)
    })
    .await;
    eventually("the listener runs again", async || {
        listeners(&db).await == 1
    })
    .await;

    handle.stop(true).await;
    running.await.unwrap().expect("the server stopped cleanly");
    eventually("the listener is gone", async || listeners(&db).await == 0).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn only_requests_open_the_requests_connections() {
    let settings = postgres_settings().await;
    let observer = sea_orm::Database::connect(&settings.database_url)
        .await
        .expect("a connection of the test's own");
    let app = Application::build(settings).await.expect("the app starts");
    let pool = app.db().get_postgres_connection_pool().clone();
    let ready = format!("http://127.0.0.1:{}/ready", app.port());
    let (handle, running) = (app.handle(), tokio::spawn(app.run_until_stopped()));

    // Start-up and every background task have used the database (hold expiry sweeps each
    // second), on connections of their own.
    eventually("the listener runs", async || {
        listeners(&observer).await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        pool.size(),
        0,
        "connections of the requests' pool opened off a request"
    );

    let status = reqwest::get(&ready).await.unwrap().status();
    assert_eq!(status, 200);
    assert_eq!(pool.size(), 1, "the request opened the connection it used");

    handle.stop(true).await;
    running.await.unwrap().expect("the server stopped cleanly");
}
