//! Pointing bank-api at the Python original's Postgres database upgrades it in place.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, postgres_database};

/// The original's schema, exactly as SQLAlchemy created it on Postgres.
const ORIGINAL_SCHEMA: &str = "
    CREATE TABLE accounts (id serial PRIMARY KEY, first_name varchar, last_name varchar, address varchar);
    CREATE INDEX ix_accounts_id ON accounts (id);
    CREATE TABLE transactions (id serial PRIMARY KEY, acc_id integer REFERENCES accounts(id),
                               credit integer, debit integer);
    CREATE INDEX ix_transactions_id ON transactions (id);";

/// A row of every kind the original accepted and bank-api refuses.
const ORIGINAL_ROWS: &str = "
    INSERT INTO accounts (first_name, last_name, address) VALUES
        ('Ada', 'Lovelace', 'London'),   -- 1: ordinary
        (NULL, NULL, NULL),              -- 2: NULL names and address
        ('', '', ''),                    -- 3: empty names
        ('Over', 'Drawn', 'Nowhere'),    -- 4: its ledger sums below zero
        ('No', 'Rows', 'Anywhere'),      -- 5: no ledger rows
        (repeat('x', 250), 'Long', 'Name');  -- 6: longer than the 200 new input may have
    INSERT INTO accounts (id, first_name, last_name, address) VALUES (10, 'Hand', 'Picked', 'Id');
    INSERT INTO transactions (acc_id, credit, debit) VALUES
        (1, 1000, NULL),   -- 1: NULL debit
        (1, NULL, 300),    -- 2: NULL credit
        (1, -50, 0),       -- 3: negative amount
        (NULL, 70, 0),     -- 4: no account
        (4, 0, 500),       -- 5: overdraft
        (4, 100, 0),       -- 6
        (2, 5, 5),         -- 7
        (NULL, NULL, NULL);-- 8: no account, no amounts
    INSERT INTO transactions (id, acc_id, credit, debit) VALUES (20, 10, 9, 0);";

/// Starts the binary on `url`, as an operator would, and returns what it logged until it served:
/// the upgrade's report.
fn upgrade_with_the_binary(url: &str) -> String {
    let mut server = Command::new(env!("CARGO_BIN_EXE_bank-api"))
        .env("DATABASE_URL", url)
        .env("PORT", "0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let lines = BufReader::new(server.stderr.take().expect("its log"));
    let mut log = String::new();
    for line in lines.lines() {
        let line = line.expect("a log line");
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    log
}

async fn original_database() -> (String, DatabaseConnection) {
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
    let url = postgres_database(&server).await;
    let db = Database::connect(&url).await.expect("the new database");
    db.execute_unprepared(ORIGINAL_SCHEMA)
        .await
        .expect("the original's schema");
    (url, db)
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn the_python_originals_database_is_upgraded_keeping_every_row_id_and_amount() {
    let (url, original) = original_database().await;
    original
        .execute_unprepared(ORIGINAL_ROWS)
        .await
        .expect("the original's rows");

    let log = upgrade_with_the_binary(&url);
    assert!(
        log.contains("2 ledger rows without an account now belong to account 11, \"Unassigned\""),
        "the suspense account is logged: {log}"
    );
    assert!(
        log.contains("1 accounts are overdrawn and keep their balance")
            && log.contains("pay out until back above zero: 4 (-400)"),
        "the overdrawn accounts are logged: {log}"
    );
    let app = TestApp::spawn(bank_api::config::Settings {
        database_url: url,
        ..crate::helpers::test_settings()
    })
    .await;

    // Accounts: every id kept, NULL text as empty text, the suspense account after the largest id.
    let accounts = app.get_json("/accounts").await;
    let summary: Vec<Value> = accounts
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| json!([a["id"], a["first_name"], a["last_name"], a["balance"]]))
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([1, "Ada", "Lovelace", 650]),
            json!([2, "", "", 0]),
            json!([3, "", "", 0]),
            json!([4, "Over", "Drawn", -400]),
            json!([5, "No", "Rows", 0]),
            json!([6, "x".repeat(250), "Long", 0]),
            json!([10, "Hand", "Picked", 9]),
            json!([11, "Unassigned", "ledger rows", 70]),
        ]
    );
    // Ledger rows: every id and amount kept (NULL as 0), running balances in id order.
    let expected_rows = [
        (1, 1, 1000, 0, 1000),
        (2, 1, 0, 300, 700),
        (3, 1, -50, 0, 650),
        (4, 11, 70, 0, 70),
        (5, 4, 0, 500, -500),
        (6, 4, 100, 0, -400),
        (7, 2, 5, 5, 0),
        (8, 11, 0, 0, 70),
        (20, 10, 9, 0, 9),
    ];
    for (id, acc_id, credit, debit, balance_after) in expected_rows {
        let row = app.get_json(&format!("/transactions/{id}")).await;
        assert_eq!(
            [
                &row["acc_id"],
                &row["credit"],
                &row["debit"],
                &row["balance_after"]
            ],
            [
                &json!(acc_id),
                &json!(credit),
                &json!(debit),
                &json!(balance_after)
            ],
            "ledger row {id}: {row}"
        );
    }
    for id in [1, 2, 3, 4, 5, 6, 10, 11] {
        for path in ["", "/balance", "/transactions"] {
            let response = app.get(&format!("/accounts/{id}{path}")).await;
            assert_eq!(response.status(), StatusCode::OK, "/accounts/{id}{path}");
        }
    }

    // New writes: ids continue after the largest; the overdrawn account may receive money,
    // not pay out.
    let new_account = app.create_account().await;
    assert_eq!(new_account, 12);
    let debit = app
        .post("/transactions", &json!({"acc_id": 4, "debit": 1}))
        .await;
    assert_detail(debit, StatusCode::CONFLICT, "Insufficient funds").await;
    let transfer_out = app
        .post(
            "/transfers",
            &json!({"from_acc_id": 4, "to_acc_id": 1, "amount": 1}),
        )
        .await;
    assert_detail(transfer_out, StatusCode::CONFLICT, "Insufficient funds").await;
    let credit = app
        .post("/transactions", &json!({"acc_id": 4, "credit": 100}))
        .await;
    assert_eq!(credit.status(), StatusCode::CREATED);
    let credit: Value = credit.json().await.expect("a ledger row");
    assert_eq!(credit["id"], 21);
    assert_eq!(credit["balance_after"], -300);
    let transfer_in = app
        .post(
            "/transfers",
            &json!({"from_acc_id": 1, "to_acc_id": 4, "amount": 650}),
        )
        .await;
    assert_eq!(transfer_in.status(), StatusCode::CREATED);
    assert_eq!(app.balance(4).await, 350);
    assert_eq!(app.balance(1).await, 0);
    // Back above zero, it may pay out what it holds, and no more.
    let debit = app
        .post("/transactions", &json!({"acc_id": 4, "debit": 351}))
        .await;
    assert_detail(debit, StatusCode::CONFLICT, "Insufficient funds").await;
    let debit = app
        .post("/transactions", &json!({"acc_id": 4, "debit": 350}))
        .await;
    assert_eq!(debit.status(), StatusCode::CREATED);
    assert_eq!(app.balance(4).await, 0);
}

/// An upgrade that cannot complete stops start-up with a message naming the problem and a
/// non-zero exit, and leaves the database as it was: no column, table or migration record added.
#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[tokio::test]
async fn an_upgrade_that_cannot_complete_changes_nothing_and_start_up_fails() {
    let (url, original) = original_database().await;
    // 470,000 credits of 2^31 - 1 sum past the 10^15 balance limit.
    original
        .execute_unprepared(
            "INSERT INTO accounts (first_name, last_name, address) VALUES ('Too', 'Rich', 'Here');
             INSERT INTO transactions (acc_id, credit, debit)
             SELECT 1, 2147483647, 0 FROM generate_series(1, 470000);",
        )
        .await
        .expect("the original's rows");
    let schema = async || {
        let rows = original
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT table_name || '.' || column_name || ' ' || data_type AS col \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 ORDER BY table_name, column_name",
            ))
            .await
            .expect("the schema");
        rows.iter()
            .map(|row| row.try_get::<String>("", "col").expect("text"))
            .collect::<Vec<_>>()
    };
    let before = schema().await;

    let output = Command::new(env!("CARGO_BIN_EXE_bank-api"))
        .env("DATABASE_URL", &url)
        .env("PORT", "0")
        .output()
        .expect("the binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "start-up must fail: {stderr}");
    assert!(
        stderr.contains(
            "upgrading the Python original's database: 1 accounts (0 with a NULL name or \
             address), 470000 ledger rows (0 with a NULL amount, 0 with a negative amount, 0 \
             without an account)"
        ),
        "the upgrade reports what it found: {stderr}"
    );
    assert!(
        stderr.contains("account 1's ledger sums to 1009317314090000")
            && stderr.contains("above bank-api's balance limit"),
        "the message names the problem: {stderr}"
    );
    assert_eq!(schema().await, before, "the database is as it was");
}

/// Names that differ only by case, signed up before names became one whatever their case: the
/// migration reports them in the log and leaves each signing in by its exact name (the oldest by
/// any case); none is merged or renamed, and no new one can be made.
#[tokio::test]
async fn usernames_that_already_differ_only_by_case_are_reported_and_keep_working() {
    use migration::MigratorTrait;
    let url = crate::common::sqlite_database();
    let db = Database::connect(&url).await.expect("a database");
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261203_000003_usernames_ignore_case")
        .expect("the usernames migration") as u32;
    migration::Migrator::up(&db, Some(before))
        .await
        .expect("the schema before the rule");
    for name in ["ada", "Ada", "ADA"] {
        let hash = bank_core::authentication::password::hash(
            &bank_core::domain::Password::parse(&format!("{name} password")).unwrap(),
        )
        .await
        .unwrap();
        db.execute_unprepared(&format!(
            "INSERT INTO users (username, password_hash, role, created_at) \
             VALUES ('{name}', '{hash}', 'customer', '2026-12-01T00:00:00Z')"
        ))
        .await
        .expect("a user of the old rule");
    }

    let log = upgrade_with_the_binary(&url);

    assert!(
        log.contains(
            "usernames that differ only by case: ada signs in by any case, Ada, ADA only by \
             the exact name; none was changed"
        ),
        "{log}"
    );
    let app = TestApp::spawn(bank_api::config::Settings {
        database_url: url,
        ..crate::helpers::test_settings()
    })
    .await;
    for (login, password) in [
        ("ada", "ada password"),
        ("Ada", "Ada password"),
        ("ADA", "ADA password"),
        ("aDa", "ada password"),
    ] {
        let response = app.log_in(login, password).await;
        assert_eq!(response.status(), StatusCode::OK, "{login}");
    }
    let taken = app
        .anonymous(
            reqwest::Method::POST,
            "/users",
            Some(&json!({"username": "adA", "password": "another password"})),
        )
        .await;
    assert_detail(taken, StatusCode::CONFLICT, "Username already taken").await;
}
