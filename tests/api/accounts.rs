use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_detail, assert_validation_error, on_each_backend};

#[tokio::test]
async fn opening_an_account_returns_it_trimmed_with_a_zero_balance() {
    on_each_backend(async |app| {
        let response = app
            .post(
                "/accounts/",
                &json!({"first_name": "  Ada ", "last_name": "Lovelace", "address": "12 St James's Square"}),
            )
            .await;

        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["first_name"], "Ada");
        assert_eq!(created["last_name"], "Lovelace");
        assert_eq!(created["address"], "12 St James's Square");
        assert_eq!(created["balance"], 0);
        assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
        let id = created["id"].as_i64().unwrap();
        assert_eq!(app.get_json(&format!("/accounts/{id}")).await, created);
    })
    .await;
}

#[tokio::test]
async fn both_spellings_of_collection_routes_answer_without_redirect() {
    on_each_backend(async |app| {
        app.create_account().await;
        for path in ["/accounts", "/accounts/", "/transactions", "/transactions/"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        let body = json!({"first_name": "A", "last_name": "B", "address": "C"});
        assert_eq!(
            app.post("/accounts", &body).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            app.post("/accounts/", &body).await.status(),
            StatusCode::CREATED
        );
    })
    .await;
}

#[tokio::test]
async fn invalid_names_and_addresses_are_refused_with_the_field_named() {
    on_each_backend(async |app| {
        let long = "x".repeat(201);
        let cases = [
            (
                json!({"first_name": "", "last_name": "B", "address": "C"}),
                "first_name",
                "empty",
            ),
            (
                json!({"first_name": "   ", "last_name": "B", "address": "C"}),
                "first_name",
                "blank",
            ),
            (
                json!({"first_name": "A", "last_name": long, "address": "C"}),
                "last_name",
                "201 chars",
            ),
            (
                json!({"first_name": "A", "last_name": "B", "address": "a\u{0}b"}),
                "address",
                "NUL byte",
            ),
            (
                json!({"first_name": "A\nB", "last_name": "B", "address": "C"}),
                "first_name",
                "newline",
            ),
            (
                json!({"first_name": 5, "last_name": "B", "address": "C"}),
                "first_name",
                "number",
            ),
            (
                json!({"last_name": "B", "address": "C"}),
                "first_name",
                "missing",
            ),
            (
                json!({"first_name": "A", "last_name": "B", "address": null}),
                "address",
                "null",
            ),
        ];
        for (body, field, case) in cases {
            let response = app.post("/accounts", &body).await;
            assert_validation_error(response, &["body", field], case).await;
        }
        assert_eq!(
            app.get_json("/accounts").await,
            json!([]),
            "nothing was written"
        );
    })
    .await;
}

#[tokio::test]
async fn every_problem_in_a_body_is_reported_at_once() {
    on_each_backend(async |app| {
        let body = json!({"first_name": "", "last_name": " ", "address": "ok"});
        let response = app.post("/accounts", &body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["detail"].as_array().unwrap().len(), 2, "{body}");
    })
    .await;
}

#[tokio::test]
async fn accounts_are_listed_by_id_a_page_at_a_time() {
    on_each_backend(async |app| {
        let mut created = Vec::new();
        for _ in 0..5 {
            created.push(app.create_account().await);
        }
        assert_eq!(ids(app.get_json("/accounts").await), created);
        assert_eq!(
            ids(app.get_json("/accounts?skip=1&limit=2").await),
            created[1..3]
        );
        assert_eq!(
            ids(app.get_json("/accounts?skip=5").await),
            Vec::<i64>::new()
        );
        assert_eq!(ids(app.get_json("/accounts?limit=1000").await), created);
    })
    .await;
}

#[tokio::test]
async fn every_list_can_be_walked_by_after_id() {
    on_each_backend(async |app| {
        let mine = app.create_account().await;
        let other = app.create_account().await;
        app.create_account().await; // so that /accounts has more than one page of two
        for credit in 1..=5 {
            for account in [mine, other] {
                let body = json!({"acc_id": account, "credit": credit});
                assert_eq!(
                    app.post("/transactions", &body).await.status(),
                    StatusCode::CREATED
                );
            }
        }

        for list in [
            format!("/accounts/{mine}/transactions"),
            "/transactions".to_owned(),
            "/accounts".to_owned(),
        ] {
            let everything = ids(app.get_json(&list).await);
            let mut walked: Vec<i64> = Vec::new();
            let mut page = ids(app.get_json(&format!("{list}?limit=2")).await);
            while let Some(&last) = page.last() {
                walked.extend(&page);
                assert!(walked.len() <= everything.len(), "{list} never ends");
                page = ids(app
                    .get_json(&format!("{list}?after_id={last}&limit=2"))
                    .await);
            }
            assert_eq!(walked, everything, "{list} walked two at a time");
            let (first, third) = (everything[0], everything[2]);
            assert_eq!(
                ids(app
                    .get_json(&format!("{list}?after_id={first}&skip=1&limit=1"))
                    .await),
                [third],
                "{list}: skip counts from after_id"
            );
        }
        let history = ids(app
            .get_json(&format!("/accounts/{mine}/transactions"))
            .await);
        assert_eq!(history.len(), 5, "only the account's own rows");
        assert_detail(
            app.get("/accounts/999/transactions?after_id=1").await,
            StatusCode::NOT_FOUND,
            "Account not found",
        )
        .await;
    })
    .await;
}

/// A list that goes on says so with `Link: <...>; rel="next"` (RFC 8288); following those links
/// alone walks the whole list, and the last page has none.
#[tokio::test]
async fn every_list_links_to_its_next_page_while_there_is_one() {
    on_each_backend(async |app| {
        let account = app.create_account().await;
        app.create_account().await;
        app.create_account().await;
        for credit in 1..=5 {
            let body = json!({"acc_id": account, "credit": credit});
            assert_eq!(
                app.post("/transactions", &body).await.status(),
                StatusCode::CREATED
            );
        }

        for list in [
            format!("/accounts/{account}/transactions"),
            "/transactions".to_owned(),
            "/accounts".to_owned(),
        ] {
            let everything = ids(app.get_json(&list).await);
            let mut walked: Vec<i64> = Vec::new();
            let mut next = Some(format!("{list}?limit=2"));
            while let Some(url) = next.take() {
                let response = app.get(&url).await;
                assert_eq!(response.status(), StatusCode::OK, "{url}");
                next = response.headers().get("link").map(|link| {
                    let link = link.to_str().unwrap();
                    let target = link
                        .strip_prefix('<')
                        .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
                        .unwrap_or_else(|| panic!("{url}: not an RFC 8288 next link: {link}"));
                    target.to_owned()
                });
                walked.extend(ids(response.json().await.unwrap()));
                assert!(walked.len() <= everything.len(), "{list} never ends");
            }
            assert_eq!(walked, everything, "{list} followed by its links");
            let full = app.get(&format!("{list}?limit=5")).await;
            assert_eq!(
                full.headers().get("link").is_some(),
                everything.len() > 5,
                "{list}: a link only when more rows exist"
            );
        }
    })
    .await;
}

fn ids(page: Value) -> Vec<i64> {
    page.as_array()
        .expect("a list")
        .iter()
        .map(|row| row["id"].as_i64().expect("an integer id"))
        .collect()
}

#[tokio::test]
async fn bad_pagination_is_refused_with_the_parameter_named() {
    on_each_backend(async |app| {
        let cases = [
            ("/accounts?limit=0", "limit"),
            ("/accounts?limit=1001", "limit"),
            ("/accounts?limit=ten", "limit"),
            ("/accounts?skip=-1", "skip"),
            ("/accounts?skip=1.5", "skip"),
            ("/accounts?skip=99999999999999999999", "skip"),
            ("/transactions?limit=-5", "limit"),
            ("/accounts/1/transactions?limit=0", "limit"),
            ("/accounts?after_id=-1", "after_id"),
            ("/transactions?after_id=last", "after_id"),
            (
                "/accounts/1/transactions?after_id=99999999999999999999",
                "after_id",
            ),
        ];
        for (path, parameter) in cases {
            assert_validation_error(app.get(path).await, &["query", parameter], path).await;
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_and_out_of_range_account_ids_are_404_or_422_never_500() {
    on_each_backend(async |app| {
        for path in [
            "/accounts/999",
            "/accounts/2147483648",
            "/accounts/-1",
            "/accounts/0",
        ] {
            assert_detail(
                app.get(path).await,
                StatusCode::NOT_FOUND,
                "Account not found",
            )
            .await;
        }
        for id in ["abc", "1.5", "99999999999999999999", "%00"] {
            let path = format!("/accounts/{id}");
            assert_validation_error(app.get(&path).await, &["path", "account_id"], &path).await;
        }
        for path in ["/accounts/999/balance", "/accounts/999/transactions"] {
            assert_detail(
                app.get(path).await,
                StatusCode::NOT_FOUND,
                "Account not found",
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn balance_is_read_from_the_account() {
    on_each_backend(async |app| {
        let id = app.funded_account(12_500).await;
        let body = app.get_json(&format!("/accounts/{id}/balance")).await;
        assert_eq!(
            body,
            json!({"account_id": id, "balance": 12_500, "available": 12_500})
        );
    })
    .await;
}

#[tokio::test]
async fn an_accounts_history_is_its_own_rows_oldest_first_paged() {
    on_each_backend(async |app| {
        let mine = app.create_account().await;
        let other = app.funded_account(50).await;
        for credit in [10, 20, 30] {
            let body = json!({"acc_id": mine, "credit": credit, "debit": 0});
            assert_eq!(
                app.post("/transactions", &body).await.status(),
                StatusCode::CREATED
            );
        }
        let credits = |rows: Value| -> Vec<i64> {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| r["credit"].as_i64().unwrap())
                .collect()
        };

        let history = app
            .get_json(&format!("/accounts/{mine}/transactions/"))
            .await;
        assert_eq!(credits(history.clone()), [10, 20, 30]);
        assert!(
            history
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["acc_id"] == mine)
        );
        let page = app
            .get_json(&format!("/accounts/{mine}/transactions?skip=1&limit=1"))
            .await;
        assert_eq!(credits(page), [20]);
        let beyond = app
            .get_json(&format!("/accounts/{mine}/transactions?skip=10"))
            .await;
        assert_eq!(
            beyond,
            json!([]),
            "an existing account past its end is an empty page"
        );
        assert_eq!(
            app.get_json(&format!("/accounts/{other}/transactions"))
                .await
                .as_array()
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}
