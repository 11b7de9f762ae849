use bank_core::domain::{MAX_AMOUNT, MAX_BALANCE};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_detail, assert_validation_error, on_each_backend};

#[tokio::test]
async fn credits_and_debits_move_the_balance_and_are_recorded() {
    on_each_backend(async |app| {
        let id = app.create_account().await;

        let credit = app
            .post(
                "/transactions/",
                &json!({"acc_id": id, "credit": 1000, "debit": 0}),
            )
            .await;
        assert_eq!(credit.status(), StatusCode::CREATED);
        let credit: Value = credit.json().await.unwrap();
        let debit = app
            .post(
                "/transactions",
                &json!({"acc_id": id, "credit": 0, "debit": 300}),
            )
            .await;
        assert_eq!(debit.status(), StatusCode::CREATED);
        let debit: Value = debit.json().await.unwrap();

        assert_eq!(
            (
                credit["acc_id"].as_i64(),
                credit["credit"].as_i64(),
                credit["balance_after"].as_i64()
            ),
            (Some(id), Some(1000), Some(1000))
        );
        assert_eq!(
            (debit["debit"].as_i64(), debit["balance_after"].as_i64()),
            (Some(300), Some(700))
        );
        assert_eq!(app.balance(id).await, 700);
        assert_eq!(
            app.get_json(&format!("/transactions/{}", debit["id"]))
                .await,
            debit
        );
        assert_eq!(app.get_json("/transactions").await, json!([credit, debit]));
    })
    .await;
}

#[tokio::test]
async fn a_posting_may_carry_both_sides_and_omitted_sides_are_zero() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let both = app
            .post(
                "/transactions",
                &json!({"acc_id": id, "credit": 50, "debit": 120}),
            )
            .await;
        assert_eq!(both.status(), StatusCode::CREATED);
        let only_credit = app
            .post("/transactions", &json!({"acc_id": id, "credit": 5}))
            .await;
        assert_eq!(only_credit.status(), StatusCode::CREATED);
        assert_eq!(app.balance(id).await, 35);
    })
    .await;
}

#[tokio::test]
async fn an_overdraft_is_refused_and_writes_nothing() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let rows_before = app.ledger_len().await;

        let response = app
            .post(
                "/transactions",
                &json!({"acc_id": id, "credit": 0, "debit": 101}),
            )
            .await;

        assert_detail(response, StatusCode::CONFLICT, "Insufficient funds").await;
        assert_eq!(app.balance(id).await, 100);
        assert_eq!(app.ledger_len().await, rows_before);
    })
    .await;
}

#[tokio::test]
async fn a_credit_past_the_balance_limit_is_refused() {
    on_each_backend(async |app| {
        let id = app.create_account().await;
        app.set_balance(id, MAX_BALANCE).await;

        let response = app
            .post("/transactions", &json!({"acc_id": id, "credit": 1}))
            .await;

        assert_detail(response, StatusCode::CONFLICT, "Balance limit exceeded").await;
        assert_eq!(app.balance(id).await, MAX_BALANCE);
    })
    .await;
}

#[tokio::test]
async fn amounts_must_be_integers_in_range_without_coercion() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let rows_before = app.ledger_len().await;
        let cases = [
            (json!({"acc_id": id, "credit": 1.9}), "credit", "float"),
            (json!({"acc_id": id, "credit": "10"}), "credit", "string"),
            (json!({"acc_id": id, "credit": true}), "credit", "bool"),
            (json!({"acc_id": id, "credit": null}), "credit", "null"),
            (json!({"acc_id": id, "debit": -5}), "debit", "negative"),
            (
                json!({"acc_id": id, "credit": MAX_AMOUNT + 1}),
                "credit",
                "above the maximum",
            ),
            (
                json!({"acc_id": id, "credit": u64::MAX}),
                "credit",
                "beyond i64",
            ),
            (
                json!({"acc_id": id, "credit": 1e300}),
                "credit",
                "huge float",
            ),
            (json!({"acc_id": "1", "credit": 5}), "acc_id", "string id"),
            (json!({"credit": 5}), "acc_id", "missing account"),
        ];
        for (body, field, case) in cases {
            let response = app.post("/transactions", &body).await;
            assert_validation_error(response, &["body", field], case).await;
        }
        let nothing = app
            .post(
                "/transactions",
                &json!({"acc_id": id, "credit": 0, "debit": 0}),
            )
            .await;
        assert_validation_error(nothing, &["body"], "both zero").await;
        assert_eq!(app.ledger_len().await, rows_before, "nothing was written");
        assert_eq!(app.balance(id).await, 100);
    })
    .await;
}

#[tokio::test]
async fn a_posting_to_an_unknown_account_is_404() {
    on_each_backend(async |app| {
        for acc_id in [999_i64, 2_147_483_648, -1, i64::MAX] {
            let response = app
                .post("/transactions", &json!({"acc_id": acc_id, "credit": 5}))
                .await;
            assert_detail(response, StatusCode::NOT_FOUND, "Account not found").await;
        }
        assert_eq!(app.ledger_len().await, 0);
    })
    .await;
}

#[tokio::test]
async fn unknown_transaction_ids_are_404_and_bad_ones_422() {
    on_each_backend(async |app| {
        assert_detail(
            app.get("/transactions/42").await,
            StatusCode::NOT_FOUND,
            "Transaction not found",
        )
        .await;
        let response = app.get("/transactions/forty-two").await;
        assert_validation_error(response, &["path", "transaction_id"], "word id").await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_debits_through_two_servers_never_overdraw() {
    on_each_backend(async |app| {
        let other_server = app.restart().await;
        let id = app.funded_account(100).await;
        let debit = json!({"acc_id": id, "debit": 10});
        let servers = [&app, &other_server];
        let debits = (0..25).map(|i| servers[i % 2].post("/transactions", &debit));

        let statuses: Vec<StatusCode> = join_all(debits).await.iter().map(|r| r.status()).collect();

        let accepted = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((accepted, refused), (10, 15), "{statuses:?}");
        assert_eq!(app.balance(id).await, 0);
        let history = app.get_json(&format!("/accounts/{id}/transactions")).await;
        assert_eq!(history.as_array().unwrap().len(), 11);
    })
    .await;
}

#[tokio::test]
async fn whole_numbers_written_with_a_fraction_or_exponent_are_integers() {
    on_each_backend(async |app| {
        let id = app.create_account().await;
        let raw = |path: &'static str, body: String| {
            app.request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let accepted = [
            (format!(r#"{{"acc_id": {id}.0, "credit": 2500.0}}"#), 2500),
            (format!(r#"{{"acc_id": {id}, "credit": 1e3}}"#), 3500),
            (format!(r#"{{"acc_id": {id}, "debit": 5.00E1}}"#), 3450),
        ];
        for (body, balance) in accepted {
            let response = raw("/transactions", body.clone()).await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED, "{body}");
            assert_eq!(app.balance(id).await, balance, "{body}");
        }
        let other = app.create_account().await;
        let transfer = format!(r#"{{"from_acc_id": {id}, "to_acc_id": {other}, "amount": 4.5e1}}"#);
        let response = raw("/transfers", transfer).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(app.balance(other).await, 45);

        for amount in ["2500.5", "1000000000000.0000001", "1e-3"] {
            let body = format!(r#"{{"acc_id": {id}, "credit": {amount}}}"#);
            let response = raw("/transactions", body).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{amount}"
            );
            let error: Value = response.json().await.unwrap();
            assert_eq!(
                error["detail"][0]["loc"],
                json!(["body", "credit"]),
                "{amount}"
            );
            assert_eq!(error["detail"][0]["type"], "int_from_float", "{amount}");
        }
        assert_eq!(app.balance(id).await, 3405);
    })
    .await;
}

/// What makes "503 means not done" true: after a lost connection, a write is settled by its id.
/// A stored write is found with its rows; an unknown one is fenced off, and the id can then never
/// be stored by a write, so the 503 given for it stays true.
#[tokio::test]
async fn a_write_is_settled_as_applied_or_fenced_off_for_good() {
    use bank_core::ledger::{self, Settled};
    use entity::ledger_write;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    on_each_backend(async |app| {
        let account = app.funded_account(100).await;
        let within = std::time::Duration::from_secs(5);
        let posted = app
            .post("/transactions", &json!({"acc_id": account, "credit": 5}))
            .await;
        let row: Value = posted.json().await.unwrap();
        let stored = ledger_write::Entity::find()
            .filter(ledger_write::Column::FirstTransactionId.eq(row["id"].as_i64()))
            .one(&app.db)
            .await
            .unwrap()
            .expect("the write's id is stored with its row");
        let settled: Option<Settled> = ledger::settle(&app.db, stored.write_id, within).await;
        let Some(Settled::Applied(rows)) = settled else {
            panic!("a stored write settles as applied");
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, row["id"].as_i64().unwrap());

        let lost = uuid::Uuid::new_v4();
        let settled: Option<Settled> = ledger::settle(&app.db, lost, within).await;
        assert!(matches!(settled, Some(Settled::NotApplied)));
        let late = ledger_write::Entity::insert(ledger_write::ActiveModel {
            write_id: sea_orm::Set(lost),
            first_transaction_id: sea_orm::Set(Some(row["id"].as_i64().unwrap())),
            second_transaction_id: sea_orm::Set(None),
            hold_id: sea_orm::Set(None),
            traceparent: sea_orm::Set(None),
            created_at: sea_orm::Set(chrono::Utc::now()),
        })
        .exec(&app.db)
        .await;
        assert!(late.is_err(), "a fenced id can never be stored by a write");
        assert_eq!(app.balance(account).await, 105);
    })
    .await;
}

/// Without `limit`, a list is a page of 100 rows, and says where the next page starts.
#[tokio::test]
async fn a_list_without_a_limit_is_a_page_of_100() {
    on_each_backend(async |app| {
        let id = app.create_account().await;
        for credit in 1..=101 {
            let posted = app
                .post("/transactions", &json!({"acc_id": id, "credit": credit}))
                .await;
            assert_eq!(posted.status(), StatusCode::CREATED);
        }

        for path in [
            "/transactions".to_owned(),
            format!("/accounts/{id}/transactions"),
        ] {
            let page = app.get(&path).await;
            let link = page.headers()["link"].to_str().unwrap().to_owned();
            let rows: Vec<Value> = page.json().await.unwrap();
            assert_eq!(rows.len(), 100, "{path}");
            let last = rows[99]["id"].as_i64().unwrap();
            assert_eq!(
                link,
                format!("<{path}?after_id={last}&limit=100>; rel=\"next\"")
            );
            let rest = app.get_json(&format!("{path}?after_id={last}")).await;
            assert_eq!(rest.as_array().unwrap().len(), 1, "{path}");
        }
    })
    .await;
}
