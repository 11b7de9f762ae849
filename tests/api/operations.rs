use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_detail, on_each_backend, on_each_backend_with};

#[tokio::test]
async fn ping_health_and_ready_answer() {
    on_each_backend(async |app| {
        assert_eq!(app.get_json("/ping").await, json!({"ping": "pong"}));
        assert_eq!(app.get_json("/health").await, json!({"status": "ok"}));
        assert_eq!(app.get_json("/ready").await, json!({"status": "ready"}));
    })
    .await;
}

#[tokio::test]
async fn without_a_database_ready_and_data_routes_are_503_but_health_is_200() {
    on_each_backend(async |app| {
        let id = app.create_account().await;
        app.db.close_by_ref().await.unwrap();

        let unavailable = "Service temporarily unavailable";
        assert_detail(
            app.get("/ready").await,
            StatusCode::SERVICE_UNAVAILABLE,
            unavailable,
        )
        .await;
        assert_detail(
            app.get(&format!("/accounts/{id}")).await,
            StatusCode::SERVICE_UNAVAILABLE,
            unavailable,
        )
        .await;
        let write = app
            .post("/transactions", &json!({"acc_id": id, "credit": 1}))
            .await;
        assert_detail(write, StatusCode::SERVICE_UNAVAILABLE, unavailable).await;
        assert_eq!(app.get("/health").await.status(), StatusCode::OK);
        assert_eq!(app.get("/metrics").await.status(), StatusCode::OK);
    })
    .await;
}

/// `GET /500` is off by default: neither served nor documented.
#[tokio::test]
async fn the_diagnostics_route_is_off_by_default() {
    on_each_backend(async |app| {
        assert_detail(app.get("/500").await, StatusCode::NOT_FOUND, "Not Found").await;
        let doc = app.get_json("/openapi.json").await;
        assert!(
            doc["paths"].get("/500").is_none(),
            "not documented when off"
        );
    })
    .await;
}

/// Switched on, it fails on purpose for an operator only: anyone else would spend the error budget
/// and page the on-call.
#[tokio::test]
async fn the_diagnostics_route_fails_on_purpose_for_operators_only() {
    on_each_backend_with(
        |settings| settings.diagnostics_routes = true,
        async |app| {
            let detail = "Intentional error from the diagnostics route";
            assert_detail(
                app.get("/500").await,
                StatusCode::INTERNAL_SERVER_ERROR,
                detail,
            )
            .await;
            let customer = app.customer("mallory").await;
            assert_detail(
                customer.get("/500").await,
                StatusCode::FORBIDDEN,
                "Only operators may call the diagnostics routes",
            )
            .await;
            let anonymous = app.anonymous(reqwest::Method::GET, "/500", None).await;
            assert_detail(anonymous, StatusCode::UNAUTHORIZED, "Not authenticated").await;
            let metrics = app.metrics().await;
            let failed = [("endpoint", "/500"), ("status", "500")];
            assert_eq!(
                crate::helpers::sample(&metrics, "http_requests_total", &failed),
                Some(1.0),
                "only the operator's call counts as a 5xx"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn the_root_sends_people_to_the_docs() {
    on_each_backend(async |app| {
        let response = app.get("/").await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()["location"], "/docs/");
    })
    .await;
}

/// Replicas of one deployment start at the same moment and all run the migrations; on Postgres
/// they take turns under an advisory lock. (SQLite is the single-process setup.)
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn replicas_starting_together_on_a_new_postgres_database_all_come_up() {
    let settings = crate::helpers::postgres_settings().await;
    let starts = (0..4).map(|_| TestApp::spawn(settings.clone()));

    let replicas = futures_util::future::join_all(starts).await;

    for replica in &replicas {
        assert_eq!(replica.get("/ready").await.status(), StatusCode::OK);
    }
}

/// A standby reached by mistake (during a failover, the balancer may still point at the old
/// primary) refuses every write as read-only: the client gets a clear 503 to retry, never a 500
/// that looks like a bug, and nothing is written. Reads still work.
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_read_only_database_answers_writes_503_and_writes_nothing() {
    use sea_orm::ConnectionTrait;

    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
    let app = TestApp::spawn(crate::helpers::postgres_settings().await).await;
    let account = app.funded_account(500).await;
    let rows = app.ledger_len().await;
    let admin = sea_orm::Database::connect(&server).await.unwrap();
    let name = app.settings.database_url.rsplit('/').next().unwrap();
    // Every new session is read-only, as on a standby, and the pool's sessions are ended so
    // that the next requests open new ones.
    let read_only = async |on: bool| {
        let setting = if on {
            "SET default_transaction_read_only = on"
        } else {
            "RESET default_transaction_read_only"
        };
        admin
            .execute_unprepared(&format!("ALTER DATABASE {name} {setting}"))
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        for _ in 0..50 {
            if app.get(&format!("/accounts/{account}")).await.status() == StatusCode::OK {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("reads never came back");
    };
    read_only(true).await;

    let writes = [
        ("/transactions", json!({"acc_id": account, "credit": 5})),
        (
            "/accounts",
            json!({"first_name": "R", "last_name": "O", "address": "x"}),
        ),
    ];
    for (path, body) in writes {
        let response = app.post(path, &body).await;
        assert_detail(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable",
        )
        .await;
    }
    let keyed = app
        .post_with_key(
            "/transactions",
            "read-only",
            &json!({"acc_id": account, "credit": 7}),
        )
        .await;
    assert_eq!(
        keyed.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not 500: certainly not applied"
    );

    read_only(false).await;
    assert_eq!(app.ledger_len().await, rows, "a refused write was stored");
    assert_eq!(app.balance(account).await, 500);
}
