//! `POST /batches`: many postings and transfers in one request, each with its own result; with
//! `atomic`, all or none.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_validation_error, on_each_backend};

async fn batch(app: &crate::helpers::TestApp, body: Value) -> (StatusCode, Value) {
    let response = app.post("/batches", &body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn statuses(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["status"].as_i64().unwrap())
        .collect()
}

/// Each item stands alone: applied ones are applied in the order sent (each with its own
/// `balance_after`), a refused one is refused alone, with the answer its own route gives.
#[tokio::test]
async fn each_item_gets_its_own_result_in_the_order_sent() {
    on_each_backend(async |app| {
        let (a, b) = (app.funded_account(100).await, app.funded_account(0).await);
        let (status, body) = batch(
            &app,
            json!({"items": [
                {"kind": "posting", "acc_id": a, "debit": 30},
                {"kind": "posting", "acc_id": a, "debit": 80},
                {"kind": "transfer", "from_acc_id": a, "to_acc_id": b, "amount": 50},
                {"kind": "posting", "acc_id": i64::MAX, "credit": 1},
                {"kind": "posting", "acc_id": b, "credit": 5},
            ]}),
        )
        .await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), [201, 409, 201, 404, 201], "{body}");
        let results = &body["results"];
        assert_eq!(results[0]["transaction"]["balance_after"], 70);
        assert_eq!(results[1]["detail"], "Insufficient funds");
        assert_eq!(
            results[2]["transfer"]["from_transaction"]["balance_after"],
            20
        );
        assert_eq!(
            results[2]["transfer"]["to_transaction"]["balance_after"],
            50
        );
        assert_eq!(results[3]["detail"], "Account not found");
        assert_eq!(results[4]["transaction"]["balance_after"], 55);
        assert_eq!((app.balance(a).await, app.balance(b).await), (20, 55));
    })
    .await;
}

/// An item's key is its own route's key: the same key and posting sent alone, or in a batch
/// again, is one write; the same key with another posting is refused.
#[tokio::test]
async fn an_items_key_is_shared_with_its_own_route() {
    on_each_backend(async |app| {
        let account = app.funded_account(100).await;
        let posting = json!({"acc_id": account, "debit": 10});
        let alone = app.post_with_key("/transactions", "pay-1", &posting).await;
        assert_eq!(alone.status(), StatusCode::CREATED);
        let alone: Value = alone.json().await.unwrap();

        let (status, body) = batch(
            &app,
            json!({"items": [
                {"kind": "posting", "acc_id": account, "debit": 10, "idempotency_key": "pay-1"},
                {"kind": "posting", "acc_id": account, "debit": 20, "idempotency_key": "pay-1"},
                {"kind": "posting", "acc_id": account, "debit": 5, "idempotency_key": "pay-2"},
                {"kind": "posting", "acc_id": account, "debit": 5, "idempotency_key": "pay-2"},
            ]}),
        )
        .await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), [201, 422, 201, 201], "{body}");
        let results = &body["results"];
        assert_eq!(
            results[0]["transaction"], alone,
            "replayed, not applied again"
        );
        assert_eq!(results[0]["replayed"], true);
        assert_eq!(results[3]["transaction"], results[2]["transaction"]);
        assert_eq!(
            results[3]["replayed"], true,
            "a key used twice in one batch"
        );
        assert_eq!(app.balance(account).await, 85);
    })
    .await;
}

/// With `atomic`, every item is applied in one commit, or none is: a refused item leaves every
/// balance and the ledger as they were, and says which item it was.
#[tokio::test]
async fn an_atomic_batch_applies_all_or_nothing() {
    on_each_backend(async |app| {
        let (a, b) = (app.funded_account(100).await, app.funded_account(0).await);
        let rows_before = app.ledger_len().await;
        let refused = json!({"atomic": true, "items": [
            {"kind": "transfer", "from_acc_id": a, "to_acc_id": b, "amount": 60},
            {"kind": "posting", "acc_id": a, "debit": 60},
            {"kind": "posting", "acc_id": b, "credit": 1},
        ]});

        let (status, body) = batch(&app, refused).await;

        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(statuses(&body), [424, 409, 424], "{body}");
        assert_eq!(body["results"][1]["detail"], "Insufficient funds");
        assert_eq!((app.balance(a).await, app.balance(b).await), (100, 0));
        assert_eq!(app.ledger_len().await, rows_before, "nothing was written");

        let (status, body) = batch(
            &app,
            json!({"atomic": true, "items": [
                {"kind": "transfer", "from_acc_id": a, "to_acc_id": b, "amount": 60},
                {"kind": "posting", "acc_id": a, "debit": 40},
            ]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(statuses(&body), [201, 201]);
        assert_eq!((app.balance(a).await, app.balance(b).await), (0, 60));
    })
    .await;
}

/// A batch with an invalid item is refused whole, atomic or not, before anything is sent, each
/// problem located by its item; a batch of no items or of more than 1,000 is refused too.
#[tokio::test]
async fn a_batch_must_be_valid_and_of_1_to_1000_items() {
    on_each_backend(async |app| {
        let account = app.funded_account(10).await;
        for atomic in [true, false] {
            let response = app
                .post(
                    "/batches",
                    &json!({"atomic": atomic, "items": [
                        {"kind": "posting", "acc_id": account, "credit": 1},
                        {"kind": "transfer", "from_acc_id": account, "to_acc_id": account, "amount": 1},
                        {"kind": "posting", "acc_id": account, "credit": 0},
                    ]}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let body: Value = response.json().await.unwrap();
            let locs: Vec<&Value> = body["detail"].as_array().unwrap().iter().map(|e| &e["loc"]).collect();
            assert_eq!(
                locs,
                [&json!(["body", "items", 1, "to_acc_id"]), &json!(["body", "items", 2])],
                "{body}"
            );
        }
        assert_eq!(app.balance(account).await, 10, "nothing was tried");

        let item = json!({"kind": "posting", "acc_id": account, "credit": 1});
        for items in [vec![], vec![item; 1001]] {
            let response = app.post("/batches", &json!({ "items": items })).await;
            assert_validation_error(response, &["body", "items"], "items").await;
        }
        assert_eq!(app.balance(account).await, 10);
    })
    .await;
}

/// A batch body may be up to 1 MiB, above the other routes' limit: a thousand items with long
/// keys fit; more than 1 MiB is 413.
#[tokio::test]
async fn a_batch_body_may_be_up_to_one_mebibyte() {
    let app = crate::helpers::TestApp::spawn(crate::helpers::sqlite_settings()).await;
    let account = app.funded_account(0).await;
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({"kind": "posting", "acc_id": account, "credit": 1, "idempotency_key": format!("{i:0>200}")}))
        .collect();
    let body = json!({ "items": items });
    assert!(
        body.to_string().len() > app.settings.body_limit_bytes,
        "over the usual limit"
    );

    let (status, answer) = batch(&app, body).await;
    assert_eq!(status, StatusCode::OK);
    assert!(statuses(&answer).iter().all(|status| *status == 201));
    assert_eq!(app.balance(account).await, 1000);

    let padding = "x".repeat(1 << 20);
    let response = app
        .post("/batches", &json!({"items": [], "padding": padding}))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
