//! Bearer tokens: every kind of bad one is refused, counted by reason, and a deleted user's token
//! dies with them.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TEST_JWT_SECRET, assert_detail, on_each_backend, sample};

/// How soon a server must hear that a user changed: a generous bound on a notification's delivery.
const HEARD_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

fn token(claims: Value, key: &str, algorithm: Algorithm) -> String {
    encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Every kind of bad token is 401 with `WWW-Authenticate: Bearer`, FastAPI's wording, and a count
/// by reason; none reaches the data.
#[tokio::test]
async fn every_kind_of_bad_token_is_401() {
    on_each_backend(async |app| {
        let alice = app.customer("alice").await;
        let user_id = app.get_json("/ping").await; // any public route works without a token
        assert_eq!(user_id, json!({"ping": "pong"}));
        let alices_id = app.user_id("alice").await;
        let claims = |sub: i64, exp: i64| json!({"sub": sub.to_string(), "iat": now(), "exp": exp});
        let (header, payload, signature) = {
            let mut parts = alice.token.split('.');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        };
        let other_payload = token(
            claims(alices_id + 1, now() + 600),
            TEST_JWT_SECRET,
            Algorithm::HS256,
        )
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
        use base64::Engine as _;
        let unsigned = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"alg":"none","typ":"JWT"}"#),
            payload
        );
        let cases: Vec<(Option<String>, &str, &str)> = vec![
            (None, "missing", "Not authenticated"),
            (
                Some("Basic YWxpY2U6cHc=".into()),
                "malformed",
                "Could not validate credentials",
            ),
            (
                Some("Bearer not.a.jwt".into()),
                "malformed",
                "Could not validate credentials",
            ),
            (
                Some(format!("Bearer {unsigned}")),
                "malformed",
                "Could not validate credentials",
            ),
            (
                Some(format!("Bearer {header}.{other_payload}.{signature}")),
                "bad_signature",
                "Could not validate credentials",
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(
                        claims(alices_id, now() + 600),
                        "another key of at least thirty-two chars",
                        Algorithm::HS256
                    )
                )),
                "bad_signature",
                "Could not validate credentials",
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(
                        claims(alices_id, now() - 5),
                        TEST_JWT_SECRET,
                        Algorithm::HS256
                    )
                )),
                "expired",
                "Could not validate credentials",
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(
                        claims(9_999_999, now() + 600),
                        TEST_JWT_SECRET,
                        Algorithm::HS256
                    )
                )),
                "unknown_user",
                "Could not validate credentials",
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(
                        claims(alices_id, now() + 600),
                        TEST_JWT_SECRET,
                        Algorithm::HS384
                    )
                )),
                "malformed",
                "Could not validate credentials",
            ),
        ];
        for (authorization, reason, detail) in &cases {
            let mut request = app.client.get(app.url("/accounts"));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["www-authenticate"], "Bearer", "{reason}");
            assert_detail(response, StatusCode::UNAUTHORIZED, detail).await;
        }
        let metrics = app.metrics().await;
        for reason in [
            "missing",
            "malformed",
            "bad_signature",
            "expired",
            "unknown_user",
        ] {
            let expected = cases.iter().filter(|(_, r, _)| *r == reason).count() as f64;
            assert_eq!(
                sample(&metrics, "bank_tokens_refused_total", &[("reason", reason)]),
                Some(expected),
                "{reason}"
            );
        }
        let unauthorized = [
            ("endpoint", "/accounts"),
            ("method", "GET"),
            ("status", "401"),
        ];
        assert_eq!(
            sample(&metrics, "http_requests_total", &unauthorized),
            Some(cases.len() as f64)
        );

        // A deleted user's token dies with them, as soon as the server hears of it (Postgres
        // notifies it, within milliseconds; SQLite is read every time).
        assert_eq!(alice.get("/accounts").await.status(), StatusCode::OK);
        app.db
            .execute_unprepared("DELETE FROM users WHERE username = 'alice'")
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + HEARD_WITHIN;
        let refused = loop {
            let response = alice.get("/accounts").await;
            if response.status() != StatusCode::OK || std::time::Instant::now() > deadline {
                break response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert_detail(
            refused,
            StatusCode::UNAUTHORIZED,
            "Could not validate credentials",
        )
        .await;
    })
    .await;
}
