use std::collections::{BTreeMap, BTreeSet};

use bank_core::domain::MAX_BALANCE;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{on_each_backend, on_each_backend_with, sample};

const REQUESTS: &str = "http_requests_total";

#[tokio::test]
async fn requests_are_counted_by_route_template() {
    on_each_backend(async |app| {
        let id = app.create_account().await;
        for _ in 0..3 {
            app.get(&format!("/accounts/{id}")).await;
        }

        let metrics = app.metrics().await;

        let labels = [
            ("endpoint", "/accounts/{account_id}"),
            ("method", "GET"),
            ("status", "200"),
        ];
        assert_eq!(sample(&metrics, REQUESTS, &labels), Some(3.0));
        assert!(
            !metrics.contains(&format!("endpoint=\"/accounts/{id}\"")),
            "no raw ids in labels"
        );
        let bucket = [("endpoint", "/accounts/{account_id}"), ("le", "0.001")];
        assert!(sample(&metrics, "http_requests_duration_seconds_bucket", &bucket).is_some());
        let top = [("endpoint", "/accounts/{account_id}"), ("le", "10")];
        assert_eq!(
            sample(&metrics, "http_requests_duration_seconds_bucket", &top),
            Some(3.0)
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_share_one_series() {
    on_each_backend(async |app| {
        for i in 0..30 {
            app.get(&format!("/scan/{i}/wp-login.php")).await;
        }

        let metrics = app.metrics().await;

        let labels = [("endpoint", "<unmatched>"), ("status", "404")];
        assert_eq!(sample(&metrics, REQUESTS, &labels), Some(30.0));
        assert!(!metrics.contains("wp-login"));
    })
    .await;
}

#[tokio::test]
async fn every_kind_of_error_is_counted() {
    on_each_backend_with(
        |settings| {
            settings.body_limit_bytes = 1024;
            settings.diagnostics_routes = true;
        },
        async |app| {
            let id = app.funded_account(10).await;
            app.get("/accounts/999").await;
            app.post("/transactions", &json!({"acc_id": id, "debit": 11}))
                .await;
            app.post("/accounts", &json!({"first_name": "x".repeat(2000)}))
                .await;
            app.post("/accounts", &json!({"first_name": ""})).await;
            app.get("/500").await;
            app.get("/accounts/abc").await;
            let full = app.create_account().await;
            app.set_balance(full, MAX_BALANCE).await;
            app.post("/transactions", &json!({"acc_id": full, "credit": 1}))
                .await;
            app.client.put(app.url("/accounts")).send().await.unwrap();
            // A body that says it is gzip but is not cannot be read: 400.
            app.request(reqwest::Method::POST, "/accounts")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body("not gzip")
                .send()
                .await
                .unwrap();

            let metrics = app.metrics().await;

            // Two 409s: the overdraft and the credit past the balance limit.
            let cases = [
                ("/accounts/{account_id}", "GET", "404", 1.0),
                ("/transactions", "POST", "409", 2.0),
                ("/accounts", "POST", "413", 1.0),
                ("/accounts", "POST", "422", 1.0),
                ("/500", "GET", "500", 1.0),
                ("/accounts/{account_id}", "GET", "422", 1.0),
                ("/accounts", "PUT", "405", 1.0),
                ("/accounts", "POST", "400", 1.0),
            ];
            for (endpoint, method, status, count) in cases {
                let labels = [
                    ("endpoint", endpoint),
                    ("method", method),
                    ("status", status),
                ];
                assert_eq!(
                    sample(&metrics, REQUESTS, &labels),
                    Some(count),
                    "{method} {endpoint} {status}"
                );
            }
            for (reason, count) in [
                ("not_found", 1.0),
                ("insufficient_funds", 1.0),
                ("payload_too_large", 1.0),
                ("validation", 2.0),
                ("balance_limit", 1.0),
                ("method_not_allowed", 1.0),
                ("bad_request", 1.0),
            ] {
                assert_eq!(
                    sample(&metrics, "bank_rejections_total", &[("reason", reason)]),
                    Some(count),
                    "{reason}"
                );
            }
        },
    )
    .await;
}

#[tokio::test]
async fn business_counters_follow_the_money() {
    on_each_backend(async |app| {
        let a = app.funded_account(1000).await;
        let b = app.create_account().await;
        app.post("/transactions", &json!({"acc_id": a, "debit": 300}))
            .await;
        let transfer = json!({"from_acc_id": a, "to_acc_id": b, "amount": 200});
        app.post_with_key("/transfers", "once", &transfer).await;
        app.post_with_key("/transfers", "once", &transfer).await;

        let metrics = app.metrics().await;

        assert_eq!(
            sample(&metrics, "bank_accounts_created_total", &[]),
            Some(2.0)
        );
        assert_eq!(
            sample(&metrics, "bank_transactions_total", &[("kind", "credit")]),
            Some(1.0)
        );
        assert_eq!(
            sample(&metrics, "bank_transactions_total", &[("kind", "debit")]),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &metrics,
                "bank_money_moved_minor_units_total",
                &[("direction", "in")]
            ),
            Some(1000.0)
        );
        assert_eq!(
            sample(
                &metrics,
                "bank_money_moved_minor_units_total",
                &[("direction", "out")]
            ),
            Some(300.0)
        );
        assert_eq!(
            sample(
                &metrics,
                "bank_money_moved_minor_units_total",
                &[("direction", "transfer")]
            ),
            Some(200.0),
            "a replay is not counted"
        );
        assert_eq!(sample(&metrics, "bank_transfers_total", &[]), Some(1.0));
    })
    .await;
}

#[tokio::test]
async fn operational_metrics_are_exported_and_probes_are_not_counted() {
    on_each_backend(async |app| {
        app.create_account().await;
        app.get("/health").await;
        app.get("/ready").await;
        app.metrics().await;

        let response = app.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let metrics = response.text().await.unwrap();

        for route in ["/health", "/ready", "/metrics"] {
            assert!(
                !metrics.contains(&format!("endpoint=\"{route}\"")),
                "{route} is left out"
            );
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(&metrics, "bank_api_build_info", &[("version", version)]),
            Some(1.0)
        );
        assert!(sample(&metrics, "http_requests_in_flight", &[]).is_some());
        let insert = [("statement", "insert"), ("outcome", "ok")];
        assert!(sample(&metrics, "db_query_duration_seconds_count", &insert).unwrap() >= 1.0);
        assert_eq!(
            sample(&metrics, "db_pool_connections", &[("state", "max")]),
            Some(10.0)
        );
        assert!(sample(&metrics, "db_pool_connections", &[("state", "idle")]).is_some());
        assert!(sample(&metrics, "db_pool_connections", &[("state", "in_use")]).is_some());
        assert!(sample(&metrics, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
        assert!(sample(&metrics, "process_start_time_seconds", &[]).unwrap() > 0.0);
    })
    .await;
}

/// Every statement is timed, the coalesced reads too: on Postgres they run on a connection the
/// ledger keeps rather than through SeaORM, and the ledger reports each to the same histogram.
#[tokio::test]
async fn every_read_of_an_account_is_a_timed_statement() {
    const READS: usize = 20;
    on_each_backend(async |app| {
        let id = app.create_account().await;
        let selects = async || {
            let metrics = app.metrics().await;
            ["ok", "error"]
                .iter()
                .filter_map(|outcome| {
                    let labels = [("statement", "select"), ("outcome", *outcome)];
                    sample(&metrics, "db_query_duration_seconds_count", &labels)
                })
                .sum::<f64>()
        };
        let before = selects().await;
        for _ in 0..READS {
            app.get_json(&format!("/accounts/{id}")).await;
        }
        let timed = selects().await - before;
        assert!(
            timed >= READS as f64,
            "{READS} reads one after another, {timed} statements timed"
        );
    })
    .await;
}

#[tokio::test]
async fn request_metrics_can_be_switched_off_and_the_rest_stay() {
    on_each_backend_with(
        |settings| settings.http_metrics = false,
        async |app| {
            app.create_account().await;
            app.get("/ping").await;

            let metrics = app.metrics().await;

            assert!(!metrics.contains(REQUESTS), "{metrics}");
            assert_eq!(
                sample(&metrics, "bank_accounts_created_total", &[]),
                Some(1.0)
            );
        },
    )
    .await;
}

/// A posting with both a credit and a debit is counted as its own kind, not as either.
#[tokio::test]
async fn a_posting_with_credit_and_debit_is_counted_as_mixed() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let mixed = app
            .post(
                "/transactions",
                &json!({"acc_id": id, "credit": 5, "debit": 3}),
            )
            .await;
        assert_eq!(mixed.status(), StatusCode::CREATED);

        let metrics = app.metrics().await;

        let kinds = [("credit", 1.0), ("debit", 0.0), ("mixed", 1.0)];
        for (kind, count) in kinds {
            let counted = sample(&metrics, "bank_transactions_total", &[("kind", kind)]);
            assert_eq!(counted.unwrap_or(0.0), count, "{kind}");
        }
    })
    .await;
}

/// Prometheus asks for OpenMetrics: the same series, in that format, which can carry exemplars.
/// Without traces there is no trace to point at, so no exemplar.
#[tokio::test]
async fn openmetrics_is_served_to_scrapers_that_ask_for_it() {
    on_each_backend(async |app| {
        app.get("/ping").await;
        let response = app
            .client
            .get(app.url("/metrics"))
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .await
            .expect("GET /metrics");
        let content_type = response.headers()["content-type"].to_str().expect("ASCII");
        assert!(
            content_type.starts_with("application/openmetrics-text; version=1.0.0"),
            "{content_type}"
        );
        let text = response.text().await.expect("text");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        let ping = [("endpoint", "/ping"), ("method", "GET"), ("status", "200")];
        assert_eq!(sample(&text, REQUESTS, &ping), Some(1.0));
        assert_eq!(
            sample(&text, "http_requests_duration_seconds_count", &ping),
            Some(1.0)
        );
        assert!(text.contains("# TYPE process_cpu_seconds counter"));
        assert!(!text.contains("trace_id"), "no traces, no exemplars");
        assert!(
            !text.contains("actix_web_prom"),
            "actix-web-prom's own histogram stays private"
        );

        let plain = app.metrics().await;
        assert!(!plain.contains("# EOF"), "the classic format otherwise");
    })
    .await;
}

/// docs/metrics.md is the catalogue of `/metrics`: after traffic that touches every family, each
/// family served is documented with its type and labels, and each documented one is served.
#[tokio::test]
async fn the_metrics_page_lists_exactly_what_is_served() {
    let app = crate::helpers::TestApp::spawn(crate::helpers::sqlite_settings()).await;
    let customer = app.customer("ada").await;
    let account = customer.funded_account(100).await;
    let other = app.funded_account(100).await;
    customer
        .post(
            "/transfers",
            &json!({"from_acc_id": account, "to_acc_id": other, "amount": 1}),
        )
        .await;
    app.anonymous(reqwest::Method::GET, "/accounts", None).await;

    let served = families(&app.metrics().await);
    let page = include_str!("../../docs/metrics.md");
    let documented: BTreeMap<String, (String, BTreeSet<String>)> = page
        .lines()
        .filter_map(|row| row.strip_prefix("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let name = cells[0].trim_end_matches('`').to_owned();
            // The label names are the cell's code spans outside parentheses (which list values).
            let mut outside = String::new();
            let mut depth = 0;
            for c in cells[2].chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ if depth == 0 => outside.push(c),
                    _ => {}
                }
            }
            let labels = outside
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            (name, (cells[1].trim().to_owned(), labels))
        })
        .collect();
    let (processes, documented): (BTreeMap<_, _>, BTreeMap<_, _>) = documented
        .into_iter()
        .partition(|(name, _)| name == "process_*");
    assert_eq!(processes.len(), 1, "process_* is one row");
    let served: BTreeMap<_, _> = served
        .into_iter()
        .filter(|(name, _)| !name.starts_with("process_"))
        .collect();
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "the families served and documented"
    );
    for (name, (kind, labels)) in &served {
        let (documented_kind, documented_labels) = &documented[name];
        assert_eq!(kind, documented_kind, "{name}: type");
        assert!(
            labels.is_subset(documented_labels),
            "{name}: labels {labels:?}, documented {documented_labels:?}"
        );
    }
}

/// Each family of an exposition: its type and the label names its samples carry.
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut families = BTreeMap::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').expect("# TYPE name type");
            families.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
        } else if !line.starts_with('#')
            && let Some((series, _)) = line.split_once('{')
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| series.strip_suffix(suffix))
                .filter(|family| families.contains_key(*family))
                .unwrap_or(series);
            let labels = line[series.len() + 1..]
                .split('}')
                .next()
                .unwrap_or_default();
            let names = labels
                .split(',')
                .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.to_owned()))
                .filter(|name| name != "le");
            if let Some((_, known)) = families.get_mut(family) {
                known.extend(names);
            }
        }
    }
    families
}

/// `bank_write_group_size` counts the writes of each group the ledger sends to Postgres: a quiet
/// server sends each posting alone, a batch that is not atomic sends its writes as one group,
/// and an atomic batch (a transaction of its own) none. Step by step on SQLite, it stays empty.
#[tokio::test]
async fn each_group_of_writes_is_counted_with_its_size() {
    on_each_backend(async |app| {
        let account = app.funded_account(1_000).await;
        let groups = async || {
            let metrics = app.metrics().await;
            let of = |series: &str, labels: &[(&str, &str)]| {
                let name = format!("bank_write_group_size_{series}");
                sample(&metrics, &name, labels).expect("the histogram is exported")
            };
            [
                of("count", &[]),
                of("sum", &[]),
                of("bucket", &[("le", "1")]),
                of("bucket", &[("le", "8")]),
                of("bucket", &[("le", "16")]),
            ]
        };
        let posting = json!({"kind": "posting", "acc_id": account, "credit": 1});
        let before = groups().await;

        for _ in 0..3 {
            let response = app
                .post("/transactions", &json!({"acc_id": account, "credit": 1}))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        let batch = json!({"items": vec![posting.clone(); 10]});
        assert_eq!(app.post("/batches", &batch).await.status(), StatusCode::OK);
        let atomic = json!({"atomic": true, "items": vec![posting; 2]});
        assert_eq!(
            app.post("/batches", &atomic).await.status(),
            StatusCode::CREATED
        );

        let after = groups().await;
        let added: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        let grouped = app.db.get_database_backend() == sea_orm::DbBackend::Postgres;
        // Groups, writes, and groups of at most 1, 8 and 16 writes.
        let expected = if grouped {
            [4.0, 13.0, 3.0, 3.0, 4.0]
        } else {
            [0.0; 5]
        };
        assert_eq!(added, expected, "grouped: {grouped}");
    })
    .await;
}
