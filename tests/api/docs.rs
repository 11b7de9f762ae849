use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::on_each_backend;

/// Every route the service serves by default, as documented.
const ROUTES: [(&str, &str); 26] = [
    ("post", "/batches"),
    ("post", "/users"),
    ("post", "/token"),
    ("post", "/token/revoke"),
    ("post", "/accounts"),
    ("get", "/accounts"),
    ("get", "/accounts/{account_id}"),
    ("get", "/accounts/{account_id}/balance"),
    ("get", "/accounts/{account_id}/transactions"),
    ("post", "/transactions"),
    ("get", "/transactions"),
    ("get", "/transactions/{transaction_id}"),
    ("post", "/transfers"),
    ("post", "/holds"),
    ("get", "/holds"),
    ("get", "/holds/{hold_id}"),
    ("post", "/holds/{hold_id}/capture"),
    ("post", "/holds/{hold_id}/void"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("get", "/webhooks/{endpoint_id}"),
    ("post", "/webhooks/{endpoint_id}/enable"),
    ("get", "/ping"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
];

/// Every status some test in this suite makes the service return. A documented status outside
/// this set would be a promise nothing checks.
const STATUSES_PRODUCED_BY_TESTS: [&str; 13] = [
    "200", "201", "400", "401", "403", "404", "408", "409", "413", "422", "429", "500", "503",
];

/// Routes anyone may call without a token.
const PUBLIC: [&str; 7] = [
    "/users",
    "/token",
    "/token/revoke",
    "/ping",
    "/health",
    "/ready",
    "/metrics",
];

#[tokio::test]
async fn the_openapi_document_describes_every_route_fully() {
    on_each_backend(async |app| {
        let doc = app.get_json("/openapi.json").await;

        assert_eq!(doc["info"]["title"], "bank-api");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .contains("minor units")
        );
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                documented.insert((method.clone(), path.clone()));
                let name = format!("{method} {path}");
                assert!(
                    operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{name}: tag"
                );
                assert!(
                    operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: summary"
                );
                let responses = operation["responses"].as_object().unwrap();
                for (status, response) in responses {
                    assert!(
                        STATUSES_PRODUCED_BY_TESTS.contains(&status.as_str()),
                        "{name}: {status} is never tested"
                    );
                    assert!(
                        response["content"].is_object(),
                        "{name} {status}: no body schema"
                    );
                }
                let security = operation["security"].as_array();
                if !PUBLIC.contains(&path.as_str()) {
                    assert_eq!(
                        security,
                        Some(&vec![serde_json::json!({"OAuth2PasswordBearer": []})]),
                        "{name}: needs a token"
                    );
                    assert!(responses.contains_key("401"), "{name}: documents 401");
                }
                if let Some(body) = operation.get("requestBody") {
                    assert!(
                        responses.contains_key("413"),
                        "{name}: documents the body limit"
                    );
                    // The OAuth2 form of /token has no JSON schema to check.
                    let Some(schema_ref) =
                        body["content"]["application/json"]["schema"]["$ref"].as_str()
                    else {
                        continue;
                    };
                    let schema =
                        &doc["components"]["schemas"][schema_ref.rsplit('/').next().unwrap()];
                    let example = schema.get("example").or(schema["examples"].get(0));
                    assert!(
                        example.is_some_and(Value::is_object),
                        "{name}: request example"
                    );
                    assert!(
                        responses.contains_key("422"),
                        "{name}: documents validation errors"
                    );
                }
            }
        }
        let expected: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, expected);
        assert_eq!(
            doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
                ["tokenUrl"],
            "/token",
            "Swagger UI's Authorize dialog logs in at /token"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
                ["refreshUrl"],
            "/token",
            "and refreshes there"
        );
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for schema in [
            "ErrorBody",
            "ValidationErrorBody",
            "Account",
            "Transaction",
            "TransferReceipt",
            "Balance",
        ] {
            assert!(schemas.contains_key(schema), "schema {schema}");
        }
    })
    .await;
}

#[tokio::test]
async fn swagger_ui_and_its_assets_are_served_offline() {
    on_each_backend(async |app| {
        let page = app.get("/docs/").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        for asset in [
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-bundle.js",
            "/docs/swagger-initializer.js",
        ] {
            let response = app.get(asset).await;
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
        }
        let initializer = app
            .get("/docs/swagger-initializer.js")
            .await
            .text()
            .await
            .unwrap();
        assert!(initializer.contains("/openapi.json"), "{initializer}");
    })
    .await;
}

/// FastAPI's address without the slash leads to Swagger UI too (the README says `/docs`).
#[tokio::test]
async fn docs_without_the_slash_leads_to_swagger_ui() {
    on_each_backend(async |app| {
        let response = app.get("/docs").await;

        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()["location"], "/docs/");
    })
    .await;
}

/// ReDoc's page loads nothing from the internet: its script is served by the API itself.
#[tokio::test]
async fn redoc_is_served_offline_from_the_binary() {
    on_each_backend(async |app| {
        let page = app.get("/redoc").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(r#"<script src="/redoc/redoc.standalone.js">"#),
            "{html}"
        );
        // Nothing is loaded from elsewhere (the document's example URLs are data, not loads).
        for load in ["src=\"http", "href=\"http", "url(http"] {
            assert!(!html.contains(load), "{html}");
        }
        assert!(
            html.contains("\"/accounts\""),
            "the page carries the API document"
        );

        let bundle = app.get("/redoc/redoc.standalone.js").await;
        assert_eq!(bundle.status(), StatusCode::OK);
        assert!(
            bundle.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let script = bundle.text().await.unwrap();
        assert!(
            script.len() > 500_000 && script.contains("Redoc"),
            "the full standalone bundle"
        );
    })
    .await;
}

#[tokio::test]
async fn documented_examples_are_accepted_by_the_routes_they_document() {
    on_each_backend(async |app| {
        let doc = app.get_json("/openapi.json").await;
        let example = |name: &str| -> Value {
            let schema = &doc["components"]["schemas"][name];
            schema
                .get("example")
                .unwrap_or(&schema["examples"][0])
                .clone()
        };
        let first = app.post("/accounts", &example("NewAccount")).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        assert_eq!(
            app.post("/accounts", &example("NewAccount")).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            app.post("/transactions", &example("NewTransaction"))
                .await
                .status(),
            StatusCode::CREATED
        );
        assert_eq!(
            app.post("/transfers", &example("NewTransfer"))
                .await
                .status(),
            StatusCode::CREATED
        );
    })
    .await;
}

/// The limits the document states are the ones the code enforces, read from the same constants;
/// the answers many routes share are described in the same words on each.
#[tokio::test]
async fn the_documents_limits_are_the_codes() {
    use bank_api::extract::Pagination;
    use bank_core::domain::{MAX_AMOUNT, MAX_TEXT_CHARS, Password, Username};
    let app = crate::helpers::TestApp::spawn(crate::helpers::sqlite_settings()).await;
    let doc = app.get_json("/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let posting = &schemas["NewTransaction"]["allOf"][0]["properties"];
    for side in ["credit", "debit"] {
        assert_eq!(posting[side]["maximum"], MAX_AMOUNT, "{side}");
        assert_eq!(posting[side]["minimum"], 0, "{side}");
    }
    assert_eq!(
        schemas["NewTransfer"]["properties"]["amount"]["maximum"],
        MAX_AMOUNT
    );
    assert_eq!(schemas["NewTransfer"]["properties"]["amount"]["minimum"], 1);
    for field in ["first_name", "last_name", "address"] {
        assert_eq!(
            schemas["NewAccount"]["properties"][field]["maxLength"], MAX_TEXT_CHARS,
            "{field}"
        );
    }
    let user = &schemas["NewUser"]["properties"];
    assert_eq!(user["password"]["minLength"], Password::MIN_CHARS);
    assert_eq!(user["password"]["maxLength"], Password::MAX_CHARS);
    assert_eq!(user["username"]["maxLength"], Username::MAX_CHARS);
    assert_eq!(user["username"]["pattern"], Username::pattern());

    let lists = [
        "/accounts",
        "/transactions",
        "/accounts/{account_id}/transactions",
    ];
    let link =
        |path: &str| doc["paths"][path]["get"]["responses"]["200"]["headers"]["Link"].clone();
    for path in lists {
        assert_eq!(link(path), link(lists[0]), "{path}");
        let limit = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "limit")
            .cloned()
            .unwrap();
        assert_eq!(limit["schema"]["maximum"], Pagination::MAX_LIMIT, "{path}");
        assert_eq!(
            limit["schema"]["default"],
            Pagination::DEFAULT_LIMIT,
            "{path}"
        );
    }
    let refusal = |path: &str, status: &str| {
        doc["paths"][path]["post"]["responses"][status]["description"].clone()
    };
    for status in ["404", "409", "422", "500", "503"] {
        assert_eq!(
            refusal("/transactions", status),
            refusal("/transfers", status),
            "{status}"
        );
    }
}

const SUMMARY_START: &str =
    "<!-- performance summary: written by bench/bench.py from bench/RESULTS.md -->";
const SUMMARY_END: &str = "<!-- end of performance summary -->";

/// The README's performance figures are the benchmark's own: its summary is the one
/// `bench/bench.py` wrote into `bench/RESULTS.md` in the same run, and docs/performance.md
/// quotes no figure of its own that could go stale.
#[test]
fn the_readmes_performance_figures_are_the_benchmarks() {
    let marked = |text: &'static str, name: &str| {
        let start = text
            .find(SUMMARY_START)
            .unwrap_or_else(|| panic!("{name}: no summary"));
        let end = text
            .find(SUMMARY_END)
            .unwrap_or_else(|| panic!("{name}: no summary end"));
        &text[start..end]
    };
    let readme = include_str!("../../README.md");
    let results = include_str!("../../bench/RESULTS.md");
    assert_eq!(
        marked(readme, "README.md"),
        marked(results, "bench/RESULTS.md")
    );

    let page = include_str!("../../docs/performance.md");
    let prose: String = page.split("```").step_by(2).collect();
    let figure = prose
        .split_whitespace()
        .find(|word| word.chars().any(|c| c.is_ascii_digit()));
    assert_eq!(figure, None, "a figure in docs/performance.md's own prose");
}
