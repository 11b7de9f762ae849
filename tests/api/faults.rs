//! Fault flags (`FAULT_FLAGS`): off and exported as off without a flags file; with one, each flag
//! flipped in the file bends what the service does within seconds, as a real fault would look,
//! and is exported while on; flipped back, the service is itself again.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_detail, on_each_backend, postgres_settings, sample, sqlite_settings,
};

const FLAGS: &str = include_str!("../../flagd/faults.flagd.json");
const ALL: [&str; 7] = [
    "routeLatency",
    "routeFailure",
    "routeCpuBurn",
    "slowStatement",
    "poolHeld",
    "longTransaction",
    "deadlocks",
];

/// A copy of the shipped flags file, every flag off, that a test flips as an operator would.
pub struct FlagFile(PathBuf);

impl FlagFile {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "bank-test-flags-{}-{}.json",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, FLAGS).expect("the flags file is written");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Sets `flag`'s default variant, and its targeting (`None`: every route).
    pub fn set(&self, flag: &str, variant: &str, route: Option<&str>) {
        let mut flags: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.0).expect("flags")).expect("JSON");
        let entry = &mut flags["flags"][flag];
        assert!(entry.is_object(), "{flag} is a shipped flag");
        match route {
            Some(route) => {
                entry["targeting"] = json!({"if": [{"==": [{"var": "route"}, route]}, variant]});
                entry["defaultVariant"] = json!("off");
            }
            None => {
                entry
                    .as_object_mut()
                    .expect("an object")
                    .remove("targeting");
                entry["defaultVariant"] = json!(variant);
            }
        }
        // Written beside and renamed over, as editors do, so the service never reads half a file.
        let next = self.0.with_extension("next");
        std::fs::write(&next, flags.to_string()).expect("written");
        std::fs::rename(&next, &self.0).expect("renamed");
    }
}

impl Drop for FlagFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn active(app: &TestApp, flag: &str) -> Option<f64> {
    sample(
        &app.metrics().await,
        "bank_fault_flag_active",
        &[("flag", flag)],
    )
}

/// Waits (up to 10 s) until `flag` is exported as `on` (1) or off (0).
pub async fn until_flag(app: &TestApp, flag: &str, on: bool) {
    let wanted = if on { 1.0 } else { 0.0 };
    let started = Instant::now();
    while active(app, flag).await != Some(wanted) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{flag} exported as {wanted} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn spawn_with_flags(mut settings: bank_api::config::Settings) -> (TestApp, FlagFile) {
    let flags = FlagFile::new();
    settings.fault_flags = Some(flags.path().to_owned());
    (TestApp::spawn(settings).await, flags)
}

#[tokio::test]
async fn without_a_flags_file_every_flag_is_off_and_no_route_can_change_one() {
    on_each_backend(async |app| {
        let metrics = app.metrics().await;
        for flag in ALL {
            assert_eq!(
                sample(&metrics, "bank_fault_flag_active", &[("flag", flag)]),
                Some(0.0),
                "{flag} is exported, off"
            );
        }
        assert!(
            !metrics.contains("task=\"fault_flags\""),
            "nothing evaluates flags"
        );
        // Flags live in a file only the operator of the machine writes: no route reads or sets one.
        let doc = app.get_json("/openapi.json").await;
        let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
        assert!(
            paths
                .iter()
                .all(|path| !path.contains("flag") && !path.contains("fault")),
            "{paths:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_route_answers_500_like_any_failure_until_its_flag_is_off() {
    let (app, flags) = spawn_with_flags(sqlite_settings()).await;
    let account = app.funded_account(100).await;
    let read = format!("/accounts/{account}");
    for flag in ALL {
        assert_eq!(active(&app, flag).await, Some(0.0), "{flag} starts off");
    }

    flags.set("routeFailure", "all", Some("/accounts/{account_id}"));
    until_flag(&app, "routeFailure", true).await;
    let failed = app.get(&read).await;
    assert!(
        failed.headers().contains_key("x-request-id"),
        "answered as any request"
    );
    assert_detail(
        failed,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
    )
    .await;
    assert_eq!(
        app.get("/accounts").await.status(),
        StatusCode::OK,
        "only the route named"
    );
    let failures = sample(
        &app.metrics().await,
        "http_requests_total",
        &[("endpoint", "/accounts/{account_id}"), ("status", "500")],
    );
    assert_eq!(failures, Some(1.0), "counted as a 5xx of its route");

    // A file that does not parse leaves the flags as they were.
    std::fs::write(flags.path(), "{ not json").expect("written");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(active(&app, "routeFailure").await, Some(1.0));

    std::fs::write(flags.path(), FLAGS).expect("written");
    until_flag(&app, "routeFailure", false).await;
    assert_eq!(app.get(&read).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_slow_route_is_slow_by_a_spread_of_latencies() {
    let (app, flags) = spawn_with_flags(sqlite_settings()).await;
    flags.set("routeLatency", "200ms", Some("/ping"));
    until_flag(&app, "routeLatency", true).await;
    let mut took = Vec::new();
    for _ in 0..8 {
        let started = Instant::now();
        assert_eq!(app.get("/ping").await.status(), StatusCode::OK);
        took.push(started.elapsed());
    }
    took.sort();
    // Log-normal around 200 ms (σ 0.5): the median of eight is above 100 ms unless 4 of them fall
    // below half the median (each 8%); and they are not all the same.
    assert!(took[4] > Duration::from_millis(100), "{took:?}");
    assert!(
        took[7] - took[0] > Duration::from_millis(5),
        "a spread: {took:?}"
    );
    let started = Instant::now();
    app.get("/accounts").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "other routes are not slowed"
    );
}

async fn postgres_app() -> (TestApp, FlagFile) {
    spawn_with_flags(postgres_settings().await).await
}

/// The one number `sql` selects, as the server's own pool answers it.
async fn number(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("the query runs")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

async fn until(what: &str, check: impl AsyncFn() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn database_flags_hold_the_pool_leave_a_transaction_open_deadlock_and_slow_writes() {
    let (app, flags) = postgres_app().await;
    let (one, other) = (
        app.funded_account(1_000).await,
        app.funded_account(1_000).await,
    );

    flags.set("poolHeld", "half", None);
    until_flag(&app, "poolHeld", true).await;
    until("five connections held", async || {
        let metrics = app.metrics().await;
        sample(&metrics, "db_pool_connections", &[("state", "in_use")]) >= Some(5.0)
    })
    .await;
    flags.set("poolHeld", "off", None);
    until("the connections given back", async || {
        let metrics = app.metrics().await;
        sample(&metrics, "db_pool_connections", &[("state", "in_use")]) < Some(2.0)
    })
    .await;

    let open = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                AND state = 'idle in transaction' AND backend_xid IS NOT NULL";
    flags.set("longTransaction", "on", None);
    until("an open transaction", async || {
        number(&app, open).await == 1
    })
    .await;
    flags.set("longTransaction", "off", None);
    until("the transaction ended", async || {
        number(&app, open).await == 0
    })
    .await;

    let deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";
    let before = number(&app, deadlocks).await;
    flags.set("deadlocks", "on", None);
    until("Postgres finds a deadlock", async || {
        number(&app, deadlocks).await > before
    })
    .await;
    flags.set("deadlocks", "off", None);
    until_flag(&app, "deadlocks", false).await;
    assert_eq!(
        app.balance(one).await,
        1_000,
        "the writers changed no balance"
    );
    assert_eq!(app.balance(other).await, 1_000);

    flags.set("slowStatement", "300ms", None);
    until_flag(&app, "slowStatement", true).await;
    let started = Instant::now();
    let posted = app
        .post("/transactions", &json!({"acc_id": one, "credit": 5}))
        .await;
    assert_eq!(posted.status(), StatusCode::CREATED, "slow, not failed");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(app.balance(one).await, 1_005, "applied once");
}
