//! Request limits per client: a client over its limit is answered 429 with `Retry-After` while
//! others are served; every answer says where its client stands; probes are never limited; the
//! document lists the 429 and the fields.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, sample, sqlite_settings};

const PER_SECOND: u32 = 10;
/// Requests sent back to back: far more than a second's quota plus what a slow machine refills.
const BURST: usize = 60;

async fn limited_app(configure: impl FnOnce(&mut bank_api::config::Settings)) -> TestApp {
    let mut settings = sqlite_settings();
    settings.rate_limit_per_second = std::num::NonZeroU32::new(PER_SECOND);
    configure(&mut settings);
    TestApp::spawn(settings).await
}

/// Sends `count` requests one after another; how many were let through and the last refusal.
async fn burst(count: usize, send: impl AsyncFn() -> Response) -> (usize, Option<Response>) {
    let started = Instant::now();
    let mut served = 0;
    let mut refused = None;
    for _ in 0..count {
        let response = send().await;
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => refused = Some(response),
            _ => served += 1,
        }
    }
    // A second's quota at once, then what the time the burst took refilled.
    let refilled = (started.elapsed().as_secs_f64() * f64::from(PER_SECOND)).ceil() as usize;
    assert!(
        served <= PER_SECOND as usize + refilled,
        "{served} served in {:?}, over a limit of {PER_SECOND} a second",
        started.elapsed()
    );
    (served, refused)
}

fn field<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} on a {}", response.status()))
        .to_str()
        .expect("ASCII")
}

#[tokio::test]
async fn a_user_over_the_limit_waits_while_another_is_served() {
    let app = limited_app(|_| {}).await;
    let ada = app.customer("ada").await;
    let bob = app.customer("bob").await;

    let (served, refused) = burst(BURST, || ada.get("/accounts")).await;

    assert!(served >= 1, "the first request is served");
    let refused = refused.expect("a burst over the limit is refused in part");
    let retry_after: u64 = field(&refused, "retry-after").parse().expect("seconds");
    assert_eq!(retry_after, 1, "a tenth of a second, rounded up");
    assert_eq!(
        field(&refused, "ratelimit-policy"),
        "\"per-client\";q=10;w=1"
    );
    assert_eq!(field(&refused, "ratelimit"), "\"per-client\";r=0;t=1");
    assert_eq!(field(&refused, "cache-control"), "no-store");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body["detail"],
        "Too many requests: at most 10 a second per client. Retry after 1 s"
    );
    // Another user behind the same address has a count of their own.
    assert_eq!(bob.get("/accounts").await.status(), StatusCode::OK);
    // And the refused client is heard again once its time has come.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(ada.get("/accounts").await.status(), StatusCode::OK);

    let metrics = app.metrics().await;
    let throttled = sample(
        &metrics,
        "bank_requests_throttled_total",
        &[("client", "user")],
    );
    assert!(throttled >= Some(1.0), "{throttled:?}");
    let rejected = sample(
        &metrics,
        "bank_rejections_total",
        &[("reason", "throttled")],
    );
    assert!(rejected >= throttled, "{rejected:?}");
}

#[tokio::test]
async fn every_answer_says_what_its_client_has_left() {
    let app = limited_app(|_| {}).await;
    let ada = app.customer("ada").await;

    let first = ada.get("/accounts").await;
    let second = ada.get("/accounts/999").await;

    assert_eq!(field(&first, "ratelimit-policy"), "\"per-client\";q=10;w=1");
    let left = |response: &Response| -> u32 {
        let state = field(response, "ratelimit");
        let r = state.split(';').find_map(|part| part.strip_prefix("r="));
        r.expect("r=").parse().expect("a count")
    };
    // The user's own count: signing up and logging in were counted against the address.
    assert_eq!(left(&first), PER_SECOND - 1);
    assert!(left(&second) <= left(&first), "the count goes down");
    assert_eq!(
        second.status(),
        StatusCode::NOT_FOUND,
        "errors carry it too"
    );
    assert!(field(&second, "ratelimit").ends_with(";t=1"));
}

/// Without a valid token, the client is its address; a forged `X-Forwarded-For` does not make a
/// new client unless the peer is a trusted proxy. A wrong token is no way out either.
#[tokio::test]
async fn without_a_token_the_address_is_counted_and_cannot_be_forged() {
    let app = limited_app(|_| {}).await;
    let sent = std::cell::Cell::new(0);
    let (_, refused) = burst(BURST, async || {
        sent.set(sent.get() + 1);
        app.client
            .get(app.url("/accounts"))
            .bearer_auth("not.a.token")
            .header("X-Forwarded-For", format!("198.51.100.{}", sent.get()))
            .send()
            .await
            .expect("GET /accounts")
    })
    .await;
    assert!(refused.is_some(), "one address, however it signs itself");
    let throttled = sample(
        &app.metrics().await,
        "bank_requests_throttled_total",
        &[("client", "address")],
    );
    assert!(throttled >= Some(1.0), "{throttled:?}");

    let behind_proxy = limited_app(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    for i in 0..2 * PER_SECOND {
        let response = behind_proxy
            .client
            .post(behind_proxy.url("/token"))
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .form(&[("username", "nobody"), ("password", "wrong password")])
            .send()
            .await
            .expect("POST /token");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "client {i}");
    }
}

/// Load balancers' probes and Prometheus's scrapes are never turned away, and are not counted.
#[tokio::test]
async fn probes_and_scrapes_are_not_limited() {
    let app = limited_app(|_| {}).await;
    for path in ["/health", "/ready", "/metrics"] {
        for _ in 0..10 {
            let response = app.anonymous(reqwest::Method::GET, path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(response.headers().get("ratelimit").is_none(), "{path}");
        }
    }
}

/// `RATE_LIMIT_PER_SECOND=0`: no limit, no fields, and the document promises no 429.
#[tokio::test]
async fn a_limit_of_zero_is_no_limit() {
    let mut settings = sqlite_settings();
    settings.rate_limit_per_second = None;
    let app = TestApp::spawn(settings).await;
    for _ in 0..BURST {
        let response = app.get("/accounts").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("ratelimit").is_none());
    }
    let document = app.get_json("/openapi.json").await;
    assert!(document["paths"]["/accounts"]["get"]["responses"]["429"].is_null());
}

/// Every operation but the probes documents its 429 and the fields on each answer, with the
/// server's own limit in the example.
#[tokio::test]
async fn the_document_lists_the_429_and_the_fields() {
    let app = limited_app(|_| {}).await;
    let document = app.get_json("/openapi.json").await;
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("operations") {
            let responses = operation["responses"].as_object().expect("responses");
            let probe = ["/health", "/ready", "/metrics"].contains(&path.as_str());
            assert_eq!(
                responses.contains_key("429"),
                !probe,
                "{method} {path}: a 429 unless a probe"
            );
            if probe {
                continue;
            }
            for (status, response) in responses {
                let headers = &response["headers"];
                assert!(
                    headers["RateLimit"].is_object() && headers["RateLimit-Policy"].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let policy = &paths["/accounts"]["get"]["responses"]["200"]["headers"]["RateLimit-Policy"];
    assert_eq!(policy["example"], "\"per-client\";q=10;w=1");
}
