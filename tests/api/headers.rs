//! Headers every browser and cache is told: no type sniffing and no framing anywhere, a
//! Content-Security-Policy on every answer, no caching of what carries customer data or tokens,
//! and CORS only for the origins `CORS_ALLOWED_ORIGINS` lists.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use bank_api::middleware::{DATA_POLICY, DOCS_POLICY};

use crate::helpers::{on_each_backend, on_each_backend_with};

/// `X-Content-Type-Options: nosniff`, no framing and a Content-Security-Policy on every answer,
/// errors and docs included; `Cache-Control: no-store` on every answer of the API (its errors
/// too), and only the docs may be cached.
#[tokio::test]
async fn every_answer_forbids_sniffing_and_the_apis_forbid_storing() {
    on_each_backend(async |app| {
        let id = app.funded_account(5).await;
        let api = [
            app.get(&format!("/accounts/{id}")).await,
            app.get("/accounts").await,
            app.get("/transactions").await,
            app.post("/transactions", &json!({"acc_id": id, "credit": 1}))
                .await,
            app.get("/accounts/999999").await,
            app.get("/accounts/abc").await,
            app.anonymous(Method::GET, "/accounts", None).await,
            app.log_in("operator", "a wrong password").await,
            app.log_in(crate::helpers::OPERATOR.0, crate::helpers::OPERATOR.1)
                .await,
            app.get("/no/such/route").await,
            app.get("/ping").await,
            app.get("/metrics").await,
        ];
        for response in &api {
            let case = format!("{} {}", response.url().path(), response.status());
            assert_eq!(
                response.headers()["x-content-type-options"],
                "nosniff",
                "{case}"
            );
            assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
            assert_eq!(
                response.headers()["content-security-policy"],
                DATA_POLICY,
                "{case}"
            );
            assert_no_framing(response, &case);
        }
        let docs = [
            app.get("/docs/").await,
            app.get("/docs/swagger-ui.css").await,
            app.get("/redoc").await,
            app.get("/openapi.json").await,
            app.get("/docs/no-such-asset.js").await,
        ];
        for response in &docs {
            let case = format!("{} {}", response.url().path(), response.status());
            assert_eq!(
                response.headers()["x-content-type-options"],
                "nosniff",
                "{case}"
            );
            assert_no_framing(response, &case);
        }
        // The pages: a policy Swagger UI and ReDoc work under (tests/browser proves they do).
        for page in &docs[..3] {
            assert_eq!(page.headers()["content-security-policy"], DOCS_POLICY);
        }
    })
    .await;
}

/// No page of any origin may frame the answer, and no referrer leaves with a link from it.
fn assert_no_framing(response: &reqwest::Response, case: &str) {
    assert_eq!(response.headers()["x-frame-options"], "DENY", "{case}");
    assert_eq!(
        response.headers()["referrer-policy"],
        "no-referrer",
        "{case}"
    );
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{case}: {policy}"
    );
}

const ALLOWED: &str = "http://127.0.0.1:5173";

/// A page of an allowed origin may call the API with a bearer token and read the headers it
/// needs; any other origin gets no CORS headers (its browser blocks the answer), and its preflight
/// is refused with a JSON 400.
#[tokio::test]
async fn cors_answers_the_allowed_origins_and_no_other() {
    on_each_backend_with(
        |settings| settings.cors_allowed_origins = vec![ALLOWED.into()],
        async |app| {
            let preflight = |origin: &'static str| {
                app.client
                    .request(Method::OPTIONS, app.url("/accounts"))
                    .header("origin", origin)
                    .header("access-control-request-method", "GET")
                    .header(
                        "access-control-request-headers",
                        "authorization, idempotency-key",
                    )
                    .send()
            };
            let allowed = preflight(ALLOWED).await.unwrap();
            assert_eq!(allowed.status(), StatusCode::OK);
            assert_eq!(allowed.headers()["access-control-allow-origin"], ALLOWED);
            let allowed_headers = allowed.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_lowercase();
            assert!(
                allowed_headers.contains("authorization"),
                "{allowed_headers}"
            );

            let refused = preflight("http://evil.example").await.unwrap();
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
            assert!(
                refused
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
            let body: Value = refused.json().await.unwrap();
            assert!(body["detail"].is_string(), "{body}");

            let read = app
                .request(Method::GET, "/accounts")
                .header("origin", ALLOWED)
                .send()
                .await
                .unwrap();
            assert_eq!(read.status(), StatusCode::OK);
            assert_eq!(read.headers()["access-control-allow-origin"], ALLOWED);
            let exposed = read.headers()["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .to_lowercase();
            for header in ["link", "x-request-id", "idempotent-replayed", "retry-after"] {
                assert!(exposed.contains(header), "{header} in {exposed}");
            }
            let elsewhere = app
                .request(Method::GET, "/accounts")
                .header("origin", "http://evil.example")
                .send()
                .await
                .unwrap();
            assert!(
                elsewhere
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
        },
    )
    .await;
}

/// Without `CORS_ALLOWED_ORIGINS`, no origin is allowed: a preflight is not answered as one.
#[tokio::test]
async fn without_allowed_origins_no_cors_headers_are_sent() {
    on_each_backend(async |app| {
        let preflight = app
            .client
            .request(Method::OPTIONS, app.url("/accounts"))
            .header("origin", ALLOWED)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    })
    .await;
}
