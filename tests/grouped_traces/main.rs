//! Writes grouped into one statement keep their traces whole: on Postgres, postings sent at the
//! same moment go as groups, and every posting's trace leads to the statement that carried it,
//! under its own request span or through its `ledger.group` span's link to the group's. Reads of
//! accounts sent at the same moment go together as well, on a connection the ledger keeps, and
//! each leads to its statement the same way, through `ledger.read`. A long batch whose postings
//! fall on accounts of two kinds goes as two groups at once, and its trace shows both. In a test
//! binary of its own, since the `tracing` subscriber is global to a process.

use std::{collections::HashMap, time::Duration};

use bank_api::{
    config::{Sampler, Settings, Tracing},
    startup::Application,
    telemetry,
};
use bank_core::ledger::PART_AT_LEAST;
use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use reqwest::{Client, StatusCode};
use serde_json::json;

// Only its Postgres half is used here: grouping is Postgres's.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

const POSTINGS: usize = 60;
const READS: usize = 60;

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grouped_write_leads_to_its_statement() {
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let mut collector = FakeCollectorServer::start()
        .await
        .expect("an OTLP receiver");
    let settings = Settings {
        database_url: common::postgres_database(&server).await,
        host: "127.0.0.1".into(),
        port: 0,
        auth_required: false,
        // More requests at once than one client may send in a second.
        rate_limit_per_second: None,
        tracing: Some(Tracing {
            endpoint: collector.endpoint(),
            service_name: "bank-api-test".into(),
            sampler: Sampler {
                ratio: 1.0,
                parent_based: true,
            },
        }),
        ..Settings::default()
    };
    let traces = telemetry::init(&settings).expect("the trace pipeline starts");
    let app = Application::build(settings).await.expect("the app starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = Client::new();
    let opened = client
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "address": "London"}))
        .send()
        .await
        .expect("POST /accounts");
    let account: serde_json::Value = opened.json().await.expect("JSON");
    let other: serde_json::Value = client
        .post(format!("{base}/accounts"))
        .json(&json!({"first_name": "Charles", "last_name": "Babbage", "address": "London"}))
        .send()
        .await
        .expect("POST /accounts")
        .json()
        .await
        .expect("JSON");

    // A read alone on a quiet server goes at once, in its own request, on a connection the ledger
    // keeps rather than through SeaORM: its statement is in its trace all the same.
    let read = client
        .get(format!("{base}/accounts/{}", account["id"]))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("GET /accounts/{id}");
    assert_eq!(read.status(), StatusCode::OK);

    // Every third posting comes from a caller that traces but did not sample: grouped with the
    // others, it must leave nothing in the export, not even a group span of its own.
    let postings = (0..POSTINGS).map(|n| {
        let mut request = client
            .post(format!("{base}/transactions"))
            .json(&json!({"acc_id": account["id"], "credit": 1}));
        if n % 3 == 0 {
            let trace = uuid::Uuid::new_v4().simple().to_string();
            request = request.header("traceparent", format!("00-{trace}-00f067aa0ba902b7-00"));
        }
        async move {
            let posted = request.send().await.expect("POST /transactions");
            assert_eq!(posted.status(), StatusCode::CREATED);
            trace_of(&posted)
        }
    });
    let (sampled, unsampled): (Vec<_>, Vec<_>) = futures_util::future::join_all(postings)
        .await
        .into_iter()
        .partition(|(_, sampled)| *sampled);
    assert_eq!(
        unsampled.len(),
        POSTINGS / 3,
        "the caller's decision is followed"
    );
    let posting_traces: Vec<String> = sampled.into_iter().map(|(trace, _)| trace).collect();

    // Reads sent at the same moment go together too, most of them answered by a task of no
    // request's: each trace still leads to the statement that read its account.
    let reads = (0..READS).map(|_| {
        let request = client.get(format!("{base}/accounts/{}", account["id"]));
        async move {
            let read = request.send().await.expect("GET /accounts/{id}");
            assert_eq!(read.status(), StatusCode::OK);
            trace_of(&read)
        }
    });
    let read_traces: Vec<String> = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .map(|(trace, _)| trace)
        .collect();

    // A batch on a quiet server, its postings taking turns on two accounts: the postings on one
    // share nothing with those on the other, so the two kinds go as two groups, side by side.
    let items: Vec<_> = (0..2 * PART_AT_LEAST)
        .map(|n| {
            let id = if n % 2 == 0 {
                &account["id"]
            } else {
                &other["id"]
            };
            json!({"kind": "posting", "acc_id": id, "credit": 1})
        })
        .collect();
    let batch = client
        .post(format!("{base}/batches"))
        .header(
            "traceparent",
            "00-5bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01",
        )
        .json(&json!({ "items": items }))
        .send()
        .await
        .expect("POST /batches");
    assert_eq!(batch.status(), StatusCode::OK);

    // A request's span ends just after its answer is sent. The receiver holds 64 spans at a
    // time, so it is emptied while the exporter flushes the rest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flushed = tokio::spawn(traces.shutdown());
    let mut spans = Vec::new();
    loop {
        let received = collector
            .exported_spans(64, Duration::from_millis(500))
            .await;
        if received.is_empty() && flushed.is_finished() {
            break;
        }
        spans.extend(received);
    }
    let by_id: HashMap<&str, &ExportedSpan> = spans
        .iter()
        .map(|span| (span.span_id.as_str(), span))
        .collect();
    let read = spans
        .iter()
        .find(|span| {
            span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" && span.kind == "SPAN_KIND_SERVER"
        })
        .expect("the read's request span");
    let read_batch = spans
        .iter()
        .find(|span| span.parent_span_id == read.span_id && span.name == "ledger.read")
        .expect("the read's ledger.read span");
    assert!(
        spans
            .iter()
            .any(|span| span.parent_span_id == read_batch.span_id
                && span
                    .attributes
                    .get("db.system.name")
                    .is_some_and(|system| system.contains("\"postgresql\""))
                && span.attributes["db.operation.name"].contains("\"SELECT\"")
                && span.attributes.contains_key("db.query.text")),
        "the read's statement is below its request span: {spans:#?}"
    );
    let batch = spans
        .iter()
        .find(|span| {
            span.trace_id == "5bf92f3577b34da6a3ce929d0e0e4737" && span.kind == "SPAN_KIND_SERVER"
        })
        .expect("the batch's request span");
    let parts: Vec<&ExportedSpan> = spans
        .iter()
        .filter(|span| span.parent_span_id == batch.span_id && span.name == "ledger.group")
        .collect();
    let [first, second] = parts[..] else {
        panic!("the batch's groups: {parts:#?}");
    };
    for part in [first, second] {
        assert!(
            part.attributes["writes"].contains(&format!("(\"{PART_AT_LEAST}\")")),
            "{part:#?}"
        );
    }
    assert!(
        first.start_time_unix_nano < second.end_time_unix_nano
            && second.start_time_unix_nano < first.end_time_unix_nano,
        "the two groups ran one after the other: {parts:#?}"
    );
    for (traces, what, how_many) in [
        (&posting_traces, "postings", POSTINGS),
        (&read_traces, "reads", READS),
    ] {
        let mut linked = 0;
        for trace in traces {
            let server = spans
                .iter()
                .find(|span| &span.trace_id == trace && span.kind == "SPAN_KIND_SERVER")
                .unwrap_or_else(|| panic!("the request span of {trace} in {} spans", spans.len()));
            let (statements, followed) = statements_under(server, &spans, &by_id);
            assert!(statements > 0, "no statement for {trace}: {spans:#?}");
            linked += usize::from(followed);
        }
        assert!(linked > 0, "{how_many} {what} at once, none with another");
    }
    for (trace, _) in &unsampled {
        assert!(
            spans.iter().all(|span| &span.trace_id != trace),
            "an unsampled posting's trace was exported"
        );
    }
    for span in &spans {
        let inner =
            span.name.starts_with("ledger.") || span.attributes.contains_key("db.system.name");
        assert!(
            !inner || !span.parent_span_id.is_empty(),
            "a group or statement span as a trace of its own (an unsampled request's?): {span:#?}"
        );
    }
}

/// The trace id of a response, and whether it was sampled (`traceresponse`).
fn trace_of(response: &reqwest::Response) -> (String, bool) {
    let header = response.headers()["traceresponse"].to_str().expect("ASCII");
    let parts: Vec<&str> = header.split('-').collect();
    (parts[1].to_owned(), parts[3] == "01")
}

/// How many statement spans lie below `span`, following the links of `ledger.group` and
/// `ledger.read` spans; and whether a link was followed to find them.
fn statements_under(
    span: &ExportedSpan,
    spans: &[ExportedSpan],
    by_id: &HashMap<&str, &ExportedSpan>,
) -> (usize, bool) {
    let (mut found, mut followed) = (0, false);
    for child in spans
        .iter()
        .filter(|child| child.parent_span_id == span.span_id)
    {
        if child.attributes.contains_key("db.system.name") {
            found += 1;
        }
        let (below, through) = statements_under(child, spans, by_id);
        found += below;
        followed |= through;
        if child.name == "ledger.group" || child.name == "ledger.read" {
            for link in &child.links {
                if let Some(group) = by_id.get(link.span_id.as_str()) {
                    found += statements_under(group, spans, by_id).0;
                    followed = true;
                }
            }
        }
    }
    (found, followed)
}
