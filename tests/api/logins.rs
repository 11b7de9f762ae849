//! Signing up and logging in: the OAuth2 token answer, failures that look alike, the throttle, and
//! the sign-up rules.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    assert_detail, assert_validation_error, on_each_backend_with, sample, with_auth,
};

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
