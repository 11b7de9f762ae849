use bank_core::domain::MAX_BALANCE;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, assert_validation_error, on_each_backend};

async fn transfer(app: &TestApp, from: i64, to: i64, amount: i64) -> reqwest::Response {
    app.post(
        "/transfers",
        &json!({"from_acc_id": from, "to_acc_id": to, "amount": amount}),
    )
    .await
}

#[tokio::test]
async fn a_transfer_writes_both_rows_and_moves_both_balances() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(5).await;

        let response = transfer(&app, from, to, 400).await;

        assert_eq!(response.status(), StatusCode::CREATED);
        let receipt: Value = response.json().await.unwrap();
        let sent = &receipt["from_transaction"];
        let received = &receipt["to_transaction"];
        assert_eq!(
            (
                sent["acc_id"].as_i64(),
                sent["debit"].as_i64(),
                sent["balance_after"].as_i64()
            ),
            (Some(from), Some(400), Some(600))
        );
        assert_eq!(
            (
                received["acc_id"].as_i64(),
                received["credit"].as_i64(),
                received["balance_after"].as_i64()
            ),
            (Some(to), Some(400), Some(405))
        );
        assert_eq!((app.balance(from).await, app.balance(to).await), (600, 405));
    })
    .await;
}

#[tokio::test]
async fn a_transfer_beyond_the_balance_changes_nothing() {
    on_each_backend(async |app| {
        let from = app.funded_account(100).await;
        let to = app.funded_account(0).await;
        let rows_before = app.ledger_len().await;

        assert_detail(
            transfer(&app, from, to, 101).await,
            StatusCode::CONFLICT,
            "Insufficient funds",
        )
        .await;
        // The receiver is updated first when its id is lower: its credit must be rolled back too.
        assert_detail(
            transfer(&app, to, from, 1).await,
            StatusCode::CONFLICT,
            "Insufficient funds",
        )
        .await;

        assert_eq!((app.balance(from).await, app.balance(to).await), (100, 0));
        assert_eq!(app.ledger_len().await, rows_before);
    })
    .await;
}

#[tokio::test]
async fn a_transfer_past_the_receivers_balance_limit_changes_nothing() {
    on_each_backend(async |app| {
        let from = app.funded_account(100).await;
        let to = app.create_account().await;
        app.set_balance(to, MAX_BALANCE - 5).await;
        let rows_before = app.ledger_len().await;

        assert_detail(
            transfer(&app, from, to, 6).await,
            StatusCode::CONFLICT,
            "Balance limit exceeded",
        )
        .await;
        // The same refusal when the receiver's row is the first one changed.
        let low = app.create_account().await;
        app.set_balance(low, MAX_BALANCE).await;
        let high = app.funded_account(100).await;
        assert_detail(
            transfer(&app, high, low, 1).await,
            StatusCode::CONFLICT,
            "Balance limit exceeded",
        )
        .await;

        assert_eq!(app.balance(from).await, 100);
        assert_eq!(app.balance(to).await, MAX_BALANCE - 5);
        assert_eq!(app.balance(high).await, 100);
        assert_eq!(app.ledger_len().await, rows_before + 1);
    })
    .await;
}

#[tokio::test]
async fn a_transfer_to_or_from_an_unknown_account_is_404_and_changes_nothing() {
    on_each_backend(async |app| {
        let known = app.funded_account(100).await;
        let rows_before = app.ledger_len().await;

        // One direction debits the known account before finding the other missing; both roll back.
        assert_detail(
            transfer(&app, known, 999, 10).await,
            StatusCode::NOT_FOUND,
            "Account not found",
        )
        .await;
        assert_detail(
            transfer(&app, 999, known, 10).await,
            StatusCode::NOT_FOUND,
            "Account not found",
        )
        .await;
        assert_detail(
            transfer(&app, known, -3, 10).await,
            StatusCode::NOT_FOUND,
            "Account not found",
        )
        .await;

        assert_eq!(app.balance(known).await, 100);
        assert_eq!(app.ledger_len().await, rows_before);
    })
    .await;
}

#[tokio::test]
async fn invalid_transfers_are_422() {
    on_each_backend(async |app| {
        let a = app.funded_account(100).await;
        let b = app.create_account().await;
        let cases = [
            (
                json!({"from_acc_id": a, "to_acc_id": a, "amount": 5}),
                "to_acc_id",
                "same account",
            ),
            (
                json!({"from_acc_id": a, "to_acc_id": b, "amount": 0}),
                "amount",
                "zero",
            ),
            (
                json!({"from_acc_id": a, "to_acc_id": b, "amount": -5}),
                "amount",
                "negative",
            ),
            (
                json!({"from_acc_id": a, "to_acc_id": b, "amount": 2.5}),
                "amount",
                "float",
            ),
            (
                json!({"from_acc_id": a, "to_acc_id": b}),
                "amount",
                "missing",
            ),
        ];
        for (body, field, case) in cases {
            assert_validation_error(app.post("/transfers", &body).await, &["body", field], case)
                .await;
        }
        assert_eq!(app.balance(a).await, 100);
    })
    .await;
}

#[tokio::test]
async fn transfers_are_idempotent_with_a_key() {
    on_each_backend(async |app| {
        let from = app.funded_account(100).await;
        let to = app.create_account().await;
        let body = json!({"from_acc_id": from, "to_acc_id": to, "amount": 60});

        let first: Value = app
            .post_with_key("/transfers", "t-1", &body)
            .await
            .json()
            .await
            .unwrap();
        let retry = app.post_with_key("/transfers", "t-1", &body).await;
        let after_restart = app
            .restart()
            .await
            .post_with_key("/transfers", "t-1", &body)
            .await;

        for replay in [retry, after_restart] {
            assert_eq!(replay.status(), StatusCode::CREATED);
            assert_eq!(replay.headers()["idempotent-replayed"], "true");
            assert_eq!(replay.json::<Value>().await.unwrap(), first);
        }
        assert_eq!((app.balance(from).await, app.balance(to).await), (40, 60));
        let reused = app
            .post_with_key("/transactions", "t-1", &json!({"acc_id": from, "debit": 1}))
            .await;
        assert_validation_error(
            reused,
            &["header", "Idempotency-Key"],
            "key of another route",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn opposite_concurrent_transfers_keep_the_total() {
    on_each_backend(async |app| {
        let a = app.funded_account(500).await;
        let b = app.funded_account(500).await;
        let transfers = (0..20).map(|i| {
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            transfer(&app, from, to, 7)
        });

        let responses = futures_util::future::join_all(transfers).await;

        assert!(responses.iter().all(|r| r.status() == StatusCode::CREATED));
        assert_eq!(app.balance(a).await + app.balance(b).await, 1000);
        assert_eq!(app.balance(a).await, 500);
    })
    .await;
}
