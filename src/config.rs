//! Typed settings, read once at start-up from the environment (and `.env`, loaded by `main`).

use std::{fmt, str::FromStr, time::Duration};

/// Everything the service can be told from outside. `Settings::default()` is the zero-setup
/// configuration that `cargo run --release` uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub database_url: String,
    pub host: String,
    pub port: u16,
    pub db_max_connections: u32,
    /// How long a request may wait for a database connection before it is answered 503.
    pub db_acquire_timeout: Duration,
    pub body_limit_bytes: usize,
    pub log_format: LogFormat,
    /// Serves `GET /500`, a route that always fails, for exercising error metrics and alerts.
    pub diagnostics_routes: bool,
    /// Serve `/metrics` on this separate address (for private scraping) instead of the API's port.
    pub metrics_address: Option<String>,
    /// How long a client may take to send its request head, and then its body.
    pub client_timeout: Duration,
    /// Record `http_requests_*` for every request. Off only to measure what recording costs.
    pub http_metrics: bool,
    /// Data routes need a bearer token. `false` lets every caller act as an operator, as the
    /// Python original did: for local demos only.
    pub auth_required: bool,
    /// The HS256 key tokens are signed with; every replica must share it. `None`: one is made at
    /// start, so tokens die with the process.
    pub jwt_secret: Option<Secret>,
    pub token_ttl: Duration,
    /// Created or updated at start-up with the operator role.
    pub operator: Option<(String, Secret)>,
    /// `POST /users` is open to anyone; `false` leaves user creation to operators.
    pub signup_enabled: bool,
    /// How long failed logins are remembered for throttling.
    pub login_throttle_window: Duration,
    /// Where and how traces are exported; `None` (no OTLP endpoint set): no traces at all.
    pub tracing: Option<Tracing>,
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

/// A value that must never reach a log: its `Debug` says only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://bank.db?mode=rwc".into(),
            host: "127.0.0.1".into(),
            port: 8888,
            db_max_connections: 10,
            db_acquire_timeout: Duration::from_secs(5),
            body_limit_bytes: 64 * 1024,
            log_format: LogFormat::Text,
            diagnostics_routes: true,
            metrics_address: None,
            client_timeout: Duration::from_secs(10),
            http_metrics: true,
            auth_required: true,
            jwt_secret: None,
            token_ttl: Duration::from_secs(15 * 60),
            operator: None,
            signup_enabled: true,
            login_throttle_window: Duration::from_secs(5 * 60),
            tracing: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected `text` or `json`"),
        }
    }
}

/// A variable that is set but cannot be used; shown to the operator as one clear line.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub expected: &'static str,
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

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply variables without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let var = |name: &'static str, expected: &'static str| Variable {
            name,
            expected,
            value: lookup(name).filter(|value| !value.trim().is_empty()),
        };
        // `DB_URI` is the Python original's name; its SQLAlchemy form may name a driver
        // (`postgresql+psycopg2://`), which is not part of the URL here.
        let database_url = match (var("DATABASE_URL", "").value, var("DB_URI", "").value) {
            (Some(url), _) => url,
            (None, Some(uri)) => without_driver(&uri),
            (None, None) => defaults.database_url,
        };
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError {
                variable: "DATABASE_URL",
                value: database_url,
                expected: "a sqlite:// or postgres:// URL",
            });
        }
        Ok(Self {
            database_url,
            host: var("HOST", "").value.unwrap_or(defaults.host),
            port: var("PORT", "a port number from 0 to 65535").parse_or(defaults.port)?,
            db_max_connections: var("DB_MAX_CONNECTIONS", "a whole number from 1 to 1000")
                .parse_in(1..=1000, defaults.db_max_connections)?,
            db_acquire_timeout: Duration::from_secs(
                var(
                    "DB_ACQUIRE_TIMEOUT_SECS",
                    "a whole number of seconds from 1 to 600",
                )
                .parse_in(1..=600, defaults.db_acquire_timeout.as_secs())?,
            ),
            body_limit_bytes: var(
                "BODY_LIMIT_BYTES",
                "a whole number of bytes from 1024 to 104857600",
            )
            .parse_in(1024..=100 * 1024 * 1024, defaults.body_limit_bytes)?,
            log_format: var("LOG_FORMAT", "`text` or `json`").parse_or(defaults.log_format)?,
            diagnostics_routes: var("DIAGNOSTICS_ROUTES", "`true` or `false`")
                .parse_or(defaults.diagnostics_routes)?,
            metrics_address: var("METRICS_ADDR", "").value,
            client_timeout: Duration::from_secs(
                var(
                    "CLIENT_TIMEOUT_SECS",
                    "a whole number of seconds from 1 to 600",
                )
                .parse_in(1..=600, defaults.client_timeout.as_secs())?,
            ),
            http_metrics: var("HTTP_METRICS", "`true` or `false`")
                .parse_or(defaults.http_metrics)?,
            auth_required: var("AUTH_REQUIRED", "`true` or `false`")
                .parse_or(defaults.auth_required)?,
            jwt_secret: jwt_secret(var("JWT_SECRET", "at least 32 characters"))?,
            token_ttl: Duration::from_secs(
                var(
                    "TOKEN_TTL_SECS",
                    "a whole number of seconds from 60 to 86400",
                )
                .parse_in(60..=86_400, defaults.token_ttl.as_secs())?,
            ),
            operator: operator(
                var("OPERATOR_USERNAME", ""),
                var(
                    "OPERATOR_PASSWORD",
                    "8 to 128 characters, set with OPERATOR_USERNAME",
                ),
            )?,
            signup_enabled: var("SIGNUP_ENABLED", "`true` or `false`")
                .parse_or(defaults.signup_enabled)?,
            login_throttle_window: Duration::from_secs(
                var(
                    "LOGIN_THROTTLE_SECS",
                    "a whole number of seconds from 1 to 86400",
                )
                .parse_in(1..=86_400, defaults.login_throttle_window.as_secs())?,
            ),
            tracing: tracing(&var)?,
        })
    }

    pub fn address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

fn jwt_secret(variable: Variable) -> Result<Option<Secret>, ConfigError> {
    match variable.value {
        None => Ok(None),
        Some(value) if value.len() >= 32 => Ok(Some(Secret(value))),
        Some(_) => Err(ConfigError {
            variable: variable.name,
            value: "(hidden)".into(),
            expected: variable.expected,
        }),
    }
}

/// Both or neither; the password is held to the same policy as every user's.
fn operator(
    username: Variable,
    password: Variable,
) -> Result<Option<(String, Secret)>, ConfigError> {
    match (username.value, password.value) {
        (None, None) => Ok(None),
        (Some(name), Some(secret)) if (8..=128).contains(&secret.chars().count()) => {
            Ok(Some((name, Secret(secret))))
        }
        _ => Err(ConfigError {
            variable: password.name,
            value: "(hidden)".into(),
            expected: password.expected,
        }),
    }
}

/// Traces are on when an OTLP endpoint is set, unless the SDK or the traces exporter is switched
/// off by its standard variable.
fn tracing(
    var: &impl Fn(&'static str, &'static str) -> Variable,
) -> Result<Option<Tracing>, ConfigError> {
    let disabled = var("OTEL_SDK_DISABLED", "`true` or `false`").parse_or(false)?;
    let exporter = var("OTEL_TRACES_EXPORTER", "`otlp` or `none`");
    match exporter.value.as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(_) => return Err(exporter.invalid()),
    }
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .map(|name| var(name, "an http:// URL of an OTLP/gRPC receiver"))
    .find(|endpoint| endpoint.value.is_some());
    let Some(endpoint) = endpoint.filter(|_| !disabled) else {
        return Ok(None);
    };
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        let protocol = var(name, "`grpc`, the only OTLP protocol this build speaks");
        if protocol
            .value
            .as_deref()
            .is_some_and(|value| value != "grpc")
        {
            return Err(protocol.invalid());
        }
    }
    let Some(url) = endpoint
        .value
        .clone()
        .filter(|url| url.starts_with("http://"))
    else {
        return Err(endpoint.invalid());
    };
    Ok(Some(Tracing {
        endpoint: url,
        service_name: var("OTEL_SERVICE_NAME", "")
            .value
            .unwrap_or_else(|| "bank-api".into()),
        sampler: sampler(
            var(
                "OTEL_TRACES_SAMPLER",
                "always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ),
            var("OTEL_TRACES_SAMPLER_ARG", "a ratio from 0 to 1"),
        )?,
    }))
}

fn sampler(name: Variable, arg: Variable) -> Result<Sampler, ConfigError> {
    let kind = name.value.as_deref().unwrap_or("parentbased_always_on");
    let (parent_based, kind) = match kind.strip_prefix("parentbased_") {
        Some(kind) => (true, kind),
        None => (false, kind),
    };
    let ratio = match kind {
        "always_on" => 1.0,
        "always_off" => 0.0,
        "traceidratio" => arg.parse_in(0.0..=1.0, 1.0)?,
        _ => return Err(name.invalid()),
    };
    Ok(Sampler {
        ratio,
        parent_based,
    })
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

struct Variable {
    name: &'static str,
    expected: &'static str,
    value: Option<String>,
}

impl Variable {
    fn invalid(self) -> ConfigError {
        ConfigError {
            variable: self.name,
            value: self.value.unwrap_or_default(),
            expected: self.expected,
        }
    }

    fn parse_or<T: FromStr>(self, default: T) -> Result<T, ConfigError> {
        let Some(value) = self.value else {
            return Ok(default);
        };
        value.trim().parse().map_err(|_| ConfigError {
            variable: self.name,
            value,
            expected: self.expected,
        })
    }

    fn parse_in<T: FromStr + PartialOrd>(
        self,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        let (name, expected, raw) = (self.name, self.expected, self.value.clone());
        let value = self.parse_or(default)?;
        if range.contains(&value) {
            return Ok(value);
        }
        Err(ConfigError {
            variable: name,
            value: raw.unwrap_or_default(),
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variable the service reads (`RUST_LOG` is read by env_logger).
    const VARIABLES: [&str; 24] = [
        "DATABASE_URL",
        "DB_URI",
        "HOST",
        "PORT",
        "RUST_LOG",
        "LOG_FORMAT",
        "DB_MAX_CONNECTIONS",
        "DB_ACQUIRE_TIMEOUT_SECS",
        "BODY_LIMIT_BYTES",
        "DIAGNOSTICS_ROUTES",
        "METRICS_ADDR",
        "CLIENT_TIMEOUT_SECS",
        "HTTP_METRICS",
        "AUTH_REQUIRED",
        "JWT_SECRET",
        "TOKEN_TTL_SECS",
        "OPERATOR_USERNAME",
        "OPERATOR_PASSWORD",
        "SIGNUP_ENABLED",
        "LOGIN_THROTTLE_SECS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ];

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(settings.database_url, "sqlite://bank.db?mode=rwc");
        assert_eq!(settings.address(), ("127.0.0.1", 8888));
        assert_eq!(settings.db_max_connections, 10);
        assert_eq!(settings.body_limit_bytes, 65536);
        assert_eq!(settings.log_format, LogFormat::Text);
        assert!(settings.diagnostics_routes);
        assert!(
            settings.auth_required,
            "access control is on unless switched off"
        );
        assert!(settings.signup_enabled);
        assert_eq!(
            settings.operator, None,
            "no default operator, no default password"
        );
    }

    #[test]
    fn every_variable_is_read() {
        let settings = settings(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("HOST", "0.0.0.0"),
            ("PORT", "9000"),
            ("DB_MAX_CONNECTIONS", "32"),
            ("DB_ACQUIRE_TIMEOUT_SECS", "2"),
            ("BODY_LIMIT_BYTES", "2048"),
            ("LOG_FORMAT", "json"),
            ("DIAGNOSTICS_ROUTES", "false"),
            ("METRICS_ADDR", "127.0.0.1:9464"),
            ("CLIENT_TIMEOUT_SECS", "3"),
            ("HTTP_METRICS", "false"),
        ])
        .expect("valid settings");
        assert_eq!(settings.database_url, "postgres://u@h/db");
        assert_eq!(settings.address(), ("0.0.0.0", 9000));
        assert_eq!(settings.db_max_connections, 32);
        assert_eq!(settings.db_acquire_timeout, Duration::from_secs(2));
        assert_eq!(settings.body_limit_bytes, 2048);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert!(!settings.diagnostics_routes);
        assert_eq!(settings.metrics_address.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(settings.client_timeout, Duration::from_secs(3));
        assert!(!settings.http_metrics);
    }

    /// `.env.example` and the README's table are the documentation of record: both must list every
    /// variable, and the example's values must be the real defaults.
    #[test]
    fn the_documented_defaults_are_the_real_ones() {
        let example: Vec<(&str, &str)> = include_str!("../.env.example")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .collect();
        assert_eq!(settings(&example), Ok(Settings::default()));
        let readme = include_str!("../README.md");
        for variable in VARIABLES {
            assert!(
                example.iter().any(|(name, _)| name == &variable),
                "{variable} in .env.example"
            );
            assert!(
                readme.contains(&format!("`{variable}`")),
                "{variable} in the README"
            );
        }
    }

    #[test]
    fn traces_follow_the_standard_opentelemetry_variables() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://tempo:4317");
        assert_eq!(
            settings(&[]).expect("defaults").tracing,
            None,
            "off by default"
        );
        let on = settings(&[endpoint]).expect("valid").tracing;
        assert_eq!(
            on,
            Some(Tracing {
                endpoint: "http://tempo:4317".into(),
                service_name: "bank-api".into(),
                sampler: Sampler {
                    ratio: 1.0,
                    parent_based: true
                },
            })
        );
        let cases = [
            (&[endpoint, ("OTEL_SDK_DISABLED", "true")][..], None),
            (&[endpoint, ("OTEL_TRACES_EXPORTER", "none")], None),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
                    endpoint,
                    ("OTEL_SERVICE_NAME", "bank-eu"),
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
                ],
                Some(("http://traces:4317", "bank-eu", 0.1, false)),
            ),
            (
                &[endpoint, ("OTEL_TRACES_SAMPLER", "parentbased_always_off")],
                Some(("http://tempo:4317", "bank-api", 0.0, true)),
            ),
        ];
        for (vars, expected) in cases {
            let tracing = settings(vars).expect("valid").tracing;
            let got = tracing.as_ref().map(|t| {
                (
                    t.endpoint.as_str(),
                    t.service_name.as_str(),
                    t.sampler.ratio,
                    t.sampler.parent_based,
                )
            });
            assert_eq!(got, expected, "{vars:?}");
        }
        let bad = [
            (
                &[endpoint, ("OTEL_TRACES_SAMPLER", "sometimes")][..],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                &[
                    endpoint,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                &[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "tempo:4317")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
        ];
        for (vars, variable) in bad {
            let error = settings(vars).expect_err(variable);
            assert_eq!(error.variable, variable, "{vars:?}");
        }
    }

    #[test]
    fn the_python_originals_db_uri_is_read_when_database_url_is_not_set() {
        let cases = [
            (
                &[("DB_URI", "postgresql://u:p@db/bank")][..],
                "postgresql://u:p@db/bank",
            ),
            (
                &[("DB_URI", "postgresql+psycopg2://u@db/bank")],
                "postgresql://u@db/bank",
            ),
            (
                &[
                    ("DB_URI", "postgresql://u@old/bank"),
                    ("DATABASE_URL", "postgres://u@new/bank"),
                ],
                "postgres://u@new/bank",
            ),
        ];
        for (vars, expected) in cases {
            let settings = settings(vars).expect("valid settings");
            assert_eq!(settings.database_url, expected, "{vars:?}");
        }
    }

    #[test]
    fn bad_values_name_the_variable_and_what_was_expected() {
        let cases = [
            ("PORT", "eighty", "a port number from 0 to 65535"),
            ("PORT", "70000", "a port number from 0 to 65535"),
            ("DB_MAX_CONNECTIONS", "0", "a whole number from 1 to 1000"),
            (
                "BODY_LIMIT_BYTES",
                "-1",
                "a whole number of bytes from 1024 to 104857600",
            ),
            ("LOG_FORMAT", "yaml", "`text` or `json`"),
            ("DIAGNOSTICS_ROUTES", "yes", "`true` or `false`"),
            (
                "DATABASE_URL",
                "mysql://x",
                "a sqlite:// or postgres:// URL",
            ),
        ];
        for (variable, value, expected) in cases {
            let error = settings(&[(variable, value)]).expect_err(variable);
            assert_eq!(
                error,
                ConfigError {
                    variable,
                    value: value.into(),
                    expected
                },
                "{variable}={value}"
            );
        }
    }
}
