//! Signing up and logging in: the OAuth2 token answer, failures that look alike, the throttle, and
//! the sign-up rules.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    assert_detail, assert_validation_error, on_each_backend, on_each_backend_with, sample,
};

/// The token answer has the OAuth2 shape; a wrong password and an unknown user get the same
/// answer; the password is never echoed.
#[tokio::test]
async fn logging_in_gives_a_bearer_token_and_failures_look_alike() {
    on_each_backend(async |app| {
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
            // No name holds a NUL (Postgres cannot compare one): just a name that is not there.
            ("ada\0", "correct horse battery"),
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
        // Ada's, and the operator's the test app logs in with.
        assert_eq!(logins("success"), Some(2.0));
        assert_eq!(logins("bad_credentials"), Some(3.0));
    })
    .await;
}

/// After 5 failures for one username, the 6th attempt is 429 with `Retry-After`, even with the
/// right password; another username from the same address still gets in; after the window,
/// logins work again.
#[tokio::test]
async fn failed_logins_are_throttled_per_username_and_the_window_passes() {
    let settings = |s: &mut bank_api::config::Settings| {
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
    on_each_backend(async |app| {
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

/// Behind a trusted proxy, each client address has its own limit for a username: someone
/// failing as ada from one address does not stop ada from another, until the higher cap for ada
/// alone (50) is reached from many addresses.
#[tokio::test]
async fn a_username_failing_from_one_address_still_logs_in_from_another() {
    let behind_a_proxy = |s: &mut bank_api::config::Settings| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    };
    on_each_backend_with(behind_a_proxy, async |app| {
        app.customer("ada").await;
        let from = |client: u32| format!("198.51.100.{client}");
        for _ in 0..5 {
            let response = app.log_in_from("ada", "wrong", Some(&from(1))).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let attacker = app.log_in_from("ada", "ada password", Some(&from(1))).await;
        assert_eq!(attacker.status(), StatusCode::TOO_MANY_REQUESTS);
        let ada = app.log_in_from("ada", "ada password", Some(&from(2))).await;
        assert_eq!(ada.status(), StatusCode::OK, "ada from her own address");

        for client in 10..20 {
            for _ in 0..5 {
                let response = app.log_in_from("ada", "wrong", Some(&from(client))).await;
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{client}");
            }
        }
        let capped = app.log_in_from("ada", "ada password", Some(&from(3))).await;
        assert_eq!(
            capped.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "50 for ada alone"
        );
    })
    .await;
}

/// Without `TRUSTED_PROXIES`, `X-Forwarded-For` is not believed: writing a new address in it
/// for each guess does not escape the limit.
#[tokio::test]
async fn an_untrusted_forwarded_for_does_not_escape_the_limit() {
    on_each_backend(async |app| {
        app.customer("ada").await;
        for client in 1..=5 {
            let forged = format!("198.51.100.{client}");
            let response = app.log_in_from("ada", "wrong", Some(&forged)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = app
            .log_in_from("ada", "ada password", Some("198.51.100.99"))
            .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

/// A login is counted before its password is checked, and a correct one is taken back: many
/// good logins from one address never add up to its limit (20).
#[tokio::test]
async fn successful_logins_do_not_count_against_the_address() {
    on_each_backend(async |app| {
        app.customer("ada").await;
        for attempt in 0..25 {
            let response = app.log_in("ada", "ada password").await;
            assert_eq!(response.status(), StatusCode::OK, "login {attempt}");
        }
        let response = app.log_in("grace", "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

/// Attempts sent at the same moment are counted before any password is checked, so no more than
/// the limit of them are heard.
#[tokio::test]
async fn parallel_guesses_cannot_slip_under_the_limit() {
    on_each_backend(async |app| {
        app.customer("ada").await;
        let guesses = (0..12).map(|_| app.log_in("ada", "wrong"));
        let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
            .await
            .iter()
            .map(|response| response.status())
            .collect();
        let heard = statuses
            .iter()
            .filter(|status| **status == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!(heard, 5, "{statuses:?}");
        assert!(statuses.iter().all(|status| {
            *status == StatusCode::UNAUTHORIZED || *status == StatusCode::TOO_MANY_REQUESTS
        }));
    })
    .await;
}

#[tokio::test]
async fn sign_up_refuses_taken_names_weak_passwords_nul_and_overlong_fields() {
    on_each_backend(async |app| {
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
        s.signup_enabled = false;
    };
    on_each_backend_with(settings, async |app| {
        let body = json!({"username": "ada", "password": "correct horse battery"});
        assert_detail(
            app.anonymous(reqwest::Method::POST, "/users", Some(&body))
                .await,
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

/// Usernames are 3 to 64 ASCII letters, digits or `. _ @ + -`, as the README says.
#[tokio::test]
async fn usernames_are_letters_digits_and_five_symbols() {
    on_each_backend(async |app| {
        for good in [
            "ada",
            "Ada.Lovelace_1815",
            "ada+bank@example.com",
            "a-b",
            &"x".repeat(64),
        ] {
            let body = json!({"username": good, "password": "long enough"});
            let response = app
                .anonymous(reqwest::Method::POST, "/users", Some(&body))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED, "{good}");
        }
        for bad in [
            "ab",
            "adé",
            "ada lovelace",
            "ada/1",
            "ada#1",
            "ada!",
            "ada\u{ff21}",
            "ada,b",
        ] {
            let body = json!({"username": bad, "password": "long enough"});
            let response = app
                .anonymous(reqwest::Method::POST, "/users", Some(&body))
                .await;
            assert_validation_error(response, &["body", "username"], bad).await;
        }
    })
    .await;
}

/// The token expires when `expires_in` says: its `exp` claim is `TOKEN_TTL_SECS` after its
/// `iat`, which is now.
#[tokio::test]
async fn an_issued_token_expires_after_the_configured_lifetime() {
    on_each_backend_with(
        |settings| settings.token_ttl = Duration::from_secs(120),
        async |app| {
            app.customer("ada").await;
            let answer: Value = app
                .log_in("ada", "ada password")
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(answer["expires_in"], 120);
            use base64::Engine as _;
            let payload = answer["access_token"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap();
            let claims: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .unwrap(),
            )
            .unwrap();
            let (iat, exp) = (
                claims["iat"].as_i64().unwrap(),
                claims["exp"].as_i64().unwrap(),
            );
            assert_eq!(exp - iat, 120);
            assert!(
                (iat - chrono::Utc::now().timestamp()).abs() <= 5,
                "{claims}"
            );
        },
    )
    .await;
}

/// A username is one name whatever its case: `Ada` cannot sign up beside `ada` (a support person
/// reading "Ada" could not tell them apart), `ADA` logs in as `ada`, and failures under any case
/// count against the one name.
#[tokio::test]
async fn usernames_are_one_name_whatever_their_case() {
    on_each_backend(async |app| {
        let ada = app.customer("ada").await;
        let ada_id = app.user_id("ada").await;

        for other_case in ["Ada", "ADA", "aDa"] {
            let taken = app
                .post(
                    "/users",
                    &json!({"username": other_case, "password": "another password"}),
                )
                .await;
            assert_detail(taken, StatusCode::CONFLICT, "Username already taken").await;
        }
        let login = app.log_in("ADA", "ada password").await;
        assert_eq!(login.status(), StatusCode::OK);
        let token = login.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let accounts = app
            .client
            .get(app.url("/accounts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            accounts.status(),
            StatusCode::OK,
            "the token of user {ada_id}"
        );
        drop(ada);

        // The limit (5 failures of a name from an address) counts every case of the name together.
        for attempt in 0..5 {
            let case = ["ada", "ADA", "Ada"][attempt % 3];
            let failed = app.log_in(case, "wrong password").await;
            assert_eq!(
                failed.status(),
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}"
            );
        }
        let throttled = app.log_in("aDA", "ada password").await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}
