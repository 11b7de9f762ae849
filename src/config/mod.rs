//! Typed settings, read once at start-up from the environment (and `.env`, loaded by `main`).
//!
//! `environment` declares every variable: its name, default and rule. Here they become
//! [`Settings`], with the rules that span variables (which database URL, the operator's both or
//! neither, the token key's length, when traces are on). A bad value is one [`ConfigError`] line
//! naming the variable, with a secret's value hidden.

mod environment;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, fmt, num::NonZeroU32, path::PathBuf, time::Duration};

use bank_core::database::DatabaseOptions;
use figment::{Figment, error::Kind, providers::Serialized};
use secrecy::{ExposeSecret, SecretString};

use environment::{Environment, Exporter, SamplerName};

/// Everything the service can be told from outside. `Settings::default()` is the zero-setup
/// configuration that `cargo run --release` uses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub host: String,
    pub port: u16,
    /// env_logger's filter (`RUST_LOG`).
    pub log_filter: String,
    pub db_max_connections: u32,
    /// How long a request may wait for a database connection before it is answered 503.
    pub db_acquire_timeout: Duration,
    pub body_limit_bytes: usize,
    pub log_format: LogFormat,
    /// Serves `GET /500`, a route that always fails, for exercising error metrics and alerts.
    pub diagnostics_routes: bool,
    /// Serves `GET /debug/pprof/profile` to operators: a CPU profile of the process.
    pub profiling: bool,
    /// Where CPU profiles are pushed, every 10 s, when set (`PYROSCOPE_SERVER_ADDRESS`).
    pub pyroscope: Option<Pyroscope>,
    /// A flagd flag file whose fault flags bend what the service does (`FAULT_FLAGS`), for game
    /// days; `None`, the default, and no flag has any effect.
    pub fault_flags: Option<PathBuf>,
    /// Serve `/metrics` on this separate address (for private scraping) instead of the API's port.
    pub metrics_address: Option<String>,
    /// How long a client may take to send its request head, and then its body.
    pub client_timeout: Duration,
    /// Record `http_requests_*` for every request. Off only to measure what recording costs.
    pub http_metrics: bool,
    /// Ask Postgres for accounts wanted at the same moment in one statement. Off only to measure
    /// what that saves.
    pub coalesce_reads: bool,
    /// Send Postgres the postings and transfers waiting at the same moment as one group: one
    /// statement and one commit. Off (each write step by step) only to measure what that saves.
    pub group_writes: bool,
    /// Data routes need a bearer token. `false` lets every caller act as an operator, as the
    /// Python original did: for local demos only.
    pub auth_required: bool,
    /// The HS256 key tokens are signed with; every replica must share it. `None`: one is made at
    /// start, so tokens die with the process.
    pub jwt_secret: Option<SecretString>,
    pub token_ttl: Duration,
    /// How long a refresh token may wait to be exchanged for the next.
    pub refresh_token_ttl: Duration,
    /// Created or updated at start-up with the operator role.
    pub operator: Option<(String, SecretString)>,
    /// `POST /users` is open to anyone; `false` leaves user creation to operators.
    pub signup_enabled: bool,
    /// How long failed logins are remembered for throttling.
    pub login_throttle_window: Duration,
    /// Requests each client (user, or address without a token) may send a second, in bursts of
    /// as many; `None` (`RATE_LIMIT_PER_SECOND=0`): no limit.
    pub rate_limit_per_second: Option<NonZeroU32>,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
    /// Load balancers and proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Private networks webhooks may be sent into; none by default (server-side request forgery).
    pub webhook_allowed_networks: Vec<ipnet::IpNet>,
    /// The pause after a webhook's first failed attempt, doubled after each further one.
    pub webhook_first_retry: Duration,
    /// How long a webhook endpoint's deliveries may fail, none succeeding, before it is disabled.
    pub webhook_disable_after: Duration,
    /// Where and how traces are exported; `None` (no OTLP endpoint set): no traces at all.
    pub tracing: Option<Tracing>,
}

/// A Pyroscope server and the name the profiles are filed under: traces' service name, so
/// Grafana can go from a trace to its service's profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pyroscope {
    pub server: String,
    pub service_name: String,
}

/// The standard OpenTelemetry variables, read here so a bad value stops start-up with a clear
/// message instead of being ignored by the SDK.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracing {
    /// An OTLP/gRPC receiver, `http://host:4317`.
    pub endpoint: String,
    pub service_name: String,
    pub sampler: Sampler,
}

/// `OTEL_TRACES_SAMPLER`: the share of new traces kept (`always_on` is 1, `always_off` 0), and
/// whether a caller's sampling decision in `traceparent` is followed instead (`parentbased_*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    pub ratio: f64,
    pub parent_based: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// A variable that is set but cannot be used; shown to the operator as one clear line.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    /// What was set, or `(hidden)` for a secret.
    pub value: String,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Variables whose values never appear in an error.
const SECRETS: [&str; 2] = ["JWT_SECRET", "OPERATOR_PASSWORD"];

impl Default for Settings {
    fn default() -> Self {
        Self::from_variables([]).expect("the defaults follow every rule")
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_variables(std::env::vars())
    }

    /// Reads settings from `variables` (name and value), so tests can supply them without touching
    /// the process environment. A variable set to nothing but whitespace counts as unset.
    pub fn from_variables(
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let variables: BTreeMap<String, String> = variables
            .into_iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        let invalid = |variable: &str, expected: String| ConfigError {
            variable: variable.to_owned(),
            value: shown(variable, &variables),
            expected,
        };
        let env: Environment = Figment::from(Serialized::defaults(&variables))
            .extract()
            .map_err(|error| {
                let variable = error.path.first().cloned().unwrap_or_default();
                let expected = match error.kind {
                    Kind::Message(expected) => expected,
                    Kind::UnknownVariant(_, names) => one_of(names),
                    other => other.to_string(),
                };
                invalid(&variable, expected)
            })?;
        let database_url = database_url(&env)
            .map_err(|(variable, expected)| invalid(variable, expected.into()))?;
        let tracing =
            tracing(&env).map_err(|(variable, expected)| invalid(variable, expected.into()))?;
        let pyroscope =
            pyroscope(&env).map_err(|(variable, expected)| invalid(variable, expected.into()))?;
        let jwt_secret = match env.jwt_secret {
            Some(secret) if secret.expose_secret().len() < 32 => {
                return Err(invalid("JWT_SECRET", "at least 32 characters".into()));
            }
            secret => secret,
        };
        let operator = match (env.operator_username, env.operator_password) {
            (None, None) => None,
            (Some(name), Some(password))
                if (8..=128).contains(&password.expose_secret().chars().count()) =>
            {
                Some((name, password))
            }
            _ => {
                let expected = "8 to 128 characters, set with OPERATOR_USERNAME";
                return Err(invalid("OPERATOR_PASSWORD", expected.into()));
            }
        };
        Ok(Self {
            database_url,
            host: env.host,
            port: env.port,
            log_filter: env.rust_log,
            db_max_connections: env.db_max_connections,
            db_acquire_timeout: env.db_acquire_timeout_secs,
            body_limit_bytes: env.body_limit_bytes,
            log_format: env.log_format,
            diagnostics_routes: env.diagnostics_routes,
            profiling: env.profiling,
            pyroscope,
            fault_flags: env
                .fault_flags
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            metrics_address: env.metrics_addr,
            client_timeout: env.client_timeout_secs,
            http_metrics: env.http_metrics,
            coalesce_reads: env.coalesce_reads,
            group_writes: env.group_writes,
            auth_required: env.auth_required,
            jwt_secret,
            token_ttl: env.token_ttl_secs,
            refresh_token_ttl: env.refresh_token_ttl_secs,
            operator,
            signup_enabled: env.signup_enabled,
            login_throttle_window: env.login_throttle_secs,
            rate_limit_per_second: NonZeroU32::new(env.rate_limit_per_second),
            cors_allowed_origins: env.cors_allowed_origins,
            trusted_proxies: env.trusted_proxies,
            webhook_allowed_networks: env.webhook_allowed_networks,
            webhook_first_retry: env.webhook_first_retry_ms,
            webhook_disable_after: env.webhook_disable_after_secs,
            tracing,
        })
    }

    pub fn address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Where the database is and how the pool may use it.
    pub fn database(&self) -> DatabaseOptions {
        DatabaseOptions {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
        }
    }
}

/// `` `a`, `b` or `c` ``: the values a variable may take.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A variable's value for an error line: hidden for a secret, and a database URL's password
/// replaced by `***`.
fn shown(variable: &str, variables: &BTreeMap<String, String>) -> String {
    if SECRETS.contains(&variable) {
        return "(hidden)".into();
    }
    let value = variables.get(variable).cloned().unwrap_or_default();
    let Some((scheme, rest)) = value.split_once("://") else {
        return value;
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => value,
    }
}

type Refusal = (&'static str, &'static str);

/// `DATABASE_URL`, else the Python original's `DB_URI` (whose SQLAlchemy form may name a driver,
/// `postgresql+psycopg2://`, which is not part of the URL here), else a SQLite file.
fn database_url(env: &Environment) -> Result<String, Refusal> {
    let url = match (&env.database_url, &env.db_uri) {
        (Some(url), _) => url.clone(),
        (None, Some(uri)) => without_driver(uri),
        (None, None) => "sqlite://bank.db?mode=rwc".into(),
    };
    if url.starts_with("sqlite:") || url.starts_with("postgres") {
        return Ok(url);
    }
    let variable = if env.database_url.is_some() {
        "DATABASE_URL"
    } else {
        "DB_URI"
    };
    Err((variable, "a sqlite:// or postgres:// URL"))
}

/// `scheme+driver://rest` as `scheme://rest`.
fn without_driver(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.split_once('+').map_or(scheme, |(scheme, _)| scheme);
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    }
}

/// Profiles are pushed when a server is named. A process holds one CPU profiler (a timer signal
/// and its handler), so pushing and operators' profiles on demand exclude each other.
fn pyroscope(env: &Environment) -> Result<Option<Pyroscope>, Refusal> {
    let Some(server) = &env.pyroscope_server_address else {
        return Ok(None);
    };
    let variable = "PYROSCOPE_SERVER_ADDRESS";
    if !matches!(url::Url::parse(server), Ok(url) if ["http", "https"].contains(&url.scheme())) {
        return Err((variable, "an http:// or https:// URL of a Pyroscope server"));
    }
    if env.profiling {
        let expected = "unset while PROFILING=true: a process has one CPU profiler";
        return Err((variable, expected));
    }
    Ok(Some(Pyroscope {
        server: server.clone(),
        service_name: env.otel_service_name.clone(),
    }))
}

/// Traces are on when an OTLP endpoint is set, unless the SDK or the traces exporter is switched
/// off by its standard variable.
fn tracing(env: &Environment) -> Result<Option<Tracing>, Refusal> {
    if env.otel_sdk_disabled || env.otel_traces_exporter == Some(Exporter::None) {
        return Ok(None);
    }
    let endpoint = match (
        &env.otel_exporter_otlp_traces_endpoint,
        &env.otel_exporter_otlp_endpoint,
    ) {
        (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
        (None, Some(url)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
        (None, None) => return Ok(None),
    };
    let (variable, url) = endpoint;
    if !url.starts_with("http://") {
        return Err((variable, "an http:// URL of an OTLP/gRPC receiver"));
    }
    use SamplerName::*;
    let ratio = match env.otel_traces_sampler {
        AlwaysOn | ParentbasedAlwaysOn => 1.0,
        AlwaysOff | ParentbasedAlwaysOff => 0.0,
        Traceidratio | ParentbasedTraceidratio => env.otel_traces_sampler_arg.unwrap_or(1.0),
    };
    let parent_based = matches!(
        env.otel_traces_sampler,
        ParentbasedAlwaysOn | ParentbasedAlwaysOff | ParentbasedTraceidratio
    );
    Ok(Some(Tracing {
        endpoint: url.clone(),
        service_name: env.otel_service_name.clone(),
        sampler: Sampler {
            ratio,
            parent_based,
        },
    }))
}
