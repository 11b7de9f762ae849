use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, assert_detail, on_each_backend_with, sample};

#[tokio::test]
async fn metrics_can_be_served_on_a_separate_private_address() {
    on_each_backend_with(
        |settings| settings.metrics_address = Some("127.0.0.1:0".into()),
        async |app| {
            app.create_account().await;

            assert_detail(
                app.get("/metrics").await,
                StatusCode::NOT_FOUND,
                "Not Found",
            )
            .await;
            let doc = app.get_json("/openapi.json").await;
            assert!(
                doc["paths"].get("/metrics").is_none(),
                "not documented on the API"
            );
            let private = app.metrics_address.as_ref().expect("a metrics listener");
            let response = app
                .client
                .get(format!("{private}/metrics"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let metrics = response.text().await.unwrap();
            let created = [
                ("endpoint", "/accounts"),
                ("method", "POST"),
                ("status", "201"),
            ];
            assert_eq!(sample(&metrics, "http_requests_total", &created), Some(1.0));
            assert_eq!(
                sample(&metrics, "bank_accounts_created_total", &[]),
                Some(1.0)
            );
            assert!(sample(&metrics, "process_resident_memory_bytes", &[]).is_some());
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_cut_off_with_408() {
    on_each_backend_with(
        |settings| settings.client_timeout = Duration::from_secs(1),
        async |app| {
            let token = app.token.as_deref().expect("an operator's token");
            let head = format!(
                "POST /accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"first"
            );
            let started = Instant::now();

            let (answer, _) = send_and_stall(&app, head.as_bytes()).await;

            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            assert!(
                answer.contains("{\"detail\":\"Request body not received in time\"}"),
                "{answer}"
            );
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(app.get_json("/accounts").await, json!([]));
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    on_each_backend_with(
        |settings| settings.client_timeout = Duration::from_secs(1),
        async |app| {
            let (answer, closed) = send_and_stall(&app, b"GET /ping HTTP/1.1\r\nHost: x\r\n").await;

            assert!(closed, "the server closed the connection");
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{answer}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn failures_never_reveal_internal_details() {
    on_each_backend_with(
        |settings| settings.diagnostics_routes = true,
        async |app| {
            let id = app.create_account().await;
            app.db.close_by_ref().await.unwrap();
            let responses = [
                app.get(&format!("/accounts/{id}")).await,
                app.post("/transactions", &json!({"acc_id": id, "credit": 5}))
                    .await,
                app.get("/ready").await,
                app.get("/500").await,
            ];
            for response in responses {
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                let text = body.to_string().to_lowercase();
                for secret in [
                    "sql", "sqlite", "postgres", "pool", "select", "/src/", ".rs", "panicked",
                    "dberr",
                ] {
                    assert!(!text.contains(secret), "{status}: {body} mentions {secret}");
                }
            }
        },
    )
    .await;
}

/// Sends `bytes` and then nothing more, like a stalled client; returns what the server answered
/// and whether it closed the connection within 10 s.
async fn send_and_stall(app: &TestApp, bytes: &[u8]) -> (String, bool) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}
