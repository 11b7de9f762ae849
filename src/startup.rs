//! Builds the server: database, metrics, middleware order and routes. Read top to bottom to see
//! where a request goes. `main` and every test use this same builder.

use std::net::TcpListener;

use actix_web::{
    App, HttpServer,
    dev::Server,
    middleware::{Condition, from_fn},
    web::{self, Data},
};
use sea_orm::{DatabaseConnection, DbErr};
use tracing_actix_web::TracingLogger;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    authentication::{Auth, users},
    config::Settings,
    db, extract,
    metrics::Metrics,
    middleware,
    routes::{
        accounts,
        docs::{self, ApiDoc},
        fallback, operations, transactions, transfers, users as user_routes,
    },
    state::AppState,
    telemetry::RequestSpan,
};

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
    Metrics(String),
    #[error("cannot set up the operator account (OPERATOR_USERNAME): {0}")]
    Operator(String),
}

pub struct Application {
    port: u16,
    server: Server,
    /// The private `/metrics` listener and its port, when `METRICS_ADDR` asks for one.
    metrics_server: Option<(u16, Server)>,
    db: DatabaseConnection,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let metrics = Metrics::new(settings.http_metrics)
            .map_err(|e| StartupError::Metrics(e.to_string()))?;
        let mut db = db::connect(&settings).await?;
        metrics.instrument(&mut db);
        metrics
            .watch_pool(&db)
            .map_err(|e| StartupError::Metrics(e.to_string()))?;
        let separate_metrics = settings.metrics_address.is_some();
        let traced = settings.tracing.is_some();
        let prometheus = metrics
            .http_middleware()
            .map_err(|e| StartupError::Metrics(e.to_string()))?;
        if let Some((username, password)) = &settings.operator {
            users::ensure_operator(&db, username, password.expose())
                .await
                .map_err(StartupError::Operator)?;
        }
        let state = Data::new(AppState {
            db: db.clone(),
            metrics,
            auth: Auth::new(&settings),
            settle_within: settings.db_acquire_timeout,
        });
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
        let server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(settings.body_limit_bytes))
                .app_data(extract::BodyTimeout(settings.client_timeout))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                .service(user_routes::create_user)
                .service(user_routes::create_token)
                .service(accounts::create_account)
                .service(accounts::list_accounts)
                .service(accounts::get_account)
                .service(accounts::get_balance)
                .service(accounts::list_account_transactions)
                .service(transactions::create_transaction)
                .service(transactions::list_transactions)
                .service(transactions::get_transaction)
                .service(transfers::create_transfer)
                .service(operations::ping)
                .service(operations::health)
                .service(operations::ready)
                .configure(|config| {
                    if !separate_metrics {
                        config.service(operations::metrics);
                    }
                    if settings.diagnostics_routes {
                        config.service(operations::fail);
                    }
                })
                .split_for_parts();
            let mut api = api;
            transactions::PostingNeedsAnAmount.modify(&mut api);
            app.app_data(fallback::AllowedMethods::from_openapi(&api))
                .service(docs::root)
                .service(docs::docs_without_slash)
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api.clone()))
                .service(docs::redoc(api))
                .service(docs::redoc_bundle)
                .default_service(web::to(fallback::no_route))
                // The last `wrap` runs first: Prometheus counts every request as a response,
                // because `observe` turns every error into one before it gets there; `observe`
                // and everything inside it run in the request's span, so their log lines,
                // statement spans and the latency exemplar belong to its trace.
                .wrap(from_fn(middleware::observe))
                .wrap(Condition::new(traced, TracingLogger::<RequestSpan>::new()))
                .wrap(Condition::new(settings.http_metrics, prometheus.clone()))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .client_request_timeout(settings.client_timeout)
        .listen(listener)
        .map_err(listen_error)?
        .run();
        Ok(Self {
            port,
            server,
            metrics_server,
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

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics_server {
            Some((_, metrics_server)) => {
                tokio::try_join!(self.server, metrics_server)?;
                Ok(())
            }
            None => self.server.await,
        }
    }
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
    })
    .workers(1)
    .listen(listener)
    .map_err(listen_error)?
    .run();
    Ok((port, server))
}
