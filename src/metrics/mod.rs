//! Every Prometheus metric the service exports, named and registered in one place. The catalogue
//! in docs/metrics.md is checked against this registry by a test.

pub mod exposition;
mod webhooks;

pub use webhooks::WebhookMetrics;

use std::{sync::Arc, time::SystemTime};

use actix_web_prom::{ActixMetricsConfiguration, PrometheusMetrics, PrometheusMetricsBuilder};
use bank_core::{
    authentication::{AuthError, sessions::Refused, token::Refusal},
    database::StatementObserver,
    ledger::{GroupObserver, HoldStatus, Movement, Swept},
};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{exemplar::HistogramWithExemplars, family::Family},
};
use sea_orm::{DatabaseConnection, DbBackend};

use exposition::{Format, PrometheusCrate};

/// Buckets from 1 ms to 10 s: the range an API's latencies live in.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Database statements are faster than requests: 100 µs to 5 s.
const QUERY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Writes per group, 1 to the 2,048 a group carries at most (a batch, at most 1,000, never more).
const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];
/// Routes left out of the request metrics: scrapes and probes would drown the real traffic, and a
/// profile lasts the seconds it asks for (timed, it would page for latency).
pub const UNMEASURED_ROUTES: [&str; 4] = ["/metrics", "/health", "/ready", "/debug/pprof/profile"];
/// What becomes of refresh tokens, as `bank_refresh_tokens_total` counts it.
const REFRESH_OUTCOMES: [&str; 4] = ["rotated", "refused", "reused", "revoked"];
/// The one `endpoint` label value for every path no route matched, so scans cannot grow the series.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";
/// actix-web-prom always times requests into a histogram of its own and cannot be told not to;
/// it is given this name and left out of `/metrics`, where `http_requests_duration_seconds`
/// comes from `request_duration`, which carries exemplars.
const ACTIX_WEB_PROM_HISTOGRAM: &str = "actix_web_prom_request_duration_seconds_unexported";

/// The labels of `http_requests_duration_seconds`, the same as actix-web-prom gives
/// `http_requests_total`, so the two can be divided.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub method: String,
    pub status: u16,
}

/// An exemplar's label: the trace that one observation came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabel {
    pub trace_id: String,
}

type RequestDuration = Family<RequestLabels, HistogramWithExemplars<TraceLabel>>;

/// The application's own metrics, shared by every worker.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub accounts_created: IntCounter,
    pub transactions: IntCounterVec,
    pub money_moved: IntCounterVec,
    pub transfers: IntCounter,
    pub holds: IntCounterVec,
    pub holds_pending: IntGauge,
    pub held: IntGauge,
    pub rejections: IntCounterVec,
    pub logins: IntCounterVec,
    pub tokens_refused: IntCounterVec,
    pub throttled: IntCounterVec,
    pub refresh_tokens: IntCounterVec,
    pub requests_in_flight: IntGauge,
    pub db_query_duration: HistogramVec,
    write_group_size: Histogram,
    pub background_failures: IntCounterVec,
    pub background_running: IntGaugeVec,
    pub webhooks: WebhookMetrics,
    /// `None` when `HTTP_METRICS=false`.
    request_duration: Option<RequestDuration>,
    /// What `/metrics` writes: the histogram above and, through `PrometheusCrate`, the rest.
    exposition: Arc<prometheus_client::registry::Registry>,
}

impl Metrics {
    /// `http_metrics: false` leaves out the request histogram, to measure what recording costs.
    pub fn new(http_metrics: bool) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let mut exposition = prometheus_client::registry::Registry::default();
        let request_duration = http_metrics.then(|| {
            let histogram = RequestDuration::new_with_constructor(|| {
                HistogramWithExemplars::new(LATENCY_BUCKETS.iter().copied())
            });
            exposition.register(
                "http_requests_duration_seconds",
                "HTTP request duration in seconds for all requests",
                histogram.clone(),
            );
            histogram
        });
        exposition.register_collector(Box::new(PrometheusCrate {
            registry: registry.clone(),
            hidden: ACTIX_WEB_PROM_HISTOGRAM,
        }));
        let metrics = Self {
            accounts_created: IntCounter::new("bank_accounts_created_total", "Accounts opened.")?,
            transactions: IntCounterVec::new(
                Opts::new(
                    "bank_transactions_total",
                    "Ledger postings made through POST /transactions, by kind (credit, debit, mixed).",
                ),
                &["kind"],
            )?,
            money_moved: IntCounterVec::new(
                Opts::new(
                    "bank_money_moved_minor_units_total",
                    "Money moved, in minor units, by direction (in = credits, out = debits, transfer, capture).",
                ),
                &["direction"],
            )?,
            transfers: IntCounter::new("bank_transfers_total", "Transfers completed.")?,
            holds: IntCounterVec::new(
                Opts::new(
                    "bank_holds_total",
                    "Holds placed, and holds ended, by event (placed, captured, voided, expired).",
                ),
                &["event"],
            )?,
            holds_pending: IntGauge::new(
                "bank_holds_pending",
                "Holds pending now, in every account (each replica reports the same total).",
            )?,
            held: IntGauge::new(
                "bank_held_minor_units",
                "Money pending holds reserve now, in minor units, in every account (each replica \
                 reports the same total).",
            )?,
            rejections: IntCounterVec::new(
                Opts::new(
                    "bank_rejections_total",
                    "Requests refused because of the client's input or the money rules, by reason.",
                ),
                &["reason"],
            )?,
            logins: IntCounterVec::new(
                Opts::new(
                    "bank_logins_total",
                    "Logins at POST /token, by outcome (success, bad_credentials, throttled).",
                ),
                &["outcome"],
            )?,
            tokens_refused: IntCounterVec::new(
                Opts::new(
                    "bank_tokens_refused_total",
                    "Requests whose bearer token was refused, by reason (missing, malformed, \
                     expired, bad_signature, unknown_user).",
                ),
                &["reason"],
            )?,
            throttled: IntCounterVec::new(
                Opts::new(
                    "bank_requests_throttled_total",
                    "Requests answered 429 because their client was over its request limit, by \
                     how the client was known (user, address).",
                ),
                &["client"],
            )?,
            refresh_tokens: IntCounterVec::new(
                Opts::new(
                    "bank_refresh_tokens_total",
                    "Refresh tokens, by what became of them: rotated (exchanged for the next), \
                     refused (unknown, expired or revoked), reused (sent a second time: its \
                     session is revoked), revoked (logged out).",
                ),
                &["outcome"],
            )?,
            requests_in_flight: IntGauge::new(
                "http_requests_in_flight",
                "HTTP requests being served right now.",
            )?,
            db_query_duration: HistogramVec::new(
                HistogramOpts::new(
                    "db_query_duration_seconds",
                    "Database statement duration, by statement kind and outcome.",
                )
                .buckets(QUERY_BUCKETS.to_vec()),
                &["statement", "outcome"],
            )?,
            write_group_size: Histogram::with_opts(
                HistogramOpts::new(
                    "bank_write_group_size",
                    "Writes sent to Postgres in one call of the ledger's function and one commit \
                     (a group sent in two parts counts twice).",
                )
                .buckets(GROUP_BUCKETS.to_vec()),
            )?,
            background_failures: IntCounterVec::new(
                Opts::new(
                    "bank_background_task_failures_total",
                    "Runs of a background task that failed, panicked or ended by themselves, by task.",
                ),
                &["task"],
            )?,
            background_running: IntGaugeVec::new(
                Opts::new(
                    "bank_background_tasks_running",
                    "1 while a background task runs, 0 while it waits to start again, by task.",
                ),
                &["task"],
            )?,
            webhooks: WebhookMetrics::new(&registry)?,
            registry,
            request_duration,
            exposition: Arc::new(exposition),
        };
        let build_info = IntGaugeVec::new(
            Opts::new(
                "bank_api_build_info",
                "Always 1; the labels say which build is running.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let r = &metrics.registry;
        r.register(Box::new(metrics.accounts_created.clone()))?;
        r.register(Box::new(metrics.transactions.clone()))?;
        r.register(Box::new(metrics.money_moved.clone()))?;
        r.register(Box::new(metrics.transfers.clone()))?;
        r.register(Box::new(metrics.holds.clone()))?;
        r.register(Box::new(metrics.holds_pending.clone()))?;
        r.register(Box::new(metrics.held.clone()))?;
        r.register(Box::new(metrics.rejections.clone()))?;
        r.register(Box::new(metrics.logins.clone()))?;
        r.register(Box::new(metrics.tokens_refused.clone()))?;
        r.register(Box::new(metrics.throttled.clone()))?;
        r.register(Box::new(metrics.refresh_tokens.clone()))?;
        // Every series from the start: a panel of throttled requests or of sessions shows 0, not
        // "no data".
        for client in ["user", "address"] {
            metrics.throttled.with_label_values(&[client]);
        }
        for outcome in REFRESH_OUTCOMES {
            metrics.refresh_tokens.with_label_values(&[outcome]);
        }
        r.register(Box::new(metrics.requests_in_flight.clone()))?;
        r.register(Box::new(metrics.db_query_duration.clone()))?;
        r.register(Box::new(metrics.write_group_size.clone()))?;
        r.register(Box::new(metrics.background_failures.clone()))?;
        r.register(Box::new(metrics.background_running.clone()))?;
        r.register(Box::new(build_info))?;
        Ok(metrics)
    }

    /// The actix-web-prom middleware: `http_requests_total` and `http_requests_duration_seconds`
    /// labelled by route template, on this registry; it also answers `GET /metrics` when
    /// `serve_endpoint` (that is, unless metrics have a listener of their own).
    pub fn http_middleware(
        &self,
    ) -> Result<PrometheusMetrics, Box<dyn std::error::Error + Send + Sync>> {
        // `/metrics` itself is our route (`operations::metrics`), not the middleware's endpoint,
        // so it answers the same with `HTTP_METRICS=false` and on the `METRICS_ADDR` listener.
        UNMEASURED_ROUTES
            .iter()
            .fold(PrometheusMetricsBuilder::new(""), |builder, route| {
                builder.exclude(*route)
            })
            .registry(self.registry.clone())
            .buckets(LATENCY_BUCKETS)
            .mask_unmatched_patterns(UNMATCHED_ROUTE)
            .metrics_configuration(
                ActixMetricsConfiguration::default()
                    .http_requests_duration_seconds_name(ACTIX_WEB_PROM_HISTOGRAM),
            )
            .build()
    }

    /// Times a finished request; `trace_id`, of a request whose trace is exported, becomes the
    /// exemplar of the bucket it falls in.
    pub fn observe_request(&self, labels: &RequestLabels, seconds: f64, trace_id: Option<String>) {
        let Some(histogram) = &self.request_duration else {
            return;
        };
        let exemplar = trace_id.map(|trace_id| TraceLabel { trace_id });
        histogram
            .get_or_create(labels)
            .observe(seconds, exemplar, Some(SystemTime::now()));
    }

    /// The exposition text, every family of both libraries.
    pub fn render(&self, format: Format) -> Result<String, std::fmt::Error> {
        exposition::encode(&self.exposition, format)
    }

    /// Times every statement the database runs (SeaORM's metric callback).
    pub fn instrument(&self, db: &mut DatabaseConnection) {
        let observe = self.statements();
        db.set_metric_callback(move |info| observe(info));
    }

    /// Records a statement's duration, for SeaORM's and the ledger's own statements alike.
    pub fn statements(&self) -> StatementObserver {
        let histogram = self.db_query_duration.clone();
        Arc::new(move |info| {
            let outcome = if info.failed { "error" } else { "ok" };
            histogram
                .with_label_values(&[statement_kind(&info.statement.sql), outcome])
                .observe(info.elapsed.as_secs_f64());
        })
    }

    /// Records the size of each group of writes the ledger sends.
    pub fn write_groups(&self) -> GroupObserver {
        let histogram = self.write_group_size.clone();
        Arc::new(move |writes| histogram.observe(writes as f64))
    }

    /// Exports the pool's connections in use and idle, read at scrape time.
    pub fn watch_pool(&self, db: &DatabaseConnection) -> prometheus::Result<()> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections, by state (in_use, idle, max).",
            ),
            &["state"],
        )?;
        self.registry.register(Box::new(PoolCollector {
            connections,
            db: db.clone(),
        }))
    }

    /// Counts a write that was applied in the business metrics.
    pub fn record_movement(&self, movement: &Movement) {
        match movement {
            Movement::Post(posting) => {
                self.record_posting(posting.credit.minor_units(), posting.debit.minor_units())
            }
            Movement::Transfer(transfer) => self.record_transfer(transfer.amount.minor_units()),
        }
    }

    fn record_posting(&self, credit: i64, debit: i64) {
        let kind = match (credit > 0, debit > 0) {
            (true, false) => "credit",
            (false, true) => "debit",
            _ => "mixed",
        };
        self.transactions.with_label_values(&[kind]).inc();
        self.money_moved
            .with_label_values(&["in"])
            .inc_by(credit.unsigned_abs());
        self.money_moved
            .with_label_values(&["out"])
            .inc_by(debit.unsigned_abs());
    }

    /// Counts a hold placed (`Pending`) or ended, and the money a capture moved.
    pub fn count_hold(&self, status: HoldStatus, holds: u64, captured: i64) {
        let event = match status {
            HoldStatus::Pending => "placed",
            HoldStatus::Captured => "captured",
            HoldStatus::Voided => "voided",
            HoldStatus::Expired => "expired",
        };
        self.holds.with_label_values(&[event]).inc_by(holds);
        if captured > 0 {
            self.money_moved
                .with_label_values(&["capture"])
                .inc_by(captured.unsigned_abs());
        }
    }

    /// What a round of the hold sweeper found: holds it released, and what is held now.
    pub fn record_sweep(&self, swept: Swept) {
        self.count_hold(HoldStatus::Expired, swept.expired, 0);
        self.holds_pending
            .set(i64::try_from(swept.pending).unwrap_or(i64::MAX));
        self.held.set(swept.held);
    }

    /// Counts a login at `POST /token` by its outcome.
    pub fn count_login(&self, outcome: LoginOutcome) {
        let label = match outcome {
            LoginOutcome::Success => "success",
            LoginOutcome::BadCredentials => "bad_credentials",
            LoginOutcome::Throttled => "throttled",
            LoginOutcome::Failed => return,
        };
        self.logins.with_label_values(&[label]).inc();
    }

    /// Counts a request whose bearer token was refused, by why.
    pub fn count_refused_token(&self, refusal: Refusal) {
        let label = match refusal {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Expired => "expired",
            Refusal::BadSignature => "bad_signature",
            Refusal::UnknownUser => "unknown_user",
        };
        self.tokens_refused.with_label_values(&[label]).inc();
    }

    /// Counts an exchange of a refresh token at `POST /token` by its outcome.
    pub fn count_refresh<T>(&self, exchanged: &Result<T, AuthError>) {
        let outcome = match exchanged {
            Ok(_) => "rotated",
            Err(AuthError::Refresh(Refused::Reused)) => "reused",
            Err(AuthError::Refresh(_)) => "refused",
            Err(_) => return,
        };
        self.refresh_tokens.with_label_values(&[outcome]).inc();
    }

    /// Counts a session ended by `POST /token/revoke`.
    pub fn count_revoked(&self) {
        self.refresh_tokens.with_label_values(&["revoked"]).inc();
    }

    /// Counts a request turned away by the request limit; `client` is `user` or `address`.
    pub fn count_throttled(&self, client: &str) {
        self.throttled.with_label_values(&[client]).inc();
    }

    fn record_transfer(&self, amount: i64) {
        self.transfers.inc();
        self.money_moved
            .with_label_values(&["transfer"])
            .inc_by(amount.unsigned_abs());
    }
}

/// How a login ended, as `bank_logins_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    BadCredentials,
    Throttled,
    /// Ours, not the client's (the database, hashing): not counted as a login outcome.
    Failed,
}

impl LoginOutcome {
    pub fn of<T>(login: &Result<T, AuthError>) -> Self {
        match login {
            Ok(_) => Self::Success,
            Err(AuthError::BadCredentials) => Self::BadCredentials,
            Err(AuthError::Throttled(_)) => Self::Throttled,
            Err(_) => Self::Failed,
        }
    }
}

/// A bounded label for a SQL statement: its leading keyword.
fn statement_kind(sql: &str) -> &'static str {
    const KINDS: [(&str, &str); 7] = [
        ("SELECT", "select"),
        ("INSERT", "insert"),
        ("UPDATE", "update"),
        ("DELETE", "delete"),
        ("BEGIN", "begin"),
        ("COMMIT", "commit"),
        ("ROLLBACK", "rollback"),
    ];
    let keyword = sql.split_whitespace().next().unwrap_or_default();
    KINDS
        .iter()
        .find(|(sql_keyword, _)| keyword.eq_ignore_ascii_case(sql_keyword))
        .map_or("other", |(_, label)| label)
}

struct PoolCollector {
    connections: IntGaugeVec,
    db: DatabaseConnection,
}

impl PoolCollector {
    fn read(&self) -> (u32, usize, u32) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        }
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.connections.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (size, idle, max) = self.read();
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let gauge =
            |state: &str, value: i64| self.connections.with_label_values(&[state]).set(value);
        gauge("in_use", i64::from(size) - idle);
        gauge("idle", idle);
        gauge("max", i64::from(max));
        self.connections.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::statement_kind;

    #[test]
    fn statements_are_labelled_by_their_leading_keyword() {
        assert_eq!(statement_kind("SELECT 1"), "select");
        assert_eq!(statement_kind("  update \"accounts\" SET"), "update");
        assert_eq!(statement_kind("insert into x"), "insert");
        assert_eq!(statement_kind("CREATE TABLE x"), "other");
        assert_eq!(statement_kind(""), "other");
    }
}
