//! `Idempotency-Key`: a retry replays and writes nothing, a key is per user, and a key stored
//! before keys were per user still replays to its own request and nothing else.

use bank_api::routes::transactions::NewTransaction;
use entity::idempotency_key;
use futures_util::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_validation_error, on_each_backend};

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_replays_and_writes_nothing() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let body = json!({"acc_id": id, "debit": 30});

        let first = app.post_with_key("/transactions", "retry-1", &body).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first: Value = first.json().await.unwrap();
        let retry = app.post_with_key("/transactions", "retry-1", &body).await;

        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
        assert_eq!(app.balance(id).await, 70);
        let restarted = app.restart().await;
        let after_restart = restarted
            .post_with_key("/transactions", "retry-1", &body)
            .await;
        assert_eq!(
            after_restart.json::<Value>().await.unwrap(),
            first,
            "keys survive restarts"
        );
        assert_eq!(app.balance(id).await, 70);
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_422() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        let first = app
            .post_with_key("/transactions", "k", &json!({"acc_id": id, "debit": 30}))
            .await;
        assert_eq!(first.status(), StatusCode::CREATED);

        let other = app
            .post_with_key("/transactions", "k", &json!({"acc_id": id, "debit": 31}))
            .await;

        assert_validation_error(other, &["header", "Idempotency-Key"], "reused key").await;
        assert_eq!(app.balance(id).await, 70);
    })
    .await;
}

#[tokio::test]
async fn malformed_idempotency_keys_are_422() {
    on_each_backend(async |app| {
        let id = app.funded_account(100).await;
        for key in ["x".repeat(256), "has space".into(), String::new()] {
            let response = app
                .post_with_key("/transactions", &key, &json!({"acc_id": id, "debit": 1}))
                .await;
            assert_validation_error(response, &["header", "Idempotency-Key"], &key).await;
        }
        assert_eq!(app.balance(id).await, 100);
    })
    .await;
}

#[tokio::test]
async fn a_failed_write_does_not_burn_its_idempotency_key() {
    on_each_backend(async |app| {
        let id = app.funded_account(10).await;
        let body = json!({"acc_id": id, "debit": 50});
        let refused = app.post_with_key("/transactions", "later", &body).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);

        app.post("/transactions", &json!({"acc_id": id, "credit": 40}))
            .await;
        let retried = app.post_with_key("/transactions", "later", &body).await;

        assert_eq!(retried.status(), StatusCode::CREATED);
        assert_eq!(app.balance(id).await, 0);
    })
    .await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_through_two_servers_apply_once() {
    on_each_backend(async |app| {
        let other_server = app.restart().await;
        let id = app.funded_account(1000).await;
        let body = json!({"acc_id": id, "debit": 10});
        let servers = [&app, &other_server];
        let attempts =
            (0..10).map(|i| servers[i % 2].post_with_key("/transactions", "same", &body));

        let responses = join_all(attempts).await;

        assert!(responses.iter().all(|r| r.status() == StatusCode::CREATED));
        assert_eq!(app.balance(id).await, 990);
    })
    .await;
}

/// JSON Schema and pydantic count `2500.0` and `1e3` as integers, so the API does too; a number
/// with any fractional part stays a 422, however small the fraction.
/// How a stored key identifies its request: the route, then the body as the server read it.
fn fingerprint(route: &str, body: &[u8]) -> String {
    Sha256::new()
        .chain_update(route)
        .chain_update(body)
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Alice's key is hers: Bob sending the same key on his own account is applied as his own write,
/// with no refusal and nothing of hers replayed, and each one's retry replays their own answer.
#[tokio::test]
async fn one_users_idempotency_key_never_touches_anothers() {
    on_each_backend(async |app| {
        let alice = app.customer("alice").await;
        let bob = app.customer("bob").await;
        let alices = alice.funded_account(100).await;
        let bobs = bob.funded_account(100).await;
        let key = "the-same-key";
        let post = async |session: &crate::helpers::Session<'_>, body: &Value| {
            session.post_with_key("/transactions", key, body).await
        };
        let alices_body = json!({"acc_id": alices, "debit": 10});
        let bobs_body = json!({"acc_id": bobs, "debit": 20});

        let hers = post(&alice, &alices_body).await;
        let his = post(&bob, &bobs_body).await;

        assert_eq!(hers.status(), StatusCode::CREATED);
        assert_eq!(his.status(), StatusCode::CREATED, "not refused");
        assert!(
            his.headers().get("idempotent-replayed").is_none(),
            "not replayed"
        );
        let hers: Value = hers.json().await.unwrap();
        let his: Value = his.json().await.unwrap();
        assert_eq!(
            (hers["acc_id"].as_i64(), his["acc_id"].as_i64()),
            (Some(alices), Some(bobs))
        );
        for (session, body, first) in [(&alice, &alices_body, &hers), (&bob, &bobs_body, &his)] {
            let retry = post(session, body).await;
            assert_eq!(retry.headers()["idempotent-replayed"], "true");
            assert_eq!(&retry.json::<Value>().await.unwrap(), first);
        }
        assert_eq!(
            alice.get_json(&format!("/accounts/{alices}/balance")).await["balance"],
            90
        );
        assert_eq!(
            bob.get_json(&format!("/accounts/{bobs}/balance")).await["balance"],
            80
        );
    })
    .await;
}

/// Keys stored before keys were per user have no owner. A retry that matches one exactly (its
/// fingerprint named the user) is still answered from it, so a retry sent across the upgrade
/// applies once; anyone else's request with that key is new, and learns nothing.
#[tokio::test]
async fn a_key_stored_before_keys_were_per_user_replays_only_its_own_request() {
    on_each_backend(async |app| {
        let alice = app.customer("alice").await;
        let bob = app.customer("bob").await;
        let alices = alice.funded_account(100).await;
        let bobs = bob.funded_account(100).await;
        let first = alice
            .post("/transactions", &json!({"acc_id": alices, "debit": 10}))
            .await;
        let first: Value = first.json().await.unwrap();
        let alices_id = app.user_id("alice").await;
        let sent = NewTransaction {
            acc_id: alices,
            credit: 0,
            debit: 10,
        };
        // How the key was fingerprinted then: the route named the user.
        let route = format!("POST /transactions by user {alices_id}");
        let fingerprint = fingerprint(&route, &serde_json::to_vec(&sent).unwrap());
        idempotency_key::ActiveModel {
            owner_id: Set(-1),
            key: Set("sent-before-the-upgrade".into()),
            fingerprint: Set(fingerprint),
            response_body: Set(first.to_string()),
            created_at: Set(chrono::Utc::now()),
            write_id: Set(None),
        }
        .insert(&app.db)
        .await
        .unwrap();
        let with_key = async |session: &crate::helpers::Session<'_>, body: Value| {
            session
                .post_with_key("/transactions", "sent-before-the-upgrade", &body)
                .await
        };

        let retry = with_key(&alice, json!({"acc_id": alices, "debit": 10})).await;
        let others = with_key(&bob, json!({"acc_id": bobs, "debit": 10})).await;

        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
        assert_eq!(others.status(), StatusCode::CREATED);
        assert!(others.headers().get("idempotent-replayed").is_none());
        assert_eq!(others.json::<Value>().await.unwrap()["acc_id"], bobs);
        assert_eq!(
            alice.get_json(&format!("/accounts/{alices}/balance")).await["balance"],
            90
        );
        assert_eq!(
            bob.get_json(&format!("/accounts/{bobs}/balance")).await["balance"],
            90
        );
    })
    .await;
}

/// The migration that made keys per user keeps the keys stored before it: a retry sent across
/// the upgrade is answered from the key stored before it, exactly once.
#[tokio::test]
async fn keys_stored_before_the_upgrade_survive_it() {
    let mut databases = vec![crate::common::sqlite_database()];
    if let Ok(server) = std::env::var("TEST_DATABASE_URL") {
        databases.push(crate::helpers::postgres_database(&server).await);
    }
    for database in databases {
        upgrade_with_a_stored_key(database).await;
    }
}

async fn upgrade_with_a_stored_key(database_url: String) {
    use migration::{Migrator, MigratorTrait};
    let mut settings = bank_api::config::Settings {
        database_url,
        ..crate::helpers::test_settings()
    };
    let before = sea_orm::Database::connect(&settings.database_url)
        .await
        .unwrap();
    let per_user = Migrator::migrations()
        .iter()
        .position(|migration| migration.name().ends_with("idempotency_keys_per_user"))
        .expect("the migration that made keys per user") as u32;
    Migrator::up(&before, Some(per_user)).await.unwrap();
    let stored = json!({"id": 1, "acc_id": 1, "credit": 5, "debit": 0, "balance_after": 5,
                        "created_at": "2026-11-30T10:00:00Z"});
    let fingerprint = fingerprint(
        "POST /transactions",
        br#"{"acc_id":1,"credit":5,"debit":0}"#,
    );
    before
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            before.get_database_backend(),
            match before.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO idempotency_keys (key, fingerprint, response_body, created_at) \
                     VALUES ($1, $2, $3, now())"
                }
                _ => {
                    "INSERT INTO idempotency_keys (key, fingerprint, response_body, created_at) \
                     VALUES (?, ?, ?, CURRENT_TIMESTAMP)"
                }
            },
            [
                "old-key".into(),
                fingerprint.into(),
                stored.to_string().into(),
            ],
        ))
        .await
        .unwrap();
    before.close().await.unwrap();

    settings.auth_required = false;
    let app = crate::helpers::TestApp::spawn(settings).await;
    let retry = app
        .post_with_key(
            "/transactions",
            "old-key",
            &json!({"acc_id": 1, "credit": 5}),
        )
        .await;

    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), stored);
    let owners = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT owner_id FROM idempotency_keys WHERE key = 'old-key'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "owner_id")
        .unwrap();
    assert_eq!(owners, -1, "stored as a key from before keys were per user");
}
