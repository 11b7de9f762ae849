//! `AUTH_REQUIRED=false`, for the Python original's clients, which send no token: every caller
//! acts as an operator, and keys and accounts are everyone's. The rest of the suite runs with the
//! shipped default, access control on.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::on_each_backend_with;

fn open(settings: &mut bank_api::config::Settings) {
    settings.auth_required = false;
}

#[tokio::test]
async fn without_access_control_anyone_acts_as_an_operator() {
    on_each_backend_with(open, async |app| {
        assert!(app.token.is_none(), "no token is needed, so none is sent");
        let customer = app.customer("ada").await;
        let theirs = customer.funded_account(100).await;
        let ours = app.funded_account(50).await;

        let listed = app.get_json("/accounts").await;
        let ids: Vec<i64> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|account| account["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [theirs, ours], "every account is everyone's");
        let moved = app
            .post(
                "/transfers",
                &json!({"from_acc_id": theirs, "to_acc_id": ours, "amount": 30}),
            )
            .await;
        assert_eq!(moved.status(), StatusCode::CREATED);
        assert_eq!(app.balance(ours).await, 80);
    })
    .await;
}

/// Every caller is one owner of idempotency keys: a retry from another client replays.
#[tokio::test]
async fn without_access_control_every_caller_shares_the_idempotency_keys() {
    on_each_backend_with(open, async |app| {
        let id = app.funded_account(10).await;
        let body = json!({"acc_id": id, "credit": 7});
        let first = app.post_with_key("/transactions", "shared-1", &body).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.unwrap();

        let other_client = reqwest::Client::new();
        let retry = other_client
            .post(app.url("/transactions"))
            .header("Idempotency-Key", "shared-1")
            .json(&body)
            .send()
            .await
            .unwrap();

        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
        assert_eq!(app.balance(id).await, 17);
        let anonymous = app.anonymous(Method::GET, "/accounts", None).await;
        assert_eq!(anonymous.status(), StatusCode::OK);
    })
    .await;
}
