use std::time::Duration;

use bank_api::{config::Settings, startup::Application};
use entity::account;
use reqwest::{Response, StatusCode};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::{Value, json};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The operator's bearer token, sent by `get`, `post` and `post_with_key`; `None` when access
    /// control is off.
    pub token: Option<String>,
    /// The server's own pool, to inspect stored rows or to break the database on purpose.
    pub db: DatabaseConnection,
    pub settings: Settings,
    /// `http://127.0.0.1:port` of the separate metrics listener, when `metrics_address` is set.
    pub metrics_address: Option<String>,
}

/// Runs `test` against a fresh app on SQLite, then on Postgres when `TEST_DATABASE_URL` is set.
/// A set but unreachable Postgres fails the test: it is never skipped silently.
pub async fn on_each_backend(test: impl AsyncFn(TestApp)) {
    on_each_backend_with(|_| {}, test).await;
}

pub async fn on_each_backend_with(configure: impl Fn(&mut Settings), test: impl AsyncFn(TestApp)) {
    let mut settings = sqlite_settings();
    configure(&mut settings);
    test(TestApp::spawn(settings).await).await;
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        let mut settings = postgres_settings().await;
        configure(&mut settings);
        test(TestApp::spawn(settings).await).await;
    }
}

/// The shipped defaults (access control on), with a known signing key and an operator account,
/// on a free port. `open_access.rs` tests `AUTH_REQUIRED=false`.
pub fn test_settings() -> Settings {
    Settings {
        host: "127.0.0.1".into(),
        port: 0,
        jwt_secret: Some(TEST_JWT_SECRET.into()),
        operator: Some((OPERATOR.0.into(), OPERATOR.1.into())),
        // Webhooks in tests go to receivers on this machine.
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
        ..Settings::default()
    }
}

/// Test settings on a fresh SQLite file, for tests that need only one backend.
pub fn sqlite_settings() -> Settings {
    Settings {
        database_url: crate::common::sqlite_database(),
        ..test_settings()
    }
}

/// Test settings on a fresh database of `TEST_DATABASE_URL`'s server, for tests of what only
/// Postgres does (they are ignored without it: `postgres_tests` in `build.rs`).
pub async fn postgres_settings() -> Settings {
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    Settings {
        database_url: postgres_database(&server).await,
        ..test_settings()
    }
}

pub use crate::common::postgres_database;

impl TestApp {
    pub async fn spawn(settings: Settings) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("the application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.db().clone();
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let mut app = Self {
            address,
            client,
            token: None,
            db,
            settings,
            metrics_address,
        };
        if app.settings.auth_required {
            app.token = Some(app.operator().await.token);
        }
        app
    }

    /// A second server process' view: a new app on the same database.
    pub async fn restart(&self) -> Self {
        Self::spawn(self.settings.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request as the operator (or as anyone, when access control is off).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// A request without a token.
    pub async fn anonymous(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let request = self.client.request(method, self.url(path));
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.expect("a request without a token")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        ok_json(self.get(path).await, path).await
    }

    pub async fn create_account(&self) -> i64 {
        let response = self
            .post(
                "/accounts",
                &json!({"first_name": "Ada", "last_name": "Lovelace", "address": "London"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let account: Value = response.json().await.expect("JSON account");
        account["id"].as_i64().expect("an integer id")
    }

    /// An account holding `balance` minor units.
    pub async fn funded_account(&self, balance: i64) -> i64 {
        let id = self.create_account().await;
        if balance > 0 {
            let response = self
                .post(
                    "/transactions",
                    &json!({"acc_id": id, "credit": balance, "debit": 0}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        id
    }

    /// Stores `balance` directly, to reach balances no single request may credit.
    pub async fn set_balance(&self, account_id: i64, balance: i64) {
        account::ActiveModel {
            id: Set(account_id),
            balance: Set(balance),
            ..Default::default()
        }
        .update(&self.db)
        .await
        .expect("the balance is stored");
    }

    pub async fn balance(&self, account_id: i64) -> i64 {
        let body = self
            .get_json(&format!("/accounts/{account_id}/balance"))
            .await;
        body["balance"].as_i64().expect("an integer balance")
    }

    pub async fn ledger_len(&self) -> usize {
        let rows = self.get_json("/transactions?limit=1000").await;
        rows.as_array().expect("a list").len()
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }
}

/// The JSON body of a 200 answer to `GET path`.
async fn ok_json(response: Response, path: &str) -> Value {
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.expect("JSON body")
}

/// The value of one sample in Prometheus text, e.g. `http_requests_total{endpoint="/ping",...}`;
/// labels may be given in any order but must all match.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !(rest.is_empty() || rest.starts_with('{')) {
            return None;
        }
        let all_match = labels
            .iter()
            .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
        all_match.then(|| value.parse().ok()).flatten()
    })
}

/// Asserts a FastAPI-style 422 whose first problem is at `loc`.
pub async fn assert_validation_error(response: Response, loc: &[&str], case: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{case}"
    );
    let body: Value = response.json().await.expect("JSON error body");
    let detail = body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: detail is a list: {body}"));
    let locs: Vec<Value> = detail.iter().map(|error| error["loc"].clone()).collect();
    assert!(
        locs.contains(&json!(loc)),
        "{case}: expected loc {loc:?} in {body}"
    );
    for error in detail {
        assert!(
            error["msg"].is_string() && error["type"].is_string(),
            "{case}: {error}"
        );
    }
}

pub async fn assert_detail(response: Response, status: StatusCode, detail: &str) {
    assert_eq!(response.status(), status, "expected {status} {detail}");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body, json!({"detail": detail}));
}

/// The HS256 key test apps sign tokens with, so tests can forge tokens of every kind.
pub const TEST_JWT_SECRET: &str = "a test key of at least thirty-two characters";
pub const OPERATOR: (&str, &str) = ("operator", "operator password");

/// A logged-in user's view of the API: every request carries their bearer token.
pub struct Session<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl TestApp {
    pub async fn log_in(&self, username: &str, password: &str) -> Response {
        self.log_in_from(username, password, None).await
    }

    /// A login whose request carries `X-Forwarded-For: forwarded_for`, as a proxy would add.
    pub async fn log_in_from(
        &self,
        username: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> Response {
        let request = self
            .client
            .post(self.url("/token"))
            .form(&[("username", username), ("password", password)]);
        let request = match forwarded_for {
            Some(hops) => request.header("X-Forwarded-For", hops),
            None => request,
        };
        request.send().await.expect("POST /token")
    }

    /// Signs `username` up as a customer, as anyone may, and logs them in.
    pub async fn customer(&self, username: &str) -> Session<'_> {
        let password = format!("{username} password");
        let body = json!({"username": username, "password": password});
        let signed_up = self
            .anonymous(reqwest::Method::POST, "/users", Some(&body))
            .await;
        assert_eq!(
            signed_up.status(),
            StatusCode::CREATED,
            "sign up {username}"
        );
        self.session(username, &password).await
    }

    /// The id `username` was stored under.
    pub async fn user_id(&self, username: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        self.db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                self.db.get_database_backend(),
                match self.db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => "SELECT id FROM users WHERE username = $1",
                    _ => "SELECT id FROM users WHERE username = ?",
                },
                [username.into()],
            ))
            .await
            .expect("a query")
            .expect("the user")
            .try_get_by_index(0)
            .expect("an id")
    }

    pub async fn operator(&self) -> Session<'_> {
        self.session(OPERATOR.0, OPERATOR.1).await
    }

    async fn session(&self, username: &str, password: &str) -> Session<'_> {
        let response = self.log_in(username, password).await;
        assert_eq!(response.status(), StatusCode::OK, "log in {username}");
        let body: Value = response.json().await.expect("a token");
        Session {
            app: self,
            token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        }
    }
}

impl Session<'_> {
    pub async fn get(&self, path: &str) -> Response {
        self.app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        ok_json(self.get(path).await, path).await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: &Value) -> Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// An account of this user's holding `balance`.
    pub async fn funded_account(&self, balance: i64) -> i64 {
        let account = json!({"first_name": "Ada", "last_name": "Lovelace", "address": "London"});
        let response = self.post("/accounts", &account).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let id = response.json::<Value>().await.expect("an account")["id"]
            .as_i64()
            .expect("an id");
        if balance > 0 {
            let credit = self
                .post("/transactions", &json!({"acc_id": id, "credit": balance}))
                .await;
            assert_eq!(credit.status(), StatusCode::CREATED);
        }
        id
    }
}
