//! Access control: only an account's owner, or an operator, can see it or move its money; public
//! routes need no token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, on_each_backend, on_each_backend_with};

/// Customer B asks for everything of customer A's, by id: every answer is the 404 a missing id
/// gets, and nothing of A's changes.
#[tokio::test]
async fn another_customers_accounts_and_ledger_are_not_found_and_unchanged() {
    on_each_backend(async |app| {
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
        let bobs_rows = bobs_ledger.as_array().unwrap();
        assert!(!bobs_rows.is_empty(), "Bob sees his own row");
        assert!(
            bobs_rows.iter().all(|row| row["acc_id"] == bobs),
            "{bobs_ledger}"
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
    on_each_backend(async |app| {
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

/// The operations of the OpenAPI document, as `(method, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

/// Whether an operation needs a token: it declares the bearer scheme and no way without one.
fn needs_a_token(operation: &Value) -> bool {
    operation["security"] == json!([{"OAuth2PasswordBearer": []}])
}

/// Every operation that the document says needs a token refuses a request without one; every
/// other operation answers it. A route added later is tried too: the list is the document's.
#[tokio::test]
async fn what_the_document_says_needs_a_token_does_and_nothing_else() {
    on_each_backend_with(
        |settings| settings.diagnostics_routes = true,
        async |app: TestApp| {
            let doc = app.get_json("/openapi.json").await;
            let mut protected = 0;
            for (method, path, operation) in operations(&doc) {
                let path = path
                    .replace("{account_id}", "1")
                    .replace("{transaction_id}", "1")
                    .replace("{hold_id}", "1")
                    .replace("{endpoint_id}", "1");
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let response = app.anonymous(method.clone(), &path, Some(&json!({}))).await;
                if needs_a_token(&operation) {
                    protected += 1;
                    assert_eq!(
                        response.headers()["www-authenticate"],
                        "Bearer",
                        "{method} {path}"
                    );
                    assert_detail(response, StatusCode::UNAUTHORIZED, "Not authenticated").await;
                } else {
                    assert_ne!(
                        response.status(),
                        StatusCode::UNAUTHORIZED,
                        "{method} {path}"
                    );
                }
            }
            assert!(protected >= 10, "{protected} protected operations");
            for public in ["/docs/", "/redoc", "/metrics"] {
                let response = app.anonymous(reqwest::Method::GET, public, None).await;
                assert_eq!(response.status(), StatusCode::OK, "{public}");
            }
        },
    )
    .await;
}

/// Customer B tries every operation the document protects, aimed at customer A's account, ledger
/// row, hold and money: no answer carries anything of A's, and nothing of A's changes. The requests are
/// made from the document (its paths, and its examples with A's ids), so a route added later
/// cannot skip this; a path parameter it does not know how to aim fails the test.
#[tokio::test]
async fn no_protected_operation_lets_a_customer_reach_anothers_data() {
    const MARKER_NAME: &str = "alice-private-7f3a";
    const MARKER_AMOUNT: i64 = 987_654_321;
    on_each_backend_with(
        |settings| settings.diagnostics_routes = true,
        async |app: TestApp| {
            let alice = app.customer("alice").await;
            let bob = app.customer("bob").await;
            let opened = alice
                .post(
                    "/accounts",
                    &json!({"first_name": MARKER_NAME, "last_name": "A", "address": "A"}),
                )
                .await;
            let alices = opened.json::<Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap();
            let credited = alice
                .post(
                    "/transactions",
                    &json!({"acc_id": alices, "credit": MARKER_AMOUNT}),
                )
                .await;
            let alices_row = credited.json::<Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap();
            let bobs = bob.funded_account(500).await;
            // A hold of Alice's for Bob: Bob must not capture it for himself, nor void it.
            let held = alice
                .post(
                    "/holds",
                    &json!({"from_acc_id": alices, "to_acc_id": bobs, "amount": 1000}),
                )
                .await;
            let alices_hold = held.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
            // An endpoint of Alice's: Bob must not read it, nor learn its secret.
            let registered = alice.post("/webhooks", &json!({"url": LOCAL_URL})).await;
            let alices_endpoint = registered.json::<Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap();
            let alices_data = async || {
                (
                    alice.get_json(&format!("/accounts/{alices}")).await,
                    alice
                        .get_json(&format!("/accounts/{alices}/transactions"))
                        .await,
                    alice.get_json("/holds").await,
                    alice.get_json("/webhooks").await,
                )
            };
            let before = alices_data().await;
            let doc = app.get_json("/openapi.json").await;

            let mut tried = Vec::new();
            for (method, template, operation) in operations(&doc) {
                if !needs_a_token(&operation) {
                    continue;
                }
                let aims = Aims {
                    account: alices,
                    ledger_row: alices_row,
                    hold: alices_hold,
                    endpoint: alices_endpoint,
                };
                let path = aimed_at(&template, aims);
                let body =
                    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .map(|schema| example(&doc, schema, alices, bobs));
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = app.client.request(method.clone(), app.url(&path));
                request = request.bearer_auth(&bob.token);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                let case = format!("Bob: {method} {path} {body:?} -> {status} {text}");
                assert!(
                    status.is_success() || [403, 404].contains(&status.as_u16()),
                    "{case}"
                );
                assert!(!text.contains(MARKER_NAME), "{case}");
                assert!(!text.contains(&MARKER_AMOUNT.to_string()), "{case}");
                tried.push(format!("{method} {template}"));
            }
            assert!(tried.len() >= 10, "tried only {tried:?}");
            assert_eq!(alices_data().await, before, "Alice's data is unchanged");
        },
    )
    .await;
}

/// A webhook URL on this machine, which the test servers allow, so no request leaves it.
const LOCAL_URL: &str = "http://127.0.0.1:9/bank";

/// Alice's things, by id.
struct Aims {
    account: i64,
    ledger_row: i64,
    hold: i64,
    endpoint: i64,
}

/// `template` with its path parameters pointing at Alice's things.
fn aimed_at(template: &str, aims: Aims) -> String {
    let path = template
        .replace("{account_id}", &aims.account.to_string())
        .replace("{transaction_id}", &aims.ledger_row.to_string())
        .replace("{hold_id}", &aims.hold.to_string())
        .replace("{endpoint_id}", &aims.endpoint.to_string());
    assert!(
        !path.contains('{'),
        "{template}: a path parameter this test cannot aim at another customer's data"
    );
    path
}

/// The document's example body for `schema`, with every account it names being Alice's, except
/// a transfer's receiver (Bob's own account, so that only the sender is someone else's).
fn example(doc: &Value, schema: &str, alices: i64, bobs: i64) -> Value {
    let name = schema.rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    let mut example = schema
        .get("example")
        .or(schema["examples"].get(0))
        .cloned()
        .unwrap_or_else(|| panic!("{name} has no example"));
    aim(&mut example, name, alices, bobs);
    example
}

/// Every account id in `value`, at any depth (a batch's items), made Alice's, a receiver Bob's.
fn aim(value: &mut Value, name: &str, alices: i64, bobs: i64) {
    match value {
        Value::Object(fields) => {
            for (field, value) in fields {
                match field.as_str() {
                    "acc_id" | "from_acc_id" => *value = json!(alices),
                    "to_acc_id" => *value = json!(bobs),
                    "url" => *value = json!(LOCAL_URL),
                    other if other.ends_with("_id") => {
                        panic!("{name}.{other}: an id this test cannot aim")
                    }
                    _ => aim(value, name, alices, bobs),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| aim(item, name, alices, bobs)),
        _ => {}
    }
}

/// Reads in flight at the same moment may be asked of Postgres in one statement: each still gets
/// exactly what its own caller may see, with many callers mixed in one batch.
#[tokio::test]
async fn concurrent_reads_by_different_callers_each_get_their_own_answer() {
    on_each_backend(async |app| {
        let alice = app.customer("alice").await;
        let bob = app.customer("bob").await;
        let alices = alice.funded_account(100).await;
        let bobs = bob.funded_account(200).await;
        let operator = app.operator().await;
        let reads = (0..60).map(|i| {
            let (who, session) = match i % 3 {
                0 => ("alice", &alice),
                1 => ("bob", &bob),
                _ => ("operator", &operator),
            };
            let account = if i % 2 == 0 { alices } else { bobs };
            let path = if i % 4 < 2 {
                format!("/accounts/{account}")
            } else {
                format!("/accounts/{account}/balance")
            };
            async move { (who, account, path.clone(), session.get(&path).await) }
        });
        for (who, account, path, response) in futures_util::future::join_all(reads).await {
            let allowed = who == "operator" || (who == "alice") == (account == alices);
            if !allowed {
                assert_eq!(response.status(), StatusCode::NOT_FOUND, "{who} {path}");
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{who} {path}");
            let body: Value = response.json().await.unwrap();
            let balance = if account == alices { 100 } else { 200 };
            assert_eq!(body["balance"], balance, "{who} {path}: {body}");
        }
    })
    .await;
}
