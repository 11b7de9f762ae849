//! Builds the server: database, metrics, middleware order and routes. Read top to bottom to see
//! where a request goes. `main` and every test use this same builder.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::{
    App, HttpServer,
    dev::{Server, ServerHandle},
    http::header,
    middleware::{Condition, DefaultHeaders, ErrorHandlers, NormalizePath, from_fn},
    web::{self, Data},
};
use bank_core::{
    authentication::{Auth, AuthError, AuthOptions, directory, users},
    database,
    domain::{DomainError, Password, Username},
    ledger,
};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::scope;

use crate::{
    background::Background,
    config::Settings,
    extract,
    faults::{self, Faults},
    metrics::Metrics,
    middleware,
    profiling::Pusher,
    routes::{self, docs, fallback, operations},
    state::AppState,
    telemetry::{self, RequestSpan},
    webhooks::{Dispatcher, Retries, addresses::Allowed},
};

/// How often each replica releases the holds past their expiry.
const HOLD_EXPIRY_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);
/// How often each replica forgets the clients that are back to a full request count.
const RATE_LIMIT_SWEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);
/// How long in-flight requests get to finish after SIGTERM or SIGINT.
const SHUTDOWN_GRACE_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] DbErr),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot set up metrics: {0}")]
    Metrics(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot start pushing CPU profiles (PYROSCOPE_SERVER_ADDRESS): {0}")]
    Profiles(#[from] pyroscope::PyroscopeError),
    #[error(transparent)]
    FaultFlags(#[from] faults::FlagsError),
    #[error("cannot set up webhook delivery: {0}")]
    Webhooks(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot set up the operator account (OPERATOR_USERNAME): {0}")]
    OperatorCredentials(#[source] DomainError),
    #[error("cannot set up the operator account (OPERATOR_USERNAME): {0}")]
    Operator(#[source] AuthError),
    #[error("cannot write the OpenAPI document: {0}")]
    Document(#[source] serde_json::Error),
}

impl From<prometheus::Error> for StartupError {
    fn from(error: prometheus::Error) -> Self {
        Self::Metrics(Box::new(error))
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// The private `/metrics` listener and its port, when `METRICS_ADDR` asks for one.
    metrics_server: Option<(u16, Server)>,
    /// Everything that runs besides requests; stopped once the servers have stopped.
    background: Background,
    /// Continuous profiling, when `PYROSCOPE_SERVER_ADDRESS` names a server.
    profiles: Option<Pusher>,
    db: DatabaseConnection,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let metrics = Metrics::new(settings.http_metrics)?;
        let database::Pools {
            requests: mut db,
            background: mut tasks_db,
        } = database::connect(&settings.database()).await?;
        metrics.instrument(&mut db);
        metrics.instrument(&mut tasks_db);
        metrics.watch_pool(&db)?;
        let traced = settings.tracing.is_some();
        let prometheus = metrics.http_middleware().map_err(StartupError::Metrics)?;
        if let Some((username, password)) = &settings.operator {
            let username = Username::parse(username).map_err(StartupError::OperatorCredentials)?;
            let password = Password::parse(password.expose_secret())
                .map_err(StartupError::OperatorCredentials)?;
            users::ensure_operator(&tasks_db, &username, &password)
                .await
                .map_err(StartupError::Operator)?;
        }
        let auth = authentication(&settings);
        let optional = routes::Optional {
            metrics: settings.metrics_address.is_none(),
            diagnostics: settings.diagnostics_routes,
            profiling: settings.profiling,
        };
        let api = docs::document(optional, settings.rate_limit_per_second);
        let flags = match &settings.fault_flags {
            Some(path) => {
                Some(faults::open(path, api.paths.paths.keys().cloned().collect()).await?)
            }
            None => None,
        };
        let state = Data::new(AppState {
            faults: Faults::new(&metrics.registry)?,
            accounts: ledger::Accounts::new(
                db.clone(),
                settings.coalesce_reads,
                metrics.statements(),
            ),
            ledger: ledger::Ledger::new(
                db.clone(),
                settings.group_writes,
                settings.db_acquire_timeout,
                metrics.write_groups(),
            ),
            db: db.clone(),
            metrics,
            auth,
            rate_limits: settings
                .rate_limit_per_second
                .map(|limit| std::sync::Arc::new(middleware::RateLimits::new(limit))),
            trusted_proxies: settings.trusted_proxies.clone(),
            webhook_addresses: Allowed::new(settings.webhook_allowed_networks.clone()),
        });
        let dispatcher = Dispatcher::new(
            tasks_db.clone(),
            state.webhook_addresses.clone(),
            routes::webhooks::render,
            Retries {
                first: settings.webhook_first_retry,
                disable_after: settings.webhook_disable_after,
            },
            state.metrics.webhooks.clone(),
        )
        .map_err(|error| StartupError::Webhooks(Box::new(error)))?;
        let background = background(&state, tasks_db, dispatcher, flags);
        let metrics_server = match &settings.metrics_address {
            Some(address) => Some(metrics_server(address, state.clone())?),
            None => None,
        };

        let listen_error = |source| StartupError::Listen {
            address: format!("{}:{}", settings.host, settings.port),
            source,
        };
        let listener = TcpListener::bind(settings.address()).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let faulty = settings.fault_flags.is_some();
        let allowed = Data::new(fallback::AllowedMethods::from_openapi(&api));
        let published = Data::new(docs::Published::new(&api).map_err(StartupError::Document)?);
        drop(api);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(allowed.clone())
                .app_data(published.clone())
                .app_data(web::PayloadConfig::new(settings.body_limit_bytes))
                .app_data(extract::BodyTimeout(settings.client_timeout))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                // The docs come first: Swagger UI's pages live under `/docs/`, slash kept.
                .service(docs::root)
                .service(docs::docs_without_slash)
                .service(docs::swagger_ui())
                .service(docs::openapi_json)
                .service(docs::redoc)
                .service(docs::redoc_bundle)
                .service(docs::redoc_init)
                .service(docs::redoc_style)
                // The Python original's clients call `/accounts/` and the docs say `/accounts`:
                // both are answered directly, without a redirect. Each client's requests are
                // counted against its limit (429 beyond it) before any route runs. Nothing the API
                // answers, its errors and 429s included, may be kept by a cache: it carries
                // customer data and tokens.
                .service(
                    scope("")
                        .configure(|config| routes::configure(config, optional))
                        .wrap(NormalizePath::trim())
                        .wrap(from_fn(middleware::rate_limit))
                        .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store"))),
                )
                .default_service(web::to(fallback::no_route))
                // The last `wrap` is the first a request meets. In that order:
                // 1. actix-web-prom counts every answer in `http_requests_total`; errors are
                //    responses by then;
                // 2. the request's span (when traces are on): everything inside runs in it, so
                //    log lines, statement spans and the latency exemplar belong to its trace; a
                //    request the sampler does not trace runs in none, holding its ids instead;
                // 3. the request id, on the span and in `X-Request-Id`;
                // 4. `traceresponse`;
                // 5. the security headers on every answer (no sniffing, no framing, CSP);
                // 6. the access log, and a 5xx's cause;
                // 7. latency, in-flight gauge and refusals in the metrics;
                // 8. a JSON `{"detail": ...}` for errors that arrive without one;
                // 9. CORS, for the origins `CORS_ALLOWED_ORIGINS` lists (preflights end here);
                // 10. the faults the flags of `FAULT_FLAGS` ask of the route, if it is set;
                // then the routes.
                .wrap(Condition::new(faulty, from_fn(faults::inject)))
                .wrap(Condition::new(
                    !settings.cors_allowed_origins.is_empty(),
                    cors(&settings.cors_allowed_origins),
                ))
                .wrap(ErrorHandlers::new().default_handler(middleware::json_detail))
                .wrap(from_fn(middleware::request_metrics))
                .wrap(from_fn(middleware::access_log))
                .wrap(from_fn(middleware::security_headers))
                .wrap(from_fn(middleware::trace_response))
                .wrap(from_fn(middleware::request_id))
                .wrap(Condition::new(traced, from_fn(telemetry::in_untraced)))
                .wrap(Condition::new(traced, TracingLogger::<RequestSpan>::new()))
                .wrap(Condition::new(settings.http_metrics, prometheus.clone()))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .client_request_timeout(settings.client_timeout)
        .listen(listener)
        .map_err(listen_error)?
        .run();
        let profiles = settings.pyroscope.as_ref().map(Pusher::start).transpose()?;
        Ok(Self {
            port,
            server,
            metrics_server,
            background,
            profiles,
            db,
        })
    }

    /// The port actually bound: the configured one, or the one the OS chose for port 0.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// The pool the server uses, for tests that inspect or break the database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Stops the server as SIGTERM does, for tests.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM, lets in-flight requests finish, then stops the
    /// background work.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics_server {
            Some((_, metrics_server)) => tokio::try_join!(self.server, metrics_server).map(|_| ()),
            None => self.server.await,
        };
        self.background.stop().await;
        if let Some(profiles) = self.profiles {
            // The last seconds' samples are pushed before the process ends.
            let _ = tokio::task::spawn_blocking(move || profiles.stop()).await;
        }
        served
    }
}

/// Authentication as the settings ask, with a warning for each setting that is fine for trying
/// the service out and wrong in production.
fn authentication(settings: &Settings) -> Auth {
    if settings.jwt_secret.is_none() {
        log::warn!(
            "JWT_SECRET is not set: tokens are signed with a key made at start, so they stop \
             working when this process stops and other replicas refuse them"
        );
    }
    if !settings.auth_required {
        log::warn!(
            "AUTH_REQUIRED=false: every caller is treated as an operator and can read and move \
             every account's money. Use this for local demos only"
        );
    }
    Auth::new(AuthOptions {
        signing_key: settings.jwt_secret.as_ref(),
        token_ttl: settings.token_ttl,
        refresh_token_ttl: settings.refresh_token_ttl,
        throttle_window: settings.login_throttle_window,
        required: settings.auth_required,
        signup_enabled: settings.signup_enabled,
    })
}

/// `/metrics` alone on its own address, so scraping can stay on a private network while the API
/// is public. It serves the same registry as the API's middleware records into.
fn metrics_server(address: &str, state: Data<AppState>) -> Result<(u16, Server), StartupError> {
    let listen_error = |source| StartupError::Listen {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(operations::metrics)
            .wrap(from_fn(middleware::security_headers))
    })
    .workers(1)
    .listen(listener)
    .map_err(listen_error)?
    .run();
    Ok((port, server))
}

/// Browser pages of these origins may call the API with a bearer token; the headers a client
/// reads (the next page's link, the request id, a replay, when to retry, what its limit leaves)
/// are exposed to them.
/// A request from any other origin is served without CORS headers, so the browser blocks it,
/// while clients that are not browsers are unaffected.
fn cors(origins: &[String]) -> Cors {
    let exposed = [
        "link",
        "x-request-id",
        "idempotent-replayed",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "traceresponse",
        "www-authenticate",
    ];
    origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
            "traceparent",
            "tracestate",
        ])
        .expose_headers(exposed)
        .max_age(600)
}

/// Every task the server runs besides requests, each on the pool `db` unless it says otherwise.
fn background(
    state: &Data<AppState>,
    db: DatabaseConnection,
    dispatcher: Dispatcher,
    flags: Option<faults::Flags>,
) -> Background {
    let mut background = Background::new(&state.metrics);
    // A game day's faults are applied as the flags file says, from a second after it says so,
    // to the requests' pool.
    if let Some(flags) = flags {
        let faults = state.clone();
        background.spawn("fault_flags", move || {
            let (state, flags) = (faults.clone(), flags.clone());
            async move {
                let pause = state.ledger.pause();
                state.faults.keep_applying(&flags, &state.db, pause).await
            }
        });
    }
    // Every replica sends the webhooks that are due; a lease keeps each message to one sender.
    let dispatcher = std::sync::Arc::new(dispatcher);
    background.spawn("webhook_dispatcher", move || {
        let dispatcher = dispatcher.clone();
        async move { dispatcher.run().await }
    });
    // Each replica remembers its users (no read per request) only while it hears of changes.
    if db.get_database_backend() == DbBackend::Postgres {
        let options = db.get_postgres_connection_pool().connect_options();
        let directory = state.auth.directory.clone();
        background.spawn("user_directory", move || {
            directory::listen(directory.clone(), (*options).clone())
        });
    }
    // Every replica releases holds past their expiry, within a second of it; each hold expires
    // once however many replicas sweep.
    let (holds, holds_db) = (state.clone(), db.clone());
    background.spawn("hold_expiry", move || {
        let (state, db) = (holds.clone(), holds_db.clone());
        async move {
            let swept = |swept| state.metrics.record_sweep(swept);
            ledger::keep_holds_expiring(&db, HOLD_EXPIRY_PERIOD, swept).await
        }
    });
    // Clients whose request count is full again are forgotten, so memory follows the clients
    // of the last minute, not every address ever seen.
    if let Some(limits) = &state.rate_limits {
        let limits = limits.clone();
        background.spawn("rate_limit_sweeper", move || {
            let limits = limits.clone();
            async move { limits.keep_forgetting(RATE_LIMIT_SWEEP_PERIOD).await }
        });
    }
    // Every replica forgets the refresh tokens past their expiry; one replica doing it would be
    // enough.
    let (sessions, sessions_db) = (state.clone(), db.clone());
    background.spawn("refresh_token_sweeper", move || {
        let (state, db) = (sessions.clone(), sessions_db.clone());
        async move { state.auth.sessions.keep_swept(&db).await }
    });
    // Every replica forgets the ended windows of failed logins, so the table holds only the
    // current ones; one replica doing it would be enough.
    let state = state.clone();
    background.spawn("login_sweeper", move || {
        let (state, db) = (state.clone(), db.clone());
        async move { state.auth.throttle.keep_swept(&db).await }
    });
    background
}
