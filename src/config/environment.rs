//! The variables the service reads, one field each, with its default and the rule its value must
//! follow. Filled by figment from the process environment (and `.env`, which `main` loads into
//! it); `Settings` is what the rest of the service is given.

use std::{fmt::Display, str::FromStr, time::Duration};

use ipnet::IpNet;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de::Error};

use super::LogFormat;

/// Every variable, by its name: a missing one takes the default below.
#[derive(Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct Environment {
    pub database_url: Option<String>,
    /// The Python original's name for the database URL, read when `DATABASE_URL` is not set.
    pub db_uri: Option<String>,
    pub host: String,
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// env_logger's filter.
    pub rust_log: String,
    pub log_format: LogFormat,
    #[serde(deserialize_with = "whole::<_, 1, 1000>")]
    pub db_max_connections: u32,
    #[serde(deserialize_with = "seconds::<_, 1, 600>")]
    pub db_acquire_timeout_secs: Duration,
    #[serde(deserialize_with = "bytes::<_, 1024, 104_857_600>")]
    pub body_limit_bytes: usize,
    #[serde(deserialize_with = "seconds::<_, 1, 600>")]
    pub client_timeout_secs: Duration,
    pub metrics_addr: Option<String>,
    #[serde(deserialize_with = "boolean")]
    pub diagnostics_routes: bool,
    #[serde(deserialize_with = "boolean")]
    pub profiling: bool,
    /// The name Pyroscope's own SDKs read for the server they push to.
    pub pyroscope_server_address: Option<String>,
    pub fault_flags: Option<String>,
    #[serde(deserialize_with = "boolean")]
    pub http_metrics: bool,
    #[serde(deserialize_with = "boolean")]
    pub coalesce_reads: bool,
    #[serde(deserialize_with = "boolean")]
    pub group_writes: bool,
    #[serde(deserialize_with = "boolean")]
    pub auth_required: bool,
    pub jwt_secret: Option<SecretString>,
    #[serde(deserialize_with = "seconds::<_, 60, 86_400>")]
    pub token_ttl_secs: Duration,
    #[serde(deserialize_with = "seconds::<_, 60, 7_776_000>")]
    pub refresh_token_ttl_secs: Duration,
    pub operator_username: Option<String>,
    pub operator_password: Option<SecretString>,
    #[serde(deserialize_with = "boolean")]
    pub signup_enabled: bool,
    #[serde(deserialize_with = "seconds::<_, 1, 86_400>")]
    pub login_throttle_secs: Duration,
    #[serde(deserialize_with = "whole::<_, 0, 1_000_000>")]
    pub rate_limit_per_second: u32,
    #[serde(deserialize_with = "origins")]
    pub cors_allowed_origins: Vec<String>,
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    #[serde(deserialize_with = "networks")]
    pub webhook_allowed_networks: Vec<IpNet>,
    #[serde(deserialize_with = "milliseconds::<_, 10, 3_600_000>")]
    pub webhook_first_retry_ms: Duration,
    #[serde(deserialize_with = "seconds::<_, 1, 2_592_000>")]
    pub webhook_disable_after_secs: Duration,
    #[serde(deserialize_with = "boolean")]
    pub otel_sdk_disabled: bool,
    pub otel_traces_exporter: Option<Exporter>,
    pub otel_exporter_otlp_endpoint: Option<String>,
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    pub otel_exporter_otlp_protocol: Option<Protocol>,
    pub otel_exporter_otlp_traces_protocol: Option<Protocol>,
    pub otel_service_name: String,
    pub otel_traces_sampler: SamplerName,
    #[serde(deserialize_with = "ratio")]
    pub otel_traces_sampler_arg: Option<f64>,
}

impl Default for Environment {
    /// The zero-setup configuration `cargo run --release` uses.
    fn default() -> Self {
        Self {
            database_url: None,
            db_uri: None,
            host: "127.0.0.1".into(),
            port: 8888,
            rust_log: "warn,actix_web_prom=error,access=info,bank_api=info,migration=info".into(),
            log_format: LogFormat::Text,
            db_max_connections: 10,
            db_acquire_timeout_secs: Duration::from_secs(5),
            body_limit_bytes: 64 * 1024,
            client_timeout_secs: Duration::from_secs(10),
            metrics_addr: None,
            diagnostics_routes: false,
            profiling: false,
            pyroscope_server_address: None,
            fault_flags: None,
            http_metrics: true,
            coalesce_reads: true,
            group_writes: true,
            auth_required: true,
            jwt_secret: None,
            token_ttl_secs: Duration::from_secs(15 * 60),
            refresh_token_ttl_secs: Duration::from_secs(7 * 24 * 60 * 60),
            operator_username: None,
            operator_password: None,
            signup_enabled: true,
            login_throttle_secs: Duration::from_secs(5 * 60),
            // Stripe's own limit for live traffic: no person or honest integration meets it.
            rate_limit_per_second: 100,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            webhook_allowed_networks: Vec::new(),
            webhook_first_retry_ms: Duration::from_secs(5),
            webhook_disable_after_secs: Duration::from_secs(5 * 24 * 60 * 60),
            otel_sdk_disabled: false,
            otel_traces_exporter: None,
            otel_exporter_otlp_endpoint: None,
            otel_exporter_otlp_traces_endpoint: None,
            otel_exporter_otlp_protocol: None,
            otel_exporter_otlp_traces_protocol: None,
            otel_service_name: "bank-api".into(),
            otel_traces_sampler: SamplerName::ParentbasedAlwaysOn,
            otel_traces_sampler_arg: None,
        }
    }
}

/// `OTEL_TRACES_EXPORTER`: whether traces go anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Exporter {
    Otlp,
    None,
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL`: gRPC is the only one this build speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Protocol {
    Grpc,
}

/// `OTEL_TRACES_SAMPLER`, by the specification's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

/// A value as it was set: the variable's own text, trimmed.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(String::deserialize(deserializer)?.trim().to_owned())
}

fn parsed<'de, D: Deserializer<'de>, T: FromStr>(
    deserializer: D,
    expected: impl Display,
) -> Result<T, D::Error> {
    text(deserializer)?
        .parse()
        .map_err(|_| D::Error::custom(expected))
}

fn within<'de, D: Deserializer<'de>>(
    deserializer: D,
    min: u64,
    max: u64,
    expected: String,
) -> Result<u64, D::Error> {
    let value: u64 = parsed(deserializer, &expected)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(D::Error::custom(expected))
    }
}

fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    parsed(deserializer, "`true` or `false`")
}

fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    parsed(deserializer, "a port number from 0 to 65535")
}

fn whole<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<u32, D::Error> {
    let expected = format!("a whole number from {MIN} to {MAX}");
    let value = within(deserializer, MIN, MAX, expected.clone())?;
    u32::try_from(value).map_err(|_| D::Error::custom(expected))
}

fn bytes<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<usize, D::Error> {
    let expected = format!("a whole number of bytes from {MIN} to {MAX}");
    let value = within(deserializer, MIN, MAX, expected.clone())?;
    usize::try_from(value).map_err(|_| D::Error::custom(expected))
}

fn seconds<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let expected = format!("a whole number of seconds from {MIN} to {MAX}");
    within(deserializer, MIN, MAX, expected).map(Duration::from_secs)
}

fn milliseconds<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let expected = format!("a whole number of milliseconds from {MIN} to {MAX}");
    within(deserializer, MIN, MAX, expected).map(Duration::from_millis)
}

fn ratio<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let expected = "a ratio from 0 to 1";
    let value: f64 = parsed(deserializer, expected)?;
    if (0.0..=1.0).contains(&value) {
        Ok(Some(value))
    } else {
        Err(D::Error::custom(expected))
    }
}

/// Browser origins allowed to call the API: exact `scheme://host[:port]` values, comma-separated.
/// `*` is refused: every data request carries a bearer token, which no page of any origin should
/// be able to spend.
fn origins<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let expected = "exact origins such as https://app.example.com, comma-separated \
                    (`*` is refused: requests carry bearer tokens)";
    let origins: Vec<String> = text(deserializer)?
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(str::to_owned)
        .collect();
    let exact = |origin: &String| {
        let Some((scheme, host)) = origin.split_once("://") else {
            return false;
        };
        matches!(scheme, "http" | "https")
            && !host.is_empty()
            && !host.contains(['/', '?', '#', '*', '@', ' '])
    };
    if origins.iter().all(exact) {
        Ok(origins)
    } else {
        Err(D::Error::custom(expected))
    }
}

/// The proxies whose `X-Forwarded-For` is believed: addresses or CIDR networks, comma-separated.
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let expected = "addresses or networks such as 10.0.0.0/8 or 192.0.2.7, comma-separated";
    text(deserializer)?
        .split(',')
        .map(str::trim)
        .filter(|network| !network.is_empty())
        .map(|network| {
            network
                .parse::<IpNet>()
                .or_else(|_| network.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| D::Error::custom(expected))
        })
        .collect()
}
