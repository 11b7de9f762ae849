//! The real binary: configuration errors, JSON logs, graceful shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_bank-api");

#[test]
fn a_bad_setting_is_one_clear_line_and_exit_code_2() {
    let output = Command::new(BINARY)
        .env("PORT", "eighty")
        .env_remove("DATABASE_URL")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "bank-api: invalid PORT=\"eighty\": a port number from 0 to 65535"
    );
}

#[test]
fn json_logs_carry_the_request_id_and_sigterm_exits_cleanly() {
    let database =
        std::env::temp_dir().join(format!("bank-log-{}.db", uuid::Uuid::new_v4().simple()));
    let mut server = Command::new(BINARY)
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        )
        .current_dir(std::env::temp_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let port = lines
        .by_ref()
        .map(|line| serde_json::from_str::<Value>(&line.unwrap()).expect("every log line is JSON"))
        .find_map(|line| {
            let message = line["msg"].as_str()?.to_owned();
            let address = message.strip_prefix("listening on http://127.0.0.1:")?;
            address.split(' ').next()?.parse::<u16>().ok()
        })
        .expect("the server says where it listens");

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get(format!("http://127.0.0.1:{port}/ping"))
        .header("X-Request-Id", "log-test-1")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let logged: Vec<Value> = lines
        .map(|line| serde_json::from_str(&line.unwrap()).expect("every log line is JSON"))
        .collect();
    let access = logged
        .iter()
        .find(|line| line["request_id"] == "log-test-1")
        .expect("an access line for the request");
    assert_eq!(access["target"], "access");
    assert_eq!(access["route"], "/ping");
    assert_eq!(access["status"], 200);
    assert_eq!(access["method"], "GET");
    assert!(access["latency_ms"].as_f64().is_some());
    assert!(
        logged
            .iter()
            .any(|line| line["msg"] == "background task login_sweeper stopped"),
        "SIGTERM stops the background work too"
    );
    assert_eq!(
        server.wait().unwrap().code(),
        Some(0),
        "SIGTERM is a clean exit"
    );
    let _ = std::fs::remove_file(database);
}

#[tokio::test]
async fn the_healthcheck_subcommand_reports_the_server_state() {
    let app = crate::helpers::TestApp::spawn(crate::helpers::sqlite_settings()).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let healthcheck = |port: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(BINARY)
                .arg("healthcheck")
                .env("PORT", port)
                .output()
                .unwrap()
        })
    };

    let healthy = healthcheck(port).await.unwrap();
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");

    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = healthcheck(unused.to_string()).await.unwrap();
    assert_eq!(nobody.status.code(), Some(1));
}
