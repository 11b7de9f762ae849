//! Access control: only an account's owner, or an operator, can see it or move its money; public
//! routes need no token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, on_each_backend_with, with_auth};

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
