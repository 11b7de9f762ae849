//! A write that Postgres rolls back for a conflict with another transaction (here, as a
//! deadlock's victim) was not applied, so the ledger tries it once more; a second conflict is
//! answered 503, "not applied", never a 500 that asks the client to settle what is settled.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, postgres_settings};

/// Runs `write`, which locks the accounts `first` < `second` in id order, while another client
/// of the database makes it a deadlock's victim `times` times (1 or 2), and returns its answer.
/// That client locks `second`, waits until the write holds `first` and waits for `second`, then
/// asks for `first`. It looks for deadlocks after 60 s and the server's sessions after 1 s
/// (Postgres's default), so the server's transaction is the one Postgres ends.
async fn deadlocked(
    app: &TestApp,
    (first, second): (i64, i64),
    times: usize,
    write: impl Future<Output = Response>,
) -> Response {
    let db = sea_orm::Database::connect(&app.settings.database_url)
        .await
        .unwrap();
    let deadlocks_before = number(&db, DEADLOCKS).await;
    let other = db.begin().await.unwrap();
    other
        .execute_unprepared("SET LOCAL deadlock_timeout = '60s'")
        .await
        .unwrap();
    lock(&other, second).await.unwrap();
    // The write waits for `second` when it waits for this transaction itself; for `first`, held
    // in a savepoint, it waits for the savepoint's own id.
    let xid = number(
        &other,
        "SELECT (pg_current_xact_id()::text::numeric % 4294967296)::int8",
    )
    .await;
    let waits_for_second = format!(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' \
         AND transactionid::text::int8 = {xid}"
    );
    let answered = AtomicBool::new(false);
    let write = async {
        let response = write.await;
        answered.store(true, Ordering::SeqCst);
        response
    };
    let waits_or_answered = async || {
        for _ in 0..500 {
            if answered.load(Ordering::SeqCst) || number(&db, &waits_for_second).await == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the write waits for `second`, or is answered, within 5 s");
    };
    let (response, ()) = tokio::join!(write, async {
        waits_or_answered().await;
        if times == 1 {
            // Postgres ends the write's first try after 1 s, and this takes `first`. Should the
            // second try take `first` before this does, this gives up at 1.5 s, before Postgres
            // would end the second try too, and the second try goes on.
            other
                .execute_unprepared("SET LOCAL lock_timeout = '1500ms'")
                .await
                .unwrap();
            let _ = lock(&other, first).await;
        } else {
            other.execute_unprepared("SAVEPOINT s").await.unwrap();
            // Returns after the first deadlock; or after the second, when the write's second
            // try took `first` before this did.
            lock(&other, first).await.unwrap();
            other
                .execute_unprepared("ROLLBACK TO SAVEPOINT s")
                .await
                .unwrap();
            waits_or_answered().await;
            if !answered.load(Ordering::SeqCst) {
                lock(&other, first).await.unwrap();
            }
        }
        other.rollback().await.unwrap();
    });
    // The victim's session counts its deadlock when it next reports its statistics.
    let mut deadlocks = 0;
    for _ in 0..100 {
        deadlocks = number(&db, DEADLOCKS).await - deadlocks_before;
        if deadlocks >= i64::try_from(times).unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deadlocks, i64::try_from(times).unwrap(), "deadlocks");
    response
}

const DEADLOCKS: &str = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";

async fn lock(txn: &DatabaseTransaction, account: i64) -> Result<(), DbErr> {
    txn.execute_unprepared(&format!(
        "SELECT 1 FROM accounts WHERE id = {account} FOR UPDATE"
    ))
    .await
    .map(drop)
}

async fn number(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        sql,
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

async fn accounts(app: &TestApp) -> (i64, i64) {
    (app.funded_account(100).await, app.funded_account(0).await)
}

fn transfer(from: i64, to: i64) -> Value {
    json!({"from_acc_id": from, "to_acc_id": to, "amount": 10})
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_transfer_ended_by_a_deadlock_is_tried_again_and_applied_once() {
    let app = TestApp::spawn(postgres_settings().await).await;
    let (a, b) = accounts(&app).await;
    let rows = app.ledger_len().await;

    let sent = deadlocked(&app, (a, b), 1, app.post("/transfers", &transfer(a, b))).await;

    assert_eq!(sent.status(), StatusCode::CREATED);
    assert_eq!((app.balance(a).await, app.balance(b).await), (90, 10));
    assert_eq!(app.ledger_len().await, rows + 2, "applied once");
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_transfer_ended_by_a_deadlock_twice_is_answered_503_and_not_applied() {
    let app = TestApp::spawn(postgres_settings().await).await;
    let (a, b) = accounts(&app).await;
    let rows = app.ledger_len().await;

    let sent = deadlocked(&app, (a, b), 2, app.post("/transfers", &transfer(a, b))).await;

    assert_detail(
        sent,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service temporarily unavailable",
    )
    .await;
    assert_eq!((app.balance(a).await, app.balance(b).await), (100, 0));
    assert_eq!(app.ledger_len().await, rows, "nothing was written");
    let again = app.post("/transfers", &transfer(a, b)).await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "the retry the 503 asks for"
    );
}

/// Holds and atomic batches run in transactions of their own, outside the groups.
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn a_hold_and_an_atomic_batch_ended_by_a_deadlock_are_tried_again() {
    let app = TestApp::spawn(postgres_settings().await).await;
    let (a, b) = accounts(&app).await;
    let hold = json!({"from_acc_id": a, "to_acc_id": b, "amount": 30});

    let placed = deadlocked(&app, (a, b), 1, app.post("/holds", &hold)).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let account = app.get_json(&format!("/accounts/{a}")).await;
    assert_eq!(account["available"], 70, "{account}");

    let mut item = transfer(a, b);
    item["kind"] = json!("transfer");
    let batch = json!({"atomic": true, "items": [item]});
    let sent = deadlocked(&app, (a, b), 1, app.post("/batches", &batch)).await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    assert_eq!((app.balance(a).await, app.balance(b).await), (90, 10));
}
