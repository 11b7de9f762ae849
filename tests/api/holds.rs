//! Holds: money reserved now, captured or voided once, or released when it expires; what may be
//! spent is the balance less what is held.

use bank_core::domain::MAX_HOLD_SECONDS;
use entity::hold;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR, TestApp, assert_detail, assert_validation_error, on_each_backend, postgres_settings,
    sample,
};

async fn place(app: &TestApp, from: i64, to: i64, amount: i64) -> reqwest::Response {
    app.post(
        "/holds",
        &json!({"from_acc_id": from, "to_acc_id": to, "amount": amount}),
    )
    .await
}

async fn placed(app: &TestApp, from: i64, to: i64, amount: i64) -> i64 {
    let response = place(app, from, to, amount).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn capture(app: &TestApp, hold: i64, body: Value) -> reqwest::Response {
    app.post(&format!("/holds/{hold}/capture"), &body).await
}

async fn void(app: &TestApp, hold: i64) -> reqwest::Response {
    app.post(&format!("/holds/{hold}/void"), &json!({})).await
}

/// (balance, available) of an account, the same from the account and from its balance.
async fn funds(app: &TestApp, account: i64) -> (i64, i64) {
    let read = |body: Value| {
        (
            body["balance"].as_i64().unwrap(),
            body["available"].as_i64().unwrap(),
        )
    };
    let funds = read(app.get_json(&format!("/accounts/{account}")).await);
    let balance = read(app.get_json(&format!("/accounts/{account}/balance")).await);
    assert_eq!(
        funds, balance,
        "GET /accounts/{account} and its /balance agree"
    );
    funds
}

#[tokio::test]
async fn a_hold_lowers_what_may_be_spent_and_a_partial_capture_moves_part_and_releases_the_rest() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;

        let response = place(&app, from, to, 600).await;

        assert_eq!(response.status(), StatusCode::CREATED);
        let hold: Value = response.json().await.unwrap();
        assert_eq!(
            (&hold["status"], &hold["amount"], &hold["captured"]),
            (&json!("pending"), &json!(600), &Value::Null)
        );
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(hold[field].as_str().unwrap()).unwrap()
        };
        let lasts = at("expires_at") - at("created_at");
        assert_eq!(lasts.num_seconds(), 3600, "an hour unless the client says");
        assert_eq!(funds(&app, from).await, (1000, 400));
        // The sweeper reads what is held, each second.
        let mut held = None;
        for _ in 0..50 {
            held = sample(&app.metrics().await, "bank_held_minor_units", &[]);
            if held == Some(600.0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(held, Some(600.0));
        let pending = sample(&app.metrics().await, "bank_holds_pending", &[]);
        assert_eq!(pending, Some(1.0));
        let id = hold["id"].as_i64().unwrap();
        assert_eq!(app.get_json(&format!("/holds/{id}")).await, hold);

        let captured = capture(&app, id, json!({"amount": 250})).await;

        assert_eq!(captured.status(), StatusCode::OK);
        let captured: Value = captured.json().await.unwrap();
        assert_eq!(
            (&captured["status"], &captured["captured"]),
            (&json!("captured"), &json!(250))
        );
        assert!(captured["resolved_at"].is_string(), "{captured}");
        assert_eq!(funds(&app, from).await, (750, 750), "the rest is released");
        assert_eq!(funds(&app, to).await, (250, 250));
        let rows = |account: i64| {
            let app = &app;
            async move {
                app.get_json(&format!("/accounts/{account}/transactions"))
                    .await
                    .as_array()
                    .unwrap()
                    .last()
                    .cloned()
                    .unwrap()
            }
        };
        let debit = rows(from).await;
        let credit = rows(to).await;
        assert_eq!(
            (&debit["debit"], &debit["balance_after"]),
            (&json!(250), &json!(750))
        );
        assert_eq!(
            (&credit["credit"], &credit["balance_after"]),
            (&json!(250), &json!(250))
        );
        let metrics = app.metrics().await;
        for event in ["placed", "captured"] {
            assert_eq!(
                sample(&metrics, "bank_holds_total", &[("event", event)]),
                Some(1.0)
            );
        }
    })
    .await;
}

/// Postings, transfers and other holds are judged on what may be spent, so money held cannot be
/// spent twice; voiding gives it back.
#[tokio::test]
async fn money_held_cannot_be_spent_until_the_hold_is_voided() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;
        let hold = placed(&app, from, to, 600).await;

        let refused = [
            app.post("/transactions", &json!({"acc_id": from, "debit": 401}))
                .await,
            app.post(
                "/transfers",
                &json!({"from_acc_id": from, "to_acc_id": to, "amount": 401}),
            )
            .await,
            place(&app, from, to, 401).await,
        ];
        for response in refused {
            assert_detail(response, StatusCode::CONFLICT, "Insufficient funds").await;
        }
        assert_eq!(funds(&app, from).await, (1000, 400));

        let voided = void(&app, hold).await;
        assert_eq!(voided.status(), StatusCode::OK);
        assert_eq!(voided.json::<Value>().await.unwrap()["status"], "voided");
        assert_eq!(funds(&app, from).await, (1000, 1000));
        let spent = app
            .post("/transactions", &json!({"acc_id": from, "debit": 1000}))
            .await;
        assert_eq!(spent.status(), StatusCode::CREATED);
        assert_eq!(funds(&app, to).await, (0, 0), "a void moves nothing");
    })
    .await;
}

#[tokio::test]
async fn a_hold_resolves_once_and_never_for_more_than_it_holds() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;
        let captured = placed(&app, from, to, 100).await;
        let voided = placed(&app, from, to, 100).await;
        let open = placed(&app, from, to, 100).await;
        assert_eq!(
            capture(&app, captured, json!({})).await.status(),
            StatusCode::OK
        );
        assert_eq!(void(&app, voided).await.status(), StatusCode::OK);

        let cases = [
            (
                capture(&app, captured, json!({})).await,
                "Hold already captured",
            ),
            (void(&app, captured).await, "Hold already captured"),
            (
                capture(&app, voided, json!({})).await,
                "Hold already voided",
            ),
            (void(&app, voided).await, "Hold already voided"),
            (
                capture(&app, open, json!({"amount": 101})).await,
                "Capture exceeds the hold",
            ),
        ];
        for (response, detail) in cases {
            assert_detail(response, StatusCode::CONFLICT, detail).await;
        }
        for missing in [
            capture(&app, i64::MAX, json!({})).await,
            void(&app, i64::MAX).await,
            app.get(&format!("/holds/{}", i64::MAX)).await,
        ] {
            assert_detail(missing, StatusCode::NOT_FOUND, "Hold not found").await;
        }
        assert_eq!(
            funds(&app, from).await,
            (900, 800),
            "one captured, one pending"
        );
        assert_eq!(funds(&app, to).await, (100, 100));
    })
    .await;
}

/// Captures and voids of the same holds, sent at once: each hold has exactly one winner, the
/// loser is told 409, and the money matches the winners.
#[tokio::test]
async fn a_racing_capture_and_void_have_exactly_one_winner() {
    on_each_backend(async |app| {
        const HOLDS: i64 = 10;
        let from = app.funded_account(HOLDS * 100).await;
        let to = app.funded_account(0).await;
        let mut holds = Vec::new();
        for _ in 0..HOLDS {
            holds.push(placed(&app, from, to, 100).await);
        }

        let races = holds.iter().map(|&hold| {
            futures_util::future::join(capture(&app, hold, json!({})), void(&app, hold))
        });
        let outcomes = futures_util::future::join_all(races).await;

        let mut captured = 0;
        for (capture, void) in outcomes {
            let statuses = (capture.status(), void.status());
            match statuses {
                (StatusCode::OK, StatusCode::CONFLICT) => captured += 1,
                (StatusCode::CONFLICT, StatusCode::OK) => {}
                other => panic!("one winner per hold, got {other:?}"),
            }
        }
        assert_eq!(funds(&app, to).await, (captured * 100, captured * 100));
        let left = HOLDS * 100 - captured * 100;
        assert_eq!(funds(&app, from).await, (left, left));
    })
    .await;
}

/// A hold past its expiry cannot be captured or voided, whether or not the sweeper has released
/// it yet; the sweeper then releases it by itself.
#[tokio::test]
async fn an_expired_hold_is_refused_at_once_and_released_by_the_sweeper() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;
        let hold = placed(&app, from, to, 600).await;
        hold::ActiveModel {
            id: Set(hold),
            expires_at: Set(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
            ..Default::default()
        }
        .update(&app.db)
        .await
        .unwrap();

        assert_detail(
            capture(&app, hold, json!({})).await,
            StatusCode::CONFLICT,
            "Hold expired",
        )
        .await;
        assert_detail(void(&app, hold).await, StatusCode::CONFLICT, "Hold expired").await;

        let mut expired = Value::Null;
        for _ in 0..50 {
            expired = app.get_json(&format!("/holds/{hold}")).await;
            if expired["status"] == "expired" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(expired["status"], "expired", "{expired}");
        assert!(expired["resolved_at"].is_string(), "{expired}");
        assert_eq!(funds(&app, from).await, (1000, 1000));
        assert_eq!(
            sample(
                &app.metrics().await,
                "bank_holds_total",
                &[("event", "expired")]
            ),
            Some(1.0)
        );
    })
    .await;
}

#[tokio::test]
async fn holds_refuse_bad_input_with_the_field_that_is_wrong() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;
        let hold = placed(&app, from, to, 100).await;
        let new = |amount: i64, to: i64, expiry: i64| {
            json!({"from_acc_id": from, "to_acc_id": to, "amount": amount, "expires_in_seconds": expiry})
        };
        let cases = [
            ("/holds".to_owned(), new(0, to, 60), "amount", "nothing held"),
            ("/holds".to_owned(), new(-5, to, 60), "amount", "a negative hold"),
            ("/holds".to_owned(), new(5, from, 60), "to_acc_id", "a hold on itself"),
            ("/holds".to_owned(), new(5, to, 0), "expires_in_seconds", "no time"),
            (
                "/holds".to_owned(),
                new(5, to, MAX_HOLD_SECONDS + 1),
                "expires_in_seconds",
                "beyond seven days",
            ),
            (
                format!("/holds/{hold}/capture"),
                json!({"amount": 0}),
                "amount",
                "a capture of nothing",
            ),
        ];
        for (path, body, field, case) in cases {
            assert_validation_error(app.post(&path, &body).await, &["body", field], case).await;
        }
        assert_eq!(funds(&app, from).await, (1000, 900), "nothing else was held");
    })
    .await;
}

#[tokio::test]
async fn hold_writes_are_idempotent_with_a_key() {
    on_each_backend(async |app| {
        let from = app.funded_account(1000).await;
        let to = app.funded_account(0).await;
        let body = json!({"from_acc_id": from, "to_acc_id": to, "amount": 300});

        let first = app.post_with_key("/holds", "hold-1", &body).await;
        let again = app.post_with_key("/holds", "hold-1", &body).await;

        assert_eq!(first.status(), StatusCode::CREATED);
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let hold = first.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        assert_eq!(again.json::<Value>().await.unwrap()["id"], hold);
        assert_eq!(funds(&app, from).await, (1000, 700), "held once");

        let path = format!("/holds/{hold}/capture");
        let captured = app.post_with_key(&path, "capture-1", &json!({})).await;
        let replayed = app.post_with_key(&path, "capture-1", &json!({})).await;
        assert_eq!(captured.status(), StatusCode::OK);
        assert_eq!(replayed.status(), StatusCode::OK);
        assert_eq!(replayed.headers()["idempotent-replayed"], "true");
        assert_eq!(funds(&app, to).await, (300, 300), "moved once");
        let later = app.post_with_key("/holds", "hold-1", &body).await;
        let later: Value = later.json().await.unwrap();
        assert_eq!(
            (&later["id"], &later["status"]),
            (&json!(hold), &json!("captured")),
            "a replay answers the hold as it stands now"
        );
        let other = app
            .post_with_key(&path, "capture-1", &json!({"amount": 1}))
            .await;
        assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let void_key = app.post_with_key("/holds", "capture-1", &body).await;
        assert_eq!(
            void_key.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "a key names one request"
        );
    })
    .await;
}

/// A customer sees and resolves only the holds on their own accounts; the receiver of a hold
/// cannot capture it for themselves.
#[tokio::test]
async fn only_the_sources_owner_sees_and_resolves_a_hold() {
    on_each_backend(async |app| {
        let alice = app.customer("alice").await;
        let bob = app.customer("bob").await;
        let alices = alice.funded_account(500).await;
        let bobs = bob.funded_account(0).await;
        let response = alice
            .post(
                "/holds",
                &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 200}),
            )
            .await;
        let hold = response.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();

        for response in [
            bob.get(&format!("/holds/{hold}")).await,
            bob.post(&format!("/holds/{hold}/capture"), &json!({}))
                .await,
            bob.post(&format!("/holds/{hold}/void"), &json!({})).await,
        ] {
            assert_detail(response, StatusCode::NOT_FOUND, "Hold not found").await;
        }
        assert_eq!(bob.get_json("/holds").await, json!([]));
        assert_eq!(alice.get_json("/holds").await.as_array().unwrap().len(), 1);
        let operator = app.operator().await;
        assert_eq!(
            operator.get_json("/holds").await.as_array().unwrap().len(),
            1
        );
        let captured = alice
            .post(&format!("/holds/{hold}/capture"), &json!({}))
            .await;
        assert_eq!(captured.status(), StatusCode::OK);
        assert_eq!(
            bob.get_json(&format!("/accounts/{bobs}")).await["balance"],
            200
        );
    })
    .await;
}

/// A group of postings locks its accounts, in id order, before it claims their keys. A hold sent
/// with a key must wait for its accounts before it claims the key too, or the two would wait for
/// each other until Postgres ended one of them as deadlocked.
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_hold_waits_for_its_accounts_before_it_claims_its_key() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn(postgres_settings().await).await;
    let (from, to) = (app.funded_account(100).await, app.create_account().await);
    let operator = app.user_id(OPERATOR.0).await;

    // What a group does: its accounts locked first, then its key claimed.
    let group = app.db.begin().await.unwrap();
    group
        .execute_unprepared(&format!(
            "SELECT 1 FROM accounts WHERE id = {from} FOR UPDATE"
        ))
        .await
        .unwrap();
    let hold = json!({"from_acc_id": from, "to_acc_id": to, "amount": 10});
    let (placed, claimed) = tokio::join!(app.post_with_key("/holds", "shared", &hold), async {
        for _ in 0..100 {
            let waiting = app
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            if waiting == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let claimed = group
            .execute_unprepared(&format!(
                "SET LOCAL statement_timeout = '5s'; \
                 INSERT INTO idempotency_keys (owner_id, key, fingerprint, response_body, created_at) \
                 VALUES ({operator}, 'shared', 'a group', '', now())"
            ))
            .await;
        group.rollback().await.unwrap();
        claimed
    });
    claimed.expect("the group claims the key while the hold waits for the account");
    assert_eq!(placed.status(), StatusCode::CREATED);
}
