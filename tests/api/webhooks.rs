//! Webhooks: each money change is one message for each endpoint that asked for it, written with
//! the change; messages are sent, retried until answered, and an endpoint that keeps failing is
//! disabled until its owner enables it. Signatures are checked by the Standard Webhooks library
//! itself, in tests/cli/test_webhooks.py.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bank_api::routes::webhooks::WebhookMessage;
use bank_core::ledger::TABLE_AT_A_TIME;
use entity::outbox;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Mutex,
};

use crate::helpers::{
    TestApp, assert_validation_error, on_each_backend_with, sample, sqlite_settings,
};

/// A port on this machine where nothing listens: messages to it fail and wait.
const NOWHERE: &str = "http://127.0.0.1:9/bank";

/// The event types of the messages waiting for `endpoint`, in order.
async fn messages(app: &TestApp, endpoint: i64) -> Vec<String> {
    outbox::Entity::find()
        .filter(outbox::Column::EndpointId.eq(endpoint))
        .order_by_asc(outbox::Column::Id)
        .all(&app.db)
        .await
        .expect("the outbox")
        .into_iter()
        .map(|message| message.event_type)
        .collect()
}

fn id(body: &Value) -> i64 {
    body["id"].as_i64().expect("an id")
}

#[tokio::test]
async fn every_change_is_one_message_for_each_endpoint_that_asked() {
    on_each_backend_with(
        |settings| settings.webhook_first_retry = Duration::from_secs(3600),
        async |app: TestApp| {
            let alice = app.customer("alice").await;
            let bob = app.customer("bob").await;
            let everything = app.post("/webhooks", &json!({"url": NOWHERE})).await;
            assert_eq!(everything.status(), StatusCode::CREATED);
            let everything = id(&everything.json().await.unwrap());
            let postings = alice
                .post(
                    "/webhooks",
                    &json!({"url": NOWHERE, "events": ["transaction.posted"]}),
                )
                .await;
            let postings = id(&postings.json().await.unwrap());
            let bobs_endpoint = bob.post("/webhooks", &json!({"url": NOWHERE})).await;
            let bobs_endpoint = id(&bobs_endpoint.json().await.unwrap());

            let alices = alice.funded_account(1_000).await;
            let bobs = bob.funded_account(0).await;
            let overdraft = alice
                .post("/transactions", &json!({"acc_id": alices, "debit": 5_000}))
                .await;
            assert_eq!(overdraft.status(), StatusCode::CONFLICT);
            let moved = alice
                .post(
                    "/transfers",
                    &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 100}),
                )
                .await;
            assert_eq!(moved.status(), StatusCode::CREATED);
            let held = alice
                .post(
                    "/holds",
                    &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 50}),
                )
                .await;
            let hold = id(&held.json().await.unwrap());
            let voided = alice.post(&format!("/holds/{hold}/void"), &json!({})).await;
            assert_eq!(voided.status(), StatusCode::OK);
            let replayed = alice.post(&format!("/holds/{hold}/void"), &json!({})).await;
            assert_eq!(replayed.status(), StatusCode::CONFLICT);

            // The refused debit and the refused second void left nothing; the operator's
            // endpoint hears of every account, Alice's of hers and only what it asked for, and
            // Bob's of nothing of Alice's, though her money reached his account.
            assert_eq!(
                messages(&app, everything).await,
                [
                    "transaction.posted",
                    "transfer.made",
                    "hold.created",
                    "hold.voided"
                ]
            );
            assert_eq!(messages(&app, postings).await, ["transaction.posted"]);
            assert!(messages(&app, bobs_endpoint).await.is_empty());
        },
    )
    .await;
}

/// A batch reaches the database as one group, written (on Postgres) with one statement per
/// table: still one message per write, in the order of the items, naming each write's rows.
#[tokio::test]
async fn a_batch_is_one_message_for_each_write_in_its_order() {
    on_each_backend_with(
        |settings| settings.webhook_first_retry = Duration::from_secs(3600),
        async |app: TestApp| {
            let alice = app.customer("alice").await;
            let bob = app.customer("bob").await;
            let alices_endpoint = alice
                .post(
                    "/webhooks",
                    &json!({"url": NOWHERE, "events": ["transaction.posted"]}),
                )
                .await;
            let alices_endpoint = id(&alices_endpoint.json().await.unwrap());
            let everything = app.post("/webhooks", &json!({"url": NOWHERE})).await;
            let everything = id(&everything.json().await.unwrap());
            let alices = alice.funded_account(1_000).await;
            let bobs = bob.funded_account(0).await;
            let before = outbox::Entity::find().all(&app.db).await.unwrap().len();

            // Long enough to be judged whole: a posting, a transfer, then postings.
            let mut items = vec![
                json!({"kind": "posting", "acc_id": alices, "debit": 10}),
                json!({"kind": "transfer", "from_acc_id": alices, "to_acc_id": bobs, "amount": 20}),
            ];
            items.resize(
                TABLE_AT_A_TIME,
                json!({"kind": "posting", "acc_id": alices, "credit": 30}),
            );
            let batch = alice.post("/batches", &json!({ "items": items })).await;
            assert_eq!(batch.status(), StatusCode::OK);
            let results: Value = batch.json().await.unwrap();
            let rows: Vec<_> = results["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|result| match result.get("transfer") {
                    Some(transfer) => (
                        "transfer.made",
                        (
                            transfer["from_transaction"]["id"].as_i64(),
                            transfer["to_transaction"]["id"].as_i64(),
                        ),
                    ),
                    None => (
                        "transaction.posted",
                        (result["transaction"]["id"].as_i64(), None),
                    ),
                })
                .collect();
            assert_eq!(rows[1].0, "transfer.made");

            let operators = outbox::Entity::find()
                .filter(outbox::Column::EndpointId.eq(everything))
                .order_by_asc(outbox::Column::Id)
                .all(&app.db)
                .await
                .unwrap();
            let told: Vec<_> = operators[operators.len() - TABLE_AT_A_TIME..]
                .iter()
                .map(|m| (m.event_type.as_str(), (Some(m.subject_id), m.second_id)))
                .collect();
            assert_eq!(told, rows);
            let total = outbox::Entity::find().all(&app.db).await.unwrap().len();
            // Every item for the operator's, the postings for Alice's.
            assert_eq!(total - before, 2 * TABLE_AT_A_TIME - 1);
            let alices_messages = messages(&app, alices_endpoint).await;
            assert_eq!(alices_messages.len(), TABLE_AT_A_TIME, "with the funding");
            assert!(alices_messages.iter().all(|m| m == "transaction.posted"));
        },
    )
    .await;
}

#[tokio::test]
async fn endpoints_are_the_owner_s_and_their_secret_is_shown_once() {
    on_each_backend_with(
        |_| {},
        async |app: TestApp| {
            let alice = app.customer("alice").await;
            let bob = app.customer("bob").await;
            let registered = alice
                .post(
                    "/webhooks",
                    &json!({"url": NOWHERE, "events": ["hold.expired", "transfer.made", "hold.expired"]}),
                )
                .await;
            assert_eq!(registered.status(), StatusCode::CREATED);
            let registered: Value = registered.json().await.unwrap();
            assert!(registered["secret"].as_str().unwrap().starts_with("whsec_"));
            assert_eq!(registered["events"], json!(["transfer.made", "hold.expired"]));
            assert_eq!(registered["enabled"], true);
            let endpoint = id(&registered);

            let read = alice.get_json(&format!("/webhooks/{endpoint}")).await;
            assert_eq!(read["url"], NOWHERE);
            assert!(read.get("secret").is_none(), "{read}");
            let listed = alice.get_json("/webhooks").await;
            assert_eq!(listed.as_array().unwrap().len(), 1);
            assert!(!listed.to_string().contains("whsec_"));

            let by_bob = bob.get(&format!("/webhooks/{endpoint}")).await;
            assert_eq!(by_bob.status(), StatusCode::NOT_FOUND);
            let enabled_by_bob = bob
                .post(&format!("/webhooks/{endpoint}/enable"), &json!({}))
                .await;
            assert_eq!(enabled_by_bob.status(), StatusCode::NOT_FOUND);
            assert_eq!(bob.get_json("/webhooks").await, json!([]));
            let by_operator = app.get_json("/webhooks").await;
            assert_eq!(by_operator.as_array().unwrap().len(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn urls_that_reach_private_networks_are_refused_unless_allowed() {
    let settings = sqlite_settings();
    let app = TestApp::spawn(bank_api::config::Settings {
        webhook_allowed_networks: Vec::new(),
        ..settings
    })
    .await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "ftp://127.0.0.1/",
        "http://user:secret@127.0.0.1/",
        "not a url",
    ] {
        let refused = app.post("/webhooks", &json!({"url": url})).await;
        assert_validation_error(refused, &["body", "url"], url).await;
    }
    let no_events = app
        .post("/webhooks", &json!({"url": NOWHERE, "events": []}))
        .await;
    assert_validation_error(no_events, &["body", "events"], "no events").await;
    let seven = json!({"url": NOWHERE, "events": vec!["transfer.made"; 7]});
    let too_many = app.post("/webhooks", &seven).await;
    assert_validation_error(too_many, &["body", "events"], "seven events").await;
    let unknown = app
        .post(
            "/webhooks",
            &json!({"url": NOWHERE, "events": ["money.printed"]}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// What a receiver was sent: each request's headers (lower-case names) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// An HTTP receiver on this machine answering the `n`th request (from 0) with `answer(n)`, a
/// status and any extra header lines.
async fn receiver(
    answer: impl Fn(usize) -> (u16, &'static str) + Send + 'static,
) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0; 4096];
            let (head, body) = loop {
                let read = stream.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            line.to_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|length| length.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || read == 0 {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(": "))
                .map(|(name, value)| (name.to_lowercase(), value.to_owned()))
                .collect();
            let mut log = log.lock().await;
            let (status, extra) = answer(log.len());
            log.push((headers, body));
            let answer = format!(
                "HTTP/1.1 {status} X\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (url, received)
}

async fn wait_for(what: &str, check: impl AsyncFn() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn messages_are_retried_until_answered_and_honour_retry_after() {
    let app = TestApp::spawn(bank_api::config::Settings {
        webhook_first_retry: Duration::from_millis(50),
        ..sqlite_settings()
    })
    .await;
    let answers = [(500, ""), (503, "retry-after: 2\r\n"), (204, "")];
    let (url, received) = receiver(move |n| answers[n.min(2)]).await;
    let registered = app.post("/webhooks", &json!({"url": url})).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let account = app.funded_account(700).await;

    wait_for("three attempts", async || received.lock().await.len() == 3).await;
    let received = received.lock().await;
    let header = |attempt: usize, name: &str| {
        received[attempt]
            .0
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("attempt {attempt} has no {name}"))
    };
    // One message, sent three times under one id; each attempt signed when it is sent.
    assert!((0..3).all(|attempt| header(attempt, "webhook-id") == header(0, "webhook-id")));
    assert!(header(2, "webhook-signature").starts_with("v1,"));
    let waited = header(2, "webhook-timestamp").parse::<i64>().unwrap()
        - header(1, "webhook-timestamp").parse::<i64>().unwrap();
    assert!(waited >= 2, "Retry-After: 2 was honoured ({waited} s)");
    let body: Value = serde_json::from_str(&received[2].1).unwrap();
    serde_json::from_value::<WebhookMessage>(body.clone()).expect("the documented schema");
    assert_eq!(body["type"], "transaction.posted");
    assert_eq!(body["data"]["acc_id"], account);
    assert_eq!(body["data"]["credit"], 700);
    assert_eq!(body["data"]["balance_after"], 700);
    assert_eq!(
        received[0].1, received[2].1,
        "every attempt sends the same body"
    );
    drop(received);

    wait_for("the outbox to empty", async || {
        let metrics = app.metrics().await;
        sample(&metrics, "bank_outbox_messages_waiting", &[]) == Some(0.0)
            && sample(&metrics, "bank_outbox_dispatch_lag_seconds", &[]) == Some(0.0)
            && sample(
                &metrics,
                "bank_webhook_deliveries_total",
                &[("outcome", "delivered")],
            ) == Some(1.0)
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "bank_webhook_deliveries_total",
            &[("outcome", "failed")]
        ),
        Some(2.0)
    );
}

/// The webhook ids a receiver was sent, each once.
async fn distinct_ids(received: &Received) -> BTreeSet<String> {
    let received = received.lock().await;
    let id = |headers: &Vec<(String, String)>| {
        headers
            .iter()
            .find(|(name, _)| name == "webhook-id")
            .map(|(_, value)| value.clone())
            .expect("a webhook-id")
    };
    received.iter().map(|(headers, _)| id(headers)).collect()
}

#[tokio::test]
async fn an_endpoint_failing_for_long_is_disabled_until_its_owner_enables_it() {
    const POSTINGS: usize = 30;
    let app = TestApp::spawn(bank_api::config::Settings {
        webhook_first_retry: Duration::from_millis(20),
        webhook_disable_after: Duration::from_secs(3),
        ..sqlite_settings()
    })
    .await;
    let failing = Arc::new(AtomicBool::new(true));
    let down = failing.clone();
    let (url, received) = receiver(move |_| {
        if down.load(Ordering::SeqCst) {
            (500, "")
        } else {
            (204, "")
        }
    })
    .await;
    let alice = app.customer("alice").await;
    let registered = alice.post("/webhooks", &json!({"url": url})).await;
    let endpoint = id(&registered.json().await.unwrap());
    let account = alice.funded_account(0).await;
    for _ in 0..POSTINGS {
        let posted = alice
            .post("/transactions", &json!({"acc_id": account, "credit": 1}))
            .await;
        assert_eq!(posted.status(), StatusCode::CREATED);
    }

    // Many failures in its first moments down do not disable it: time does.
    let path = format!("/webhooks/{endpoint}");
    wait_for("every message to fail once", async || {
        alice.get_json(&path).await["failures"].as_u64() >= Some(POSTINGS as u64)
    })
    .await;
    assert_eq!(alice.get_json(&path).await["enabled"], true);
    wait_for("the endpoint to be disabled", async || {
        alice.get_json(&path).await["enabled"] == false
    })
    .await;
    let disabled = alice.get_json(&path).await;
    assert!(disabled["disabled_at"].is_string());
    let sent = received.lock().await.len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        received.lock().await.len(),
        sent,
        "nothing is sent while disabled"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "bank_webhook_endpoints_disabled_total", &[]),
        Some(1.0)
    );
    // Its messages wait for its owner, not for a dispatcher: not counted as waiting once the
    // gauge is next read from the outbox (each second, so it may still hold the count from before).
    wait_for(
        "the disabled endpoint's messages to leave the waiting gauge",
        async || sample(&app.metrics().await, "bank_outbox_messages_waiting", &[]) == Some(0.0),
    )
    .await;

    failing.store(false, Ordering::SeqCst);
    let enabled = alice.post(&format!("{path}/enable"), &json!({})).await;
    assert_eq!(enabled.status(), StatusCode::OK);
    let enabled: Value = enabled.json().await.unwrap();
    assert_eq!(
        (enabled["enabled"].clone(), enabled["failures"].clone()),
        (json!(true), json!(0))
    );
    wait_for("every waiting message to arrive", async || {
        distinct_ids(&received).await.len() == POSTINGS
    })
    .await;
}

/// The document's example messages are messages: each is read by the type the schema is made of.
#[tokio::test]
async fn the_documented_message_examples_are_what_endpoints_receive() {
    let app = TestApp::spawn(sqlite_settings()).await;
    let doc = app.get_json("/openapi.json").await;
    let examples = doc["components"]["schemas"]["WebhookMessage"]["examples"]
        .as_array()
        .expect("examples")
        .clone();
    let mut types = BTreeSet::new();
    for example in examples {
        let message: WebhookMessage =
            serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(
            serde_json::to_value(&message).unwrap()["type"],
            example["type"]
        );
        types.insert(example["type"].as_str().unwrap().to_owned());
    }
    assert!(types.len() >= 4, "{types:?}");
}

/// Each message carries the `traceparent` its write was made under, whichever path wrote it:
/// a posting and a transfer (grouped on Postgres), a hold placed and captured.
#[tokio::test]
async fn every_message_carries_the_trace_of_the_request_that_made_its_change() {
    use bank_core::{
        domain::{AccountId, Scope},
        ledger::{self, HoldAction, HoldWrite, Ledger, Movement, Posting, Transfer, Write},
    };
    on_each_backend_with(
        |settings| settings.webhook_first_retry = Duration::from_secs(3600),
        async |app: TestApp| {
            let endpoint = app.post("/webhooks", &json!({"url": NOWHERE})).await;
            let endpoint = id(&endpoint.json().await.unwrap());
            let (one, other) = (app.create_account().await, app.create_account().await);
            let ledger = Ledger::new(
                app.db.clone(),
                true,
                Duration::from_secs(2),
                std::sync::Arc::new(|_| {}),
            );
            let trace = |n: u8| Some(format!("00-{:032x}-{:016x}-01", n, n));
            let write = |movement, n| Write {
                movement,
                scope: Scope::All,
                claim: None,
                trace: trace(n),
            };
            let posting = Posting::new(AccountId(one), 1_000, 0).unwrap();
            ledger
                .write(write(Movement::Post(posting), 1))
                .await
                .unwrap();
            let transfer = Transfer::new(AccountId(one), AccountId(other), 100).unwrap();
            ledger
                .write(write(Movement::Transfer(transfer), 2))
                .await
                .unwrap();
            let new = ledger::NewHold::new(AccountId(one), AccountId(other), 50, 3600).unwrap();
            let hold = |action, n| HoldWrite {
                action,
                scope: Scope::All,
                claim: None,
                trace: trace(n),
            };
            let placed = ledger.hold(hold(HoldAction::Create(new), 3)).await.unwrap();
            let capture = HoldAction::Capture {
                hold: placed.hold.id,
                amount: None,
            };
            ledger.hold(hold(capture, 4)).await.unwrap();

            let traced: Vec<(String, Option<String>)> = outbox::Entity::find()
                .filter(outbox::Column::EndpointId.eq(endpoint))
                .order_by_asc(outbox::Column::Id)
                .all(&app.db)
                .await
                .unwrap()
                .into_iter()
                .map(|message| (message.event_type, message.traceparent))
                .collect();
            let expected: Vec<(String, Option<String>)> = [
                "transaction.posted",
                "transfer.made",
                "hold.created",
                "hold.captured",
            ]
            .into_iter()
            .zip(1..)
            .map(|(event, n)| (event.to_owned(), trace(n)))
            .collect();
            assert_eq!(traced, expected);
        },
    )
    .await;
}

/// A redirect is an answer, not a delivery: it is not followed (it could lead anywhere,
/// a private address included), and the message is tried again later.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let app = TestApp::spawn(bank_api::config::Settings {
        webhook_first_retry: Duration::from_secs(3600),
        ..sqlite_settings()
    })
    .await;
    let (elsewhere, followed) = receiver(|_| (204, "")).await;
    let location: &'static str = format!("location: {elsewhere}\r\n").leak();
    let (url, received) = receiver(move |_| (302, location)).await;
    let registered = app.post("/webhooks", &json!({"url": url})).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    app.funded_account(5).await;

    wait_for("the attempt", async || received.lock().await.len() == 1).await;
    wait_for("the failure to be counted", async || {
        let metrics = app.metrics().await;
        sample(
            &metrics,
            "bank_webhook_deliveries_total",
            &[("outcome", "failed")],
        ) == Some(1.0)
    })
    .await;
    assert!(
        followed.lock().await.is_empty(),
        "the redirect was not followed"
    );
    let message = outbox::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(
        (message.delivered_ms, message.last_status),
        (None, Some(302)),
        "it waits to be tried again"
    );
}
