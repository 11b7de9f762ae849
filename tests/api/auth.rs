//! Access control: only an account's owner, or an operator, can see it or move its money.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{
    TEST_JWT_SECRET, TestApp, assert_detail, assert_validation_error, on_each_backend_with, sample,
    with_auth,
};

/// Customer B asks for everything of customer A's, by id: every answer is the 404 a missing id
/// gets, and nothing of A's changes.
#[tokio::test]
async fn another_customers_accounts_and_ledger_are_not_found_and_unchanged() {
    on_each_backend_with(with_auth, async |app| {
        let a = app.customer("alice").await;
        let b = app.customer("bob").await;
        let alices = a.funded_account(500).await;
        let alices_row = a
            .get_json(&format!("/accounts/{alices}/transactions"))
            .await[0]["id"]
            .as_i64()
            .unwrap();
        let bobs = b.funded_account(100).await;
        let before = a.get_json(&format!("/accounts/{alices}")).await;

        let not_found = [
            (
                b.get(&format!("/accounts/{alices}")).await,
                "Account not found",
            ),
            (
                b.get(&format!("/accounts/{alices}/balance")).await,
                "Account not found",
            ),
            (
                b.get(&format!("/accounts/{alices}/transactions")).await,
                "Account not found",
            ),
            (
                b.get(&format!("/transactions/{alices_row}")).await,
                "Transaction not found",
            ),
            (
                b.post("/transactions", &json!({"acc_id": alices, "debit": 1}))
                    .await,
                "Account not found",
            ),
            (
                b.post("/transactions", &json!({"acc_id": alices, "credit": 1}))
                    .await,
                "Account not found",
            ),
            (
                b.post(
                    "/transfers",
                    &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 1}),
                )
                .await,
                "Account not found",
            ),
        ];
        for (response, detail) in not_found {
            assert_detail(response, StatusCode::NOT_FOUND, detail).await;
        }
        assert_eq!(a.get_json(&format!("/accounts/{alices}")).await, before);
        assert_eq!(
            a.get_json(&format!("/accounts/{alices}/transactions"))
                .await
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // Lists hold only one's own rows; an operator's hold everyone's.
        let ids = |page: Value| -> Vec<i64> {
            page.as_array()
                .unwrap()
                .iter()
                .map(|row| row["id"].as_i64().unwrap())
                .collect()
        };
        assert_eq!(ids(b.get_json("/accounts").await), [bobs]);
        let bobs_ledger = b.get_json("/transactions").await;
        assert!(
            bobs_ledger
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["acc_id"] == bobs)
        );
        let operator = app.operator().await;
        assert_eq!(ids(operator.get_json("/accounts").await), [alices, bobs]);
        assert_eq!(
            operator
                .get_json("/transactions")
                .await
                .as_array()
                .unwrap()
                .len(),
            2
        );

        // Accounts without an owner (an operator's, or from before users) are the operators'.
        let operators = operator.funded_account(0).await;
        assert_detail(
            b.get(&format!("/accounts/{operators}")).await,
            StatusCode::NOT_FOUND,
            "Account not found",
        )
        .await;
        assert_eq!(ids(b.get_json("/accounts").await), [bobs]);
    })
    .await;
}

/// A customer may transfer from their own account to anyone's, and the receiver sees it.
#[tokio::test]
async fn a_customer_transfers_from_their_own_account_to_any_account() {
    on_each_backend_with(with_auth, async |app| {
        let a = app.customer("alice").await;
        let b = app.customer("bob").await;
        let alices = a.funded_account(500).await;
        let bobs = b.funded_account(0).await;

        let response = a
            .post(
                "/transfers",
                &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 200}),
            )
            .await;

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            b.get_json(&format!("/accounts/{bobs}/balance")).await["balance"],
            200
        );
        assert_eq!(
            a.get_json(&format!("/accounts/{alices}/balance")).await["balance"],
            300
        );
    })
    .await;
}

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
    on_each_backend_with(with_auth, async |app| {
        let alice = app.customer("alice").await;
        let user_id = app.get_json("/ping").await; // any public route works without a token
        assert_eq!(user_id, json!({"ping": "pong"}));
        let alices_id: i64 = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                "SELECT id FROM users WHERE username = 'alice'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
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

        // A deleted user's token dies with them.
        assert_eq!(alice.get("/accounts").await.status(), StatusCode::OK);
        app.db
            .execute_unprepared("DELETE FROM users WHERE username = 'alice'")
            .await
            .unwrap();
        assert_detail(
            alice.get("/accounts").await,
            StatusCode::UNAUTHORIZED,
            "Could not validate credentials",
        )
        .await;
    })
    .await;
}

/// The token answer has the OAuth2 shape; a wrong password and an unknown user get the same
/// answer; the password is never echoed.
#[tokio::test]
async fn logging_in_gives_a_bearer_token_and_failures_look_alike() {
    on_each_backend_with(with_auth, async |app| {
        let signed_up = app
            .post(
                "/users",
                &json!({"username": "ada", "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(signed_up.status(), StatusCode::CREATED);
        let user: Value = signed_up.json().await.unwrap();
        assert_eq!(user["username"], "ada");
        assert_eq!(user["role"], "customer");
        assert!(
            !user.to_string().contains("correct horse"),
            "the password is not echoed"
        );

        let response = app.log_in("ada", "correct horse battery").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let token: Value = response.json().await.unwrap();
        assert_eq!(token["token_type"], "bearer");
        assert_eq!(token["expires_in"], 900);
        assert_eq!(
            token["access_token"].as_str().unwrap().split('.').count(),
            3
        );

        for (username, password) in [
            ("ada", "wrong password"),
            ("nobody", "correct horse battery"),
        ] {
            let response = app.log_in(username, password).await;
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_detail(
                response,
                StatusCode::UNAUTHORIZED,
                "Incorrect username or password",
            )
            .await;
        }
        let metrics = app.metrics().await;
        let logins = |outcome| sample(&metrics, "bank_logins_total", &[("outcome", outcome)]);
        assert_eq!(logins("success"), Some(1.0));
        assert_eq!(logins("bad_credentials"), Some(2.0));
    })
    .await;
}

/// After 5 failures for one username, the 6th attempt is 429 with `Retry-After`, even with the
/// right password; another username from the same address still gets in; after the window,
/// logins work again.
#[tokio::test]
async fn failed_logins_are_throttled_per_username_and_the_window_passes() {
    let settings = |s: &mut bank_api::config::Settings| {
        with_auth(s);
        s.login_throttle_window = Duration::from_secs(2);
    };
    on_each_backend_with(settings, async |app| {
        app.customer("ada").await;
        app.customer("grace").await;
        for attempt in 1..=5 {
            let response = app.log_in("ada", "wrong password").await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}"
            );
        }

        let throttled = app.log_in("ada", "ada password").await;

        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = throttled.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        assert_eq!(
            app.log_in("grace", "grace password").await.status(),
            StatusCode::OK
        );
        let metrics = app.metrics().await;
        assert_eq!(
            sample(&metrics, "bank_logins_total", &[("outcome", "throttled")]),
            Some(1.0)
        );

        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            app.log_in("ada", "ada password").await.status(),
            StatusCode::OK
        );
    })
    .await;
}

/// The per-address limit (20) is looser than the per-username one (5), and it does hold.
#[tokio::test]
async fn one_address_failing_for_many_usernames_is_throttled_too() {
    on_each_backend_with(with_auth, async |app| {
        for attempt in 0..20 {
            let response = app
                .log_in(&format!("user{}", attempt % 4), "wrong password")
                .await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}"
            );
        }
        let response = app.log_in("someone-else", "wrong password").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

#[tokio::test]
async fn sign_up_refuses_taken_names_weak_passwords_nul_and_overlong_fields() {
    on_each_backend_with(with_auth, async |app| {
        app.customer("ada").await;
        let taken = app
            .post(
                "/users",
                &json!({"username": "ada", "password": "another password"}),
            )
            .await;
        assert_detail(taken, StatusCode::CONFLICT, "Username already taken").await;
        let cases = [
            (
                json!({"username": "grace", "password": "short"}),
                "password",
                "weak password",
            ),
            (
                json!({"username": "grace", "password": "x".repeat(129)}),
                "password",
                "overlong password",
            ),
            (
                json!({"username": "grace", "password": "with a \u{0} NUL"}),
                "password",
                "NUL in password",
            ),
            (
                json!({"username": "gr\u{0}ace", "password": "long enough"}),
                "username",
                "NUL in username",
            ),
            (
                json!({"username": "g".repeat(65), "password": "long enough"}),
                "username",
                "overlong username",
            ),
            (
                json!({"username": "g r", "password": "long enough"}),
                "username",
                "space in username",
            ),
            (
                json!({"password": "long enough"}),
                "username",
                "missing username",
            ),
        ];
        for (body, field, case) in cases {
            let response = app.post("/users", &body).await;
            assert_validation_error(response, &["body", field], case).await;
        }
    })
    .await;
}

/// With sign-up off, anonymous sign-ups are 403 and an operator still creates users.
#[tokio::test]
async fn with_sign_up_off_only_an_operator_creates_users() {
    let settings = |s: &mut bank_api::config::Settings| {
        with_auth(s);
        s.signup_enabled = false;
    };
    on_each_backend_with(settings, async |app| {
        let body = json!({"username": "ada", "password": "correct horse battery"});
        assert_detail(
            app.post("/users", &body).await,
            StatusCode::FORBIDDEN,
            "Sign-up is disabled",
        )
        .await;

        let created = app.operator().await.post("/users", &body).await;

        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(
            app.log_in("ada", "correct horse battery").await.status(),
            StatusCode::OK
        );
    })
    .await;
}

/// Public routes answer without a token; data routes do not.
#[tokio::test]
async fn probes_docs_and_metrics_need_no_token_and_data_routes_do() {
    on_each_backend_with(with_auth, async |app: TestApp| {
        for path in [
            "/ping",
            "/health",
            "/ready",
            "/docs/",
            "/redoc",
            "/openapi.json",
            "/metrics",
        ] {
            assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
        }
        for path in [
            "/accounts",
            "/accounts/1",
            "/accounts/1/balance",
            "/accounts/1/transactions",
            "/transactions",
            "/transactions/1",
        ] {
            assert_eq!(
                app.get(path).await.status(),
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
        for path in ["/accounts", "/transactions", "/transfers"] {
            assert_eq!(
                app.post(path, &json!({})).await.status(),
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    })
    .await;
}
