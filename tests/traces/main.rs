//! Traces, in a test binary of their own: the `tracing` subscriber is global to a process, and
//! here it sends every span over OTLP/gRPC to a real receiver running inside the test.

use std::time::Duration;

use bank_api::{
    config::{Sampler, Settings, Tracing},
    startup::Application,
    telemetry,
};
use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use reqwest::{Client, Response, StatusCode};
use serde_json::json;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
/// Values the requests send; none may appear in any span.
const SECRET_NAME: &str = "name-that-must-not-be-traced";
const SECRET_AMOUNT: i64 = 9_876_543;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_continues_the_callers_trace_with_a_span_per_statement_and_exemplars() {
    let mut collector = FakeCollectorServer::start()
        .await
        .expect("an OTLP receiver");
    let database = std::env::temp_dir().join(format!("bank-traces-{}.db", uuid::Uuid::new_v4()));
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", database.display()),
        host: "127.0.0.1".into(),
        port: 0,
        auth_required: false,
        diagnostics_routes: true,
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
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
    let port = app.port();
    let base = format!("http://127.0.0.1:{port}");
    tokio::spawn(app.run_until_stopped());
    let client = Client::new();

    // A caller that traces: our span is its child, and the response says which span that is.
    let opened = client
        .post(format!("{base}/accounts"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .header("x-request-id", "trace-test-1")
        .header("user-agent", "trace-test/1.0")
        .json(&json!({ "first_name": SECRET_NAME, "last_name": "Lovelace", "address": "London" }))
        .send()
        .await
        .expect("POST /accounts");
    assert_eq!(opened.status(), StatusCode::CREATED);
    let (trace_id, server_span) = trace_response(&opened);
    assert_eq!(trace_id, CALLER_TRACE, "the caller's trace is continued");
    let account: serde_json::Value = opened.json().await.expect("JSON");

    // A webhook endpoint hears of the posting below; its delivery links to the posting's trace.
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let hook_url = format!("http://{}/hook", hooks.local_addr().expect("an address"));
    let registered = client
        .post(format!("{base}/webhooks"))
        .json(&json!({ "url": hook_url, "events": ["transaction.posted"] }))
        .send()
        .await
        .expect("POST /webhooks");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let delivered = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = hooks.accept().await.expect("a delivery");
        let mut request = [0; 8192];
        let _ = stream.read(&mut request).await;
        let answer = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        stream.write_all(answer.as_bytes()).await.expect("answered");
    });

    // A caller that does not trace: a new trace is started and sampled.
    let posted = client
        .post(format!("{base}/transactions"))
        .json(&json!({ "acc_id": account["id"], "credit": SECRET_AMOUNT, "debit": 0 }))
        .send()
        .await
        .expect("POST /transactions");
    assert_eq!(posted.status(), StatusCode::CREATED);
    let (posting_trace, _) = trace_response(&posted);
    assert_ne!(posting_trace, CALLER_TRACE);

    // A caller that traces but did not sample: we follow its decision and export nothing.
    let unsampled = client
        .get(format!("{base}/accounts"))
        .header(
            "traceparent",
            format!("00-{UNSAMPLED_TRACE}-{CALLER_SPAN}-00"),
        )
        .send()
        .await
        .expect("GET /accounts");
    let header = unsampled.headers()["traceresponse"]
        .to_str()
        .expect("ASCII");
    assert!(
        header.starts_with(&format!("00-{UNSAMPLED_TRACE}-")) && header.ends_with("-00"),
        "{header}"
    );

    let failed = client
        .get(format!("{base}/500"))
        .send()
        .await
        .expect("GET /500");
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (failed_trace, _) = trace_response(&failed);

    let lost = client
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .expect("GET /no/such/route");
    assert_eq!(lost.status(), StatusCode::NOT_FOUND);
    let (_, unmatched_span) = trace_response(&lost);

    let metrics = client
        .get(format!("{base}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let exemplars: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_duration_seconds_bucket"))
        .filter_map(|line| line.split_once("# {trace_id=\"")?.1.split_once('"'))
        .map(|(trace, _)| trace)
        .collect();
    for expected in [CALLER_TRACE, posting_trace.as_str(), failed_trace.as_str()] {
        assert!(
            exemplars.contains(&expected),
            "exemplar {expected} in {exemplars:?}"
        );
    }
    assert!(
        !exemplars.contains(&UNSAMPLED_TRACE),
        "an unsampled trace is no exemplar"
    );

    tokio::time::timeout(Duration::from_secs(10), delivered)
        .await
        .expect("the webhook was delivered in time")
        .expect("the receiver ran");
    // The delivery's span ends once its answer is read: give it a moment before shutting down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    traces.shutdown().await;
    // The spans arrive in batches (the background work's statements fill the first ones): take
    // them until the last request's and the delivery's are in.
    let mut spans = Vec::new();
    for _ in 0..20 {
        spans.extend(
            collector
                .exported_spans(1, Duration::from_millis(500))
                .await,
        );
        let has = |id: &str| spans.iter().any(|span: &ExportedSpan| span.span_id == id);
        let delivery = spans.iter().any(|span| span.kind == "SPAN_KIND_CLIENT");
        if has(&server_span) && has(&unmatched_span) && delivery {
            break;
        }
    }

    let server = spans
        .iter()
        .find(|span| span.span_id == server_span)
        .unwrap_or_else(|| panic!("the server span {server_span} in {spans:#?}"));
    assert_eq!(server.trace_id, CALLER_TRACE);
    assert_eq!(
        server.parent_span_id, CALLER_SPAN,
        "child of the caller's span"
    );
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(server.name, "POST /accounts");
    // The stable HTTP server conventions: every required and recommended attribute this
    // request has.
    for (key, value) in [
        ("http.route", "\"/accounts\""),
        ("http.request.method", "\"POST\""),
        ("http.response.status_code", "IntValue(201)"),
        ("url.path", "\"/accounts\""),
        ("url.scheme", "\"http\""),
        ("server.address", "\"127.0.0.1\""),
        ("server.port", &format!("IntValue({port})")),
        ("network.protocol.version", "\"1.1\""),
        ("user_agent.original", "\"trace-test/1.0\""),
        ("client.address", "\"127.0.0.1\""),
        ("request_id", "\"trace-test-1\""),
    ] {
        let attribute = server.attributes.get(key).map(String::as_str).unwrap_or("");
        assert!(attribute.contains(value), "{key}: {attribute}");
    }
    let statements: Vec<&ExportedSpan> = spans
        .iter()
        .filter(|span| span.parent_span_id == server_span)
        .collect();
    // The stable database conventions: `{operation} {table}`, and the stable attribute names.
    assert!(
        statements.iter().any(|span| span.name == "INSERT accounts"
            && span.attributes["db.system.name"].contains("\"sqlite\"")
            && span.attributes["db.operation.name"].contains("\"INSERT\"")
            && span.attributes["db.collection.name"].contains("\"accounts\"")
            && span.attributes.contains_key("db.query.text")),
        "database statements are children of the request span: {statements:#?}"
    );

    let unmatched = spans
        .iter()
        .find(|span| span.span_id == unmatched_span)
        .expect("the unmatched request's span");
    assert_eq!(unmatched.name, "GET", "no route: named by the method alone");
    assert!(
        !unmatched.attributes.contains_key("http.route"),
        "no route, no http.route: {unmatched:#?}"
    );

    let posting = spans.iter().filter(|span| span.trace_id == posting_trace);
    assert!(
        posting.count() >= 2,
        "the posting's request span and its statements"
    );
    let delivery = spans
        .iter()
        .find(|span| span.kind == "SPAN_KIND_CLIENT" && span.name == "POST")
        .unwrap_or_else(|| panic!("the webhook delivery's span in {spans:#?}"));
    assert_ne!(delivery.trace_id, posting_trace, "a trace of its own");
    assert!(
        delivery
            .links
            .iter()
            .any(|link| link.trace_id == posting_trace),
        "linked to the request that made the change: {delivery:#?}"
    );
    assert!(delivery.attributes["webhook.event"].contains("transaction.posted"));
    assert!(delivery.attributes["http.response.status_code"].contains("204"));
    assert!(
        !format!("{:?}", delivery.attributes).contains(&hook_url),
        "the endpoint's URL may carry a secret: not traced"
    );

    let failure = spans
        .iter()
        .find(|span| span.trace_id == failed_trace && span.kind == "SPAN_KIND_SERVER")
        .expect("the failed request's span");
    let status = failure.status.as_ref().expect("a status");
    assert_eq!(
        status.code, "STATUS_CODE_ERROR",
        "a 500 is marked as an error"
    );

    assert!(
        spans.iter().all(|span| span.trace_id != UNSAMPLED_TRACE),
        "the caller chose not to sample"
    );
    for span in &spans {
        let statement = span.attributes.contains_key("db.system.name");
        for deprecated in DEPRECATED_ATTRIBUTES {
            assert!(
                !span.attributes.contains_key(deprecated),
                "{deprecated} is deprecated: {span:#?}"
            );
        }
        if statement {
            for required in ["db.operation.name", "db.query.text"] {
                assert!(
                    span.attributes.contains_key(required),
                    "{required}: {span:#?}"
                );
            }
        }
        assert!(
            statement
                || span.name.starts_with("ledger.")
                || span.kind == "SPAN_KIND_SERVER"
                || span.kind == "SPAN_KIND_CLIENT",
            "only request, ledger, statement and webhook delivery spans; the exporter does not \
             trace itself: {span:#?}"
        );
        assert!(
            !statement || !span.parent_span_id.is_empty(),
            "a statement outside a request (background polling) is not a trace: {span:#?}"
        );
        let attributes = format!("{:?}", span.attributes);
        assert!(
            !attributes.contains(SECRET_NAME) && !attributes.contains(&SECRET_AMOUNT.to_string()),
            "no request values in spans: {span:#?}"
        );
    }
}

/// Attribute names the semantic conventions replaced with stable ones (`db.system` is
/// `db.system.name`, `http.method` is `http.request.method`...): none may be exported.
const DEPRECATED_ATTRIBUTES: [&str; 14] = [
    "db.system",
    "db.statement",
    "db.operation",
    "db.name",
    "http.method",
    "http.status_code",
    "http.url",
    "http.target",
    "http.scheme",
    "http.user_agent",
    "net.peer.name",
    "net.peer.ip",
    "net.host.name",
    "net.host.port",
];

/// The trace and span ids from a `traceresponse: 00-{trace}-{span}-01` header.
fn trace_response(response: &Response) -> (String, String) {
    let header = response.headers()["traceresponse"].to_str().expect("ASCII");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[3], "01", "sampled: {header}");
    (parts[1].to_owned(), parts[2].to_owned())
}
