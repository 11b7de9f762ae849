use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_variables(
        vars.iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    )
}

/// The service's part of `.env.example` (the rest configures the compose stack).
fn example() -> Vec<(&'static str, &'static str)> {
    let example = include_str!("../../.env.example");
    let service = example
        .split("# ---- The compose stack")
        .next()
        .expect("the service's section");
    service
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect()
}

#[test]
fn nothing_set_gives_the_documented_defaults() {
    let settings = settings(&[]).expect("defaults are valid");
    assert_eq!(settings.database_url, "sqlite://bank.db?mode=rwc");
    assert_eq!(settings.address(), ("127.0.0.1", 8888));
    assert_eq!(settings.db_max_connections, 10);
    assert_eq!(settings.body_limit_bytes, 65536);
    assert_eq!(settings.log_format, LogFormat::Text);
    assert!(!settings.diagnostics_routes, "no route fails on purpose");
    assert!(!settings.profiling, "nobody can profile the process");
    assert_eq!(settings.pyroscope, None, "no profile leaves the process");
    assert!(
        settings.cors_allowed_origins.is_empty(),
        "no origin is allowed"
    );
    assert!(
        settings.trusted_proxies.is_empty(),
        "X-Forwarded-For is believed from no one"
    );
    assert!(
        settings.auth_required,
        "access control is on unless switched off"
    );
    assert!(settings.signup_enabled);
    assert!(
        settings.operator.is_none(),
        "no default operator, no default password"
    );
    assert!(settings.jwt_secret.is_none());
}

#[test]
fn every_variable_is_read() {
    let settings = settings(&[
        ("DATABASE_URL", "postgres://u@h/db"),
        ("HOST", "0.0.0.0"),
        ("PORT", "9000"),
        ("RUST_LOG", "debug"),
        ("DB_MAX_CONNECTIONS", "32"),
        ("DB_ACQUIRE_TIMEOUT_SECS", "2"),
        ("BODY_LIMIT_BYTES", "2048"),
        ("LOG_FORMAT", "json"),
        ("DIAGNOSTICS_ROUTES", "false"),
        ("METRICS_ADDR", "127.0.0.1:9464"),
        ("CLIENT_TIMEOUT_SECS", "3"),
        ("HTTP_METRICS", "false"),
        ("AUTH_REQUIRED", "false"),
        ("JWT_SECRET", "0123456789012345678901234567890123"),
        ("TOKEN_TTL_SECS", "60"),
        ("REFRESH_TOKEN_TTL_SECS", "3600"),
        ("OPERATOR_USERNAME", "root"),
        ("OPERATOR_PASSWORD", "00000000012"),
        ("SIGNUP_ENABLED", "false"),
        ("LOGIN_THROTTLE_SECS", "7"),
        ("RATE_LIMIT_PER_SECOND", "250"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://127.0.0.1:5173",
        ),
        ("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,fd00::/8"),
    ])
    .expect("valid settings");
    assert_eq!(settings.database_url, "postgres://u@h/db");
    assert_eq!(settings.address(), ("0.0.0.0", 9000));
    assert_eq!(settings.log_filter, "debug");
    assert_eq!(settings.db_max_connections, 32);
    assert_eq!(settings.db_acquire_timeout, Duration::from_secs(2));
    assert_eq!(settings.body_limit_bytes, 2048);
    assert_eq!(settings.log_format, LogFormat::Json);
    assert!(!settings.diagnostics_routes);
    assert_eq!(settings.metrics_address.as_deref(), Some("127.0.0.1:9464"));
    assert_eq!(settings.client_timeout, Duration::from_secs(3));
    assert!(!settings.http_metrics);
    assert!(!settings.auth_required);
    // Secrets that look like numbers are kept as the text they are.
    assert_eq!(
        settings.jwt_secret.as_ref().map(|s| s.expose_secret()),
        Some("0123456789012345678901234567890123")
    );
    assert_eq!(settings.token_ttl, Duration::from_secs(60));
    assert_eq!(settings.refresh_token_ttl, Duration::from_secs(3600));
    let (name, password) = settings.operator.expect("an operator");
    assert_eq!(
        (name.as_str(), password.expose_secret()),
        ("root", "00000000012")
    );
    assert!(!settings.signup_enabled);
    assert_eq!(settings.login_throttle_window, Duration::from_secs(7));
    assert_eq!(settings.rate_limit_per_second, NonZeroU32::new(250));
    assert_eq!(
        settings.cors_allowed_origins,
        ["https://app.example.com", "http://127.0.0.1:5173"]
    );
    let proxies: Vec<String> = settings
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
}

/// On by default, at a rate no person meets; `0` is the benchmark's way to switch it off.
#[test]
fn requests_are_limited_unless_the_limit_is_zero() {
    assert_eq!(
        Settings::default().rate_limit_per_second,
        NonZeroU32::new(100)
    );
    let off = settings(&[("RATE_LIMIT_PER_SECOND", "0")]).expect("0 is allowed");
    assert_eq!(off.rate_limit_per_second, None);
    for bad in ["-1", "1000001", "lots", "1.5"] {
        let error = settings(&[("RATE_LIMIT_PER_SECOND", bad)]).expect_err(bad);
        assert_eq!(error.variable, "RATE_LIMIT_PER_SECOND", "{bad}");
    }
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1 10.0.0.2", "*"] {
        let error = settings(&[("TRUSTED_PROXIES", bad)]).expect_err(bad);
        assert_eq!(error.variable, "TRUSTED_PROXIES", "{bad}");
    }
}

/// Only exact origins: a wildcard would let any page spend a token it got hold of.
#[test]
fn cors_origins_are_exact_and_never_a_wildcard() {
    for bad in [
        "*",
        "https://app.example.com,*",
        "https://*.example.com",
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "ftp://files.example.com",
        "null",
    ] {
        let error = settings(&[("CORS_ALLOWED_ORIGINS", bad)]).expect_err(bad);
        assert_eq!(error.variable, "CORS_ALLOWED_ORIGINS", "{bad}");
        assert!(error.expected.contains("`*` is refused"), "{error}");
    }
}

/// `.env.example` and docs/configuration.md are the documentation of record: the example lists
/// exactly the variables the service reads, with the real defaults, and the page names each.
#[test]
fn the_documented_variables_and_defaults_are_the_real_ones() {
    let read: Vec<&str> =
        serde_aux::serde_introspection::serde_introspect::<Environment>().to_vec();
    let mut listed: Vec<&str> = example().iter().map(|(name, _)| *name).collect();
    let mut expected = read.clone();
    listed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        listed, expected,
        ".env.example lists what the service reads"
    );
    let from_example = settings(&example()).expect("the example is valid");
    assert_eq!(
        format!("{from_example:?}"),
        format!("{:?}", Settings::default()),
        "the example's values are the defaults"
    );
    let page = include_str!("../../docs/configuration.md");
    for variable in read {
        assert!(
            page.contains(&format!("`{variable}`")),
            "{variable} in docs/configuration.md"
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
fn profiles_are_pushed_to_pyroscope_under_the_traces_service_name() {
    let pushed = settings(&[
        ("PYROSCOPE_SERVER_ADDRESS", "http://pyroscope:4040"),
        ("OTEL_SERVICE_NAME", "bank-eu"),
    ])
    .expect("valid");
    let expected = Pyroscope {
        server: "http://pyroscope:4040".into(),
        service_name: "bank-eu".into(),
    };
    assert_eq!(pushed.pyroscope, Some(expected));
    let refusals = [
        (
            &[("PYROSCOPE_SERVER_ADDRESS", "pyroscope:4040")][..],
            "an http:// or https:// URL of a Pyroscope server",
        ),
        (
            &[
                ("PYROSCOPE_SERVER_ADDRESS", "http://pyroscope:4040"),
                ("PROFILING", "true"),
            ],
            "unset while PROFILING=true: a process has one CPU profiler",
        ),
    ];
    for (variables, expected) in refusals {
        let error = settings(variables).expect_err("refused");
        assert_eq!(error.variable, "PYROSCOPE_SERVER_ADDRESS");
        assert_eq!(error.expected, expected);
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
        (
            "TOKEN_TTL_SECS",
            "59",
            "a whole number of seconds from 60 to 86400",
        ),
        ("LOG_FORMAT", "yaml", "`text` or `json`"),
        ("DIAGNOSTICS_ROUTES", "yes", "`true` or `false`"),
        ("PROFILING", "on", "`true` or `false`"),
        ("AUTH_REQUIRED", "1", "`true` or `false`"),
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
                variable: variable.into(),
                value: value.into(),
                expected: expected.into(),
            },
            "{variable}={value}"
        );
    }
}

/// A secret never appears in an error line, nor a database password.
#[test]
fn errors_hide_secrets() {
    let cases = [
        (&[("JWT_SECRET", "too short")][..], "JWT_SECRET", "(hidden)"),
        (
            &[("OPERATOR_USERNAME", "root")],
            "OPERATOR_PASSWORD",
            "(hidden)",
        ),
        (
            &[("OPERATOR_PASSWORD", "long enough password")],
            "OPERATOR_PASSWORD",
            "(hidden)",
        ),
        (
            &[
                ("OPERATOR_USERNAME", "root"),
                ("OPERATOR_PASSWORD", "short"),
            ],
            "OPERATOR_PASSWORD",
            "(hidden)",
        ),
        (
            &[("DATABASE_URL", "mysql://bank:s3cret@db/bank")],
            "DATABASE_URL",
            "mysql://bank:***@db/bank",
        ),
    ];
    for (vars, variable, shown) in cases {
        let error = settings(vars).expect_err(variable);
        assert_eq!(
            (error.variable.as_str(), error.value.as_str()),
            (variable, shown)
        );
        for (_, value) in vars {
            if value.len() > 4 {
                assert!(!error.to_string().contains(value), "{error}");
            }
        }
    }
}
