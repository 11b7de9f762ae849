//! Sessions that can end: a login's refresh token is exchanged once for the next pair; one used
//! twice ends its session everywhere; revoking one (RFC 7009) is logging out; an expired one is
//! refused. Stored as digests in the database, so two processes agree.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    OPERATOR, TestApp, on_each_backend, on_each_backend_with, postgres_database, sample,
    test_settings,
};

/// `POST /token` with `form`: the answer's status and body.
async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .expect("POST /token");
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

async fn log_in(app: &TestApp) -> Value {
    let (status, body) = token(app, &[("username", OPERATOR.0), ("password", OPERATOR.1)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(app: &TestApp, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token(app, &form).await
}

async fn revoke(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .post(app.url("/token/revoke"))
        .form(&[("token", token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .expect("POST /token/revoke")
        .status()
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

/// Each exchange gives a new pair that works; the token exchanged cannot be used again.
#[tokio::test]
async fn a_refresh_token_is_exchanged_once_for_a_new_pair() {
    on_each_backend(async |app| {
        let login = log_in(&app).await;
        let first = text(&login, "refresh_token");
        assert_eq!(first.len(), 64, "{login}");

        let (status, renewed) = refresh(&app, first).await;

        assert_eq!(status, StatusCode::OK, "{renewed}");
        assert_eq!(renewed["token_type"], "bearer");
        assert_ne!(text(&renewed, "refresh_token"), first, "rotated");
        let accounts = app
            .client
            .get(app.url("/accounts"))
            .bearer_auth(text(&renewed, "access_token"))
            .send()
            .await
            .expect("GET /accounts");
        assert_eq!(
            accounts.status(),
            StatusCode::OK,
            "the new access token works"
        );
        let (again, _) = refresh(&app, text(&renewed, "refresh_token")).await;
        assert_eq!(again, StatusCode::OK, "the next one is good once too");
        let metrics = app.metrics().await;
        let rotated = sample(
            &metrics,
            "bank_refresh_tokens_total",
            &[("outcome", "rotated")],
        );
        assert_eq!(rotated, Some(2.0));
    })
    .await;
}

/// A token sent a second time was copied: the whole session ends, so the thief's newer token
/// (and the owner's) stops working, and the answer does not say why.
#[tokio::test]
async fn a_reused_refresh_token_ends_its_whole_session() {
    on_each_backend(async |app| {
        let login = log_in(&app).await;
        let stolen = text(&login, "refresh_token");
        let (_, thief) = refresh(&app, stolen).await;
        let other_session = log_in(&app).await;

        let (status, body) = refresh(&app, stolen).await;

        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body, serde_json::json!({"detail": "Invalid refresh token"}));
        let (thiefs_next, _) = refresh(&app, text(&thief, "refresh_token")).await;
        assert_eq!(
            thiefs_next,
            StatusCode::UNAUTHORIZED,
            "the family is revoked"
        );
        let (other, _) = refresh(&app, text(&other_session, "refresh_token")).await;
        assert_eq!(other, StatusCode::OK, "another login's session goes on");
        let metrics = app.metrics().await;
        let reused = sample(
            &metrics,
            "bank_refresh_tokens_total",
            &[("outcome", "reused")],
        );
        assert_eq!(reused, Some(1.0));
    })
    .await;
}

/// Logging out ends the session; unknown tokens are 200 too (RFC 7009), and a missing one is 422.
#[tokio::test]
async fn revoking_a_refresh_token_logs_out() {
    on_each_backend(async |app| {
        let login = log_in(&app).await;
        let refresh_token = text(&login, "refresh_token");

        assert_eq!(revoke(&app, refresh_token).await, StatusCode::OK);

        let (status, _) = refresh(&app, refresh_token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(revoke(&app, "never issued").await, StatusCode::OK);
        let missing = app
            .client
            .post(app.url("/token/revoke"))
            .form(&[("token_type_hint", "refresh_token")])
            .send()
            .await
            .expect("POST /token/revoke");
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        for (form, field) in [
            (
                [
                    ("token", "x".repeat(65)),
                    ("token_type_hint", "refresh_token".into()),
                ],
                "token",
            ),
            (
                [
                    ("token", "x".into()),
                    ("token_type_hint", "id_token".into()),
                ],
                "token_type_hint",
            ),
        ] {
            let refused = app
                .client
                .post(app.url("/token/revoke"))
                .form(&form)
                .send()
                .await
                .expect("POST /token/revoke");
            assert_eq!(
                refused.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field}"
            );
            let body: Value = refused.json().await.expect("JSON");
            assert_eq!(body["detail"][0]["loc"][1], field);
        }
        let revoked = sample(
            &app.metrics().await,
            "bank_refresh_tokens_total",
            &[("outcome", "revoked")],
        );
        assert_eq!(revoked, Some(1.0));
    })
    .await;
}

/// Past `REFRESH_TOKEN_TTL_SECS` a refresh token is refused, swept or not.
#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let ttl = |settings: &mut bank_api::config::Settings| {
        settings.refresh_token_ttl = Duration::from_secs(1);
    };
    on_each_backend_with(ttl, async |app| {
        let login = log_in(&app).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let (status, body) = refresh(&app, text(&login, "refresh_token")).await;

        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    })
    .await;
}

/// A grant this server does not know is 422 naming `grant_type`; a refresh without its token too.
#[tokio::test]
async fn an_unknown_grant_or_a_missing_refresh_token_is_422() {
    on_each_backend(async |app| {
        let (status, body) = token(&app, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["body", "grant_type"])
        );
        let (status, body) = token(&app, &[("grant_type", "refresh_token")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["body", "refresh_token"])
        );
    })
    .await;
}

/// Two processes on one database: a session ended on one is ended on the other, and a token
/// exchanged on one is used up on the other.
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn two_processes_agree_on_every_session() {
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
    let database_url = postgres_database(&server).await;
    let settings = || bank_api::config::Settings {
        database_url: database_url.clone(),
        ..test_settings()
    };
    let one = TestApp::spawn(settings()).await;
    let other = TestApp::spawn(settings()).await;

    let login = log_in(&one).await;
    let (status, renewed) = refresh(&other, text(&login, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (reused, _) = refresh(&one, text(&login, "refresh_token")).await;
    assert_eq!(
        reused,
        StatusCode::UNAUTHORIZED,
        "used up on the other process"
    );

    let second = log_in(&one).await;
    assert_eq!(
        revoke(&other, text(&second, "refresh_token")).await,
        StatusCode::OK
    );
    let (status, body) = refresh(&one, text(&second, "refresh_token")).await;
    assert_detail_of(status, &body);
}

fn assert_detail_of(status: StatusCode, body: &Value) {
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked on the other process: {body}"
    );
    assert_eq!(body["detail"], "Invalid refresh token");
}
