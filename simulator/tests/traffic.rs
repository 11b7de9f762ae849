//! The simulator against the real API, started in-process on a fresh SQLite file: in a few
//! seconds it must produce every kind of traffic the dashboards show. It runs as compose's
//! simulator profile runs it, as the operator, against a server with the diagnostics route on.

use std::process::Command;

use bank_api::{config::Settings, startup::Application};

const OPERATOR: (&str, &str) = ("operator", "the operator's password");

/// The value of the first sample of `name` whose labels include `labels`, in Prometheus text.
fn sample(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .find_map(|line| line.rsplit_once(' ')?.1.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_simulator_drives_every_kind_of_traffic() {
    let database = std::env::temp_dir().join(format!("bank-simulate-{}.db", std::process::id()));
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", database.display()),
        host: "127.0.0.1".into(),
        port: 0,
        diagnostics_routes: true,
        operator: Some((OPERATOR.0.into(), OPERATOR.1.into())),
        ..Settings::default()
    };
    let app = Application::build(settings).await.expect("the API starts");
    let target = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let args = ["--rate", "200", "--duration", "3", "--accounts", "5"];
    let output = tokio::task::spawn_blocking({
        let target = target.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_bank-simulate"))
                .args(["--target", &target])
                .args(args)
                .env("SIMULATOR_USERNAME", OPERATOR.0)
                .env("SIMULATOR_PASSWORD", OPERATOR.1)
                .output()
        }
    })
    .await
    .expect("the simulator ran")
    .expect("the simulator started");

    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("opened 5 accounts") && stdout.contains("done:"),
        "{stdout}"
    );
    let metrics = reqwest::get(format!("{target}/metrics"))
        .await
        .expect("a scrape")
        .text()
        .await
        .expect("metrics text");
    for (name, labels) in [
        ("bank_transactions_total", r#"kind="credit""#),
        ("bank_transactions_total", r#"kind="debit""#),
        ("bank_transfers_total", ""),
        ("bank_rejections_total", r#"reason="validation""#),
        ("bank_logins_total", r#"outcome="success""#),
        (
            "http_requests_total",
            r#"endpoint="/accounts/{account_id}/balance""#,
        ),
        ("http_requests_total", r#"status="500""#),
    ] {
        assert!(
            sample(&metrics, name, labels) > 0.0,
            "{name} {labels}: the simulator printed {stdout}"
        );
    }
    let _ = std::fs::remove_file(database);
}
