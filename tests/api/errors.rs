use reqwest::{StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{
    assert_detail, assert_validation_error, on_each_backend, on_each_backend_with,
};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    on_each_backend(async |app| {
        assert_detail(
            app.get("/no/such/route").await,
            StatusCode::NOT_FOUND,
            "Not Found",
        )
        .await;
        assert_detail(
            app.get("/docs/no-such-asset.js").await,
            StatusCode::NOT_FOUND,
            "Not Found",
        )
        .await;
        let put = app.client.put(app.url("/accounts")).send().await.unwrap();
        assert_eq!(put.headers()["allow"], "GET, POST", "405 names the methods");
        assert_detail(put, StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").await;
        let delete = app
            .client
            .delete(app.url("/transactions/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(delete.headers()["allow"], "GET", "405 names the methods");
        assert_detail(delete, StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").await;
    })
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_422() {
    on_each_backend(async |app| {
        let raw = |body: String, content_type: &'static str| {
            app.request(reqwest::Method::POST, "/accounts")
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
        };
        let cases = [
            (
                raw("{\"first_name\": ".into(), "application/json")
                    .await
                    .unwrap(),
                vec!["body", "14"],
                "truncated JSON",
            ),
            (
                raw("not json".into(), "application/json").await.unwrap(),
                vec!["body", "1"],
                "not JSON",
            ),
            (
                raw("".into(), "application/json").await.unwrap(),
                vec!["body"],
                "empty body",
            ),
            (
                raw(
                    r#"{"first_name": "A", "last_name": "L", "address": "A"} {}"#.into(),
                    "application/json",
                )
                .await
                .unwrap(),
                vec!["body", "54"],
                "a second document after the first",
            ),
            (
                raw("[1, 2]".into(), "application/json").await.unwrap(),
                vec!["body"],
                "an array",
            ),
            (
                raw("{}".into(), "text/plain").await.unwrap(),
                vec!["header", "content-type"],
                "text/plain",
            ),
            (
                raw("{}".into(), "application/x-www-form-urlencoded")
                    .await
                    .unwrap(),
                vec!["header", "content-type"],
                "form",
            ),
        ];
        for (response, loc, case) in cases {
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{case}"
            );
            let body: Value = response.json().await.unwrap();
            let first_loc = &body["detail"][0]["loc"];
            let first_loc: Vec<String> = first_loc
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string().trim_matches('"').to_owned())
                .collect();
            assert_eq!(first_loc, loc, "{case}: {body}");
        }
        let missing = app
            .request(reqwest::Method::POST, "/accounts")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_validation_error(
            missing,
            &["body", "first_name"],
            "no content type: read as JSON",
        )
        .await;
        let nested = |depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep = raw(nested(100_000), "application/json").await.unwrap();
        assert_eq!(
            deep.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "200 KB of nesting is over the limit"
        );
        let deep = raw(nested(5_000), "application/json").await.unwrap();
        assert_eq!(
            deep.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "deep nesting"
        );
        assert_eq!(app.get_json("/accounts").await, json!([]));
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    on_each_backend_with(
        |settings| settings.body_limit_bytes = 2048,
        async |app| {
            let body = json!({"first_name": "x".repeat(3000), "last_name": "B", "address": "C"});
            assert_detail(
                app.post("/accounts", &body).await,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            )
            .await;
            let ten_megabytes = vec![b' '; 10 * 1024 * 1024];
            let response = app
                .request(reqwest::Method::POST, "/transactions")
                .header(CONTENT_TYPE, "application/json")
                .body(ten_megabytes)
                .send()
                .await;
            // The server may answer 413 before reading everything and close the connection.
            if let Ok(response) = response {
                assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
            }
            assert_eq!(app.get_json("/accounts").await, json!([]));
        },
    )
    .await;
}

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    on_each_backend(async |app| {
        let given = app
            .client
            .get(app.url("/ping"))
            .header("X-Request-Id", "trace-abc.1")
            .send()
            .await
            .unwrap();
        assert_eq!(given.headers()["x-request-id"], "trace-abc.1");
        let generated = app.get("/ping").await;
        let id = generated.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32);
        let unsafe_id = app
            .client
            .get(app.url("/ping"))
            .header("X-Request-Id", "a b<script>")
            .send()
            .await
            .unwrap();
        assert_ne!(unsafe_id.headers()["x-request-id"], "a b<script>");
        let error = app.get("/accounts/999").await;
        assert!(
            error.headers().contains_key("x-request-id"),
            "errors carry the id too"
        );
    })
    .await;
}

#[tokio::test]
async fn sql_and_unicode_in_text_fields_are_stored_verbatim() {
    on_each_backend(async |app| {
        let names = [
            "Robert'); DROP TABLE accounts;--",
            "Zoë 🦀 Ñandú",
            "\u{202e}reversed",
            "%00%27",
        ];
        for name in names {
            let response = app
                .post(
                    "/accounts",
                    &json!({"first_name": name, "last_name": "x", "address": "y"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED, "{name}");
            let account: Value = response.json().await.unwrap();
            assert_eq!(account["first_name"], name);
        }
        assert_eq!(
            app.get_json("/accounts").await.as_array().unwrap().len(),
            names.len()
        );
    })
    .await;
}

/// FastAPI reads a body sent without a content type as JSON; the Python original's clients rely on it.
#[tokio::test]
async fn a_json_body_without_a_content_type_is_read_as_json() {
    on_each_backend(async |app| {
        let response = app
            .request(reqwest::Method::POST, "/accounts")
            .body(r#"{"first_name": "Ada", "last_name": "Lovelace", "address": "London"}"#)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::CREATED);
        let account: Value = response.json().await.unwrap();
        assert_eq!(account["first_name"], "Ada");
    })
    .await;
}
