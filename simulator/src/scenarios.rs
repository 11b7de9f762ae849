//! Game-day scenarios: each turns fault flags on in the flags file the API reads (`FAULT_FLAGS`)
//! or adds one kind of bad request to the traffic, until its alert fires in Prometheus; then puts
//! the file back as it was and keeps the traffic going until the alert has resolved.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use reqwest::Client;
use serde_json::{Value, json};

use crate::mix::Extra;

/// A flag turned on: its key, the variant, and the route it is targeted at (`None`: all).
type Flip = (&'static str, &'static str, Option<&'static str>);

pub struct Scenario {
    pub name: &'static str,
    /// The alert it makes fire, and those that fire with it by their nature.
    pub alert: &'static str,
    pub also: &'static [&'static str],
    pub flags: &'static [Flip],
    pub extra: Option<Extra>,
    /// What the operator sees first, and where the cause is.
    pub story: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "slow-route",
        alert: "BankApiHighLatencyP99",
        also: &[],
        flags: &[("routeLatency", "1s", Some("/accounts/{account_id}/balance"))],
        extra: None,
        story: "one route answers in about a second: the latency panel by route",
    },
    Scenario {
        name: "slow-statement",
        alert: "BankApiHighLatencyP99",
        also: &[],
        flags: &[("slowStatement", "2s", None)],
        extra: None,
        story: "every write's statement sleeps 2 s holding its locks: the statement span in a \
                write's trace, bank_db_query_duration_seconds",
    },
    Scenario {
        name: "error-budget",
        alert: "BankApiErrorBudgetBurnFast",
        also: &[],
        flags: &[(
            "routeFailure",
            "50%",
            Some("/accounts/{account_id}/transactions"),
        )],
        extra: None,
        story: "half of one route's requests fail (3% of all): the 5xx panel by route, the \
                access log's cause",
    },
    Scenario {
        name: "failing-route",
        alert: "BankApiHighErrorRatio",
        also: &["BankApiErrorBudgetBurnFast"],
        flags: &[("routeFailure", "all", Some("/transactions"))],
        extra: None,
        story: "every posting fails (over 5% of all requests, which burns the budget fast too)",
    },
    Scenario {
        name: "held-pool",
        alert: "BankApiDatabasePoolSaturated",
        also: &[
            "BankApiErrorBudgetBurnFast",
            "BankApiHighErrorRatio",
            "BankApiHighLatencyP99",
        ],
        flags: &[("poolHeld", "all", None)],
        extra: None,
        story: "every pooled connection is taken and kept: the pool panel, then 503s after \
                DB_ACQUIRE_TIMEOUT_SECS",
    },
    Scenario {
        name: "long-transaction",
        alert: "PostgresLongRunningTransaction",
        also: &[],
        flags: &[("longTransaction", "on", None)],
        extra: None,
        story: "a session keeps a transaction open: pg_stat_activity's oldest transaction",
    },
    Scenario {
        name: "deadlocks",
        alert: "PostgresDeadlocks",
        also: &["PostgresHighRollbackRatio"],
        flags: &[("deadlocks", "on", None)],
        extra: None,
        story: "two writers lock the same accounts in opposite orders: Postgres' log names both",
    },
    Scenario {
        name: "rejections",
        alert: "BankApiRejectedTransactionsSpike",
        also: &[],
        flags: &[],
        extra: Some(Extra::Overdrafts),
        story: "half the requests are debits beyond any balance: the rejections panel by reason",
    },
    Scenario {
        name: "login-failures",
        alert: "BankApiLoginFailuresBurst",
        also: &[],
        flags: &[],
        extra: Some(Extra::WrongPasswords),
        story: "half the requests are logins with a wrong password: the logins panel, the access \
                log of POST /token",
    },
    Scenario {
        name: "cpu-burn",
        alert: "",
        also: &[],
        flags: &[("routeCpuBurn", "100ms", Some("/accounts"))],
        extra: None,
        story: "listing accounts burns 100 ms of CPU each: no alert at this rate; a CPU profile \
                (GET /debug/pprof/profile) shows faults::request::checksum_rounds on top",
    },
];

/// The alerts no scenario trips, and why.
pub const WITHOUT_SCENARIO: &[(&str, &str)] = &[
    (
        "BankApiDown",
        "stop the API (tests/observability/test_alert_delivery.py does)",
    ),
    (
        "BankApiErrorBudgetBurnSlow",
        "its windows are a day and three days",
    ),
    (
        "BankApiWebhooksStalled",
        "stop every replica's dispatcher, as tests/resilience does",
    ),
    (
        "BankApiWebhookDeliveriesFailing",
        "register a webhook endpoint that refuses, for 30 minutes",
    ),
    (
        "PostgresDown",
        "stop Postgres (tests/resilience/test_faults.py does)",
    ),
    (
        "PostgresConnectionsNearLimit",
        "start replicas whose pools add up to max_connections",
    ),
    (
        "PatroniNoLeader, PatroniSyncStandbyMissing, PostgresReplicationLagHigh, \
      PatroniFailoverHappened",
        "the failover suite trips them (tests/resilience/test_failover.py)",
    ),
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|scenario| scenario.name == name)
}

pub fn list() -> String {
    let mut lines = vec![format!("{:<18} {:<34} what it does", "scenario", "alert")];
    for scenario in SCENARIOS {
        let alert = if scenario.alert.is_empty() {
            "(none: a profile finds it)"
        } else {
            scenario.alert
        };
        lines.push(format!(
            "{:<18} {:<34} {}",
            scenario.name, alert, scenario.story
        ));
        if !scenario.also.is_empty() {
            lines.push(format!(
                "{:<18} {:<34} (with it, by its nature: {})",
                "",
                "",
                scenario.also.join(", ")
            ));
        }
    }
    lines.push(String::new());
    lines.push("alerts without a scenario:".into());
    for (alert, why) in WITHOUT_SCENARIO {
        lines.push(format!("  {alert}: {why}"));
    }
    lines.join("\n")
}

/// The flags file as it was, written back when the scenario ends, however it ends.
pub struct Flipped {
    path: PathBuf,
    before: String,
}

impl Flipped {
    /// Turns `scenario`'s flags on in the file at `path`.
    pub fn new(path: &Path, scenario: &Scenario) -> Result<Self, String> {
        let before = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the flags file {}: {e}", path.display()))?;
        let mut flags: Value = serde_json::from_str(&before)
            .map_err(|e| format!("{} is not a flags file: {e}", path.display()))?;
        for (flag, variant, route) in scenario.flags {
            let entry = flags["flags"]
                .get_mut(*flag)
                .filter(|entry| entry["variants"].get(*variant).is_some())
                .ok_or(format!(
                    "{} has no flag {flag} with a variant {variant}",
                    path.display()
                ))?;
            match route {
                Some(route) => {
                    entry["targeting"] = json!({"if": [{"==": [{"var": "route"}, route]}, variant]})
                }
                None => entry["defaultVariant"] = json!(variant),
            }
        }
        let flipped = Self {
            path: path.to_owned(),
            before,
        };
        flipped.write(&serde_json::to_string_pretty(&flags).unwrap_or_default())?;
        Ok(flipped)
    }

    /// Written beside and renamed over, so the API never reads half a file.
    fn write(&self, text: &str) -> Result<(), String> {
        let next = self.path.with_extension("next");
        std::fs::write(&next, text)
            .and_then(|()| std::fs::rename(&next, &self.path))
            .map_err(|e| format!("cannot write the flags file {}: {e}", self.path.display()))
    }

    pub fn restore(&self) -> Result<(), String> {
        self.write(&self.before)
    }
}

impl Drop for Flipped {
    fn drop(&mut self) {
        if let Err(error) = self.restore() {
            eprintln!("bank-simulate: {error}");
        }
    }
}

/// The alert's state in Prometheus: `firing`, `pending`, or `None` when it is neither.
async fn state(client: &Client, prometheus: &str, alert: &str) -> Result<Option<String>, String> {
    let body: Value = client
        .get(format!("{prometheus}/api/v1/alerts"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot ask Prometheus at {prometheus}: {e}"))?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let alerts = body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let states = alerts
        .iter()
        .filter(|found| found["labels"]["alertname"] == alert)
        .filter_map(|found| found["state"].as_str().map(str::to_owned));
    Ok(states.max_by_key(|state| state == "firing"))
}

/// Waits until `alert` is firing (`firing: true`) or neither firing nor pending; `Err` after
/// `within`.
pub async fn until(
    client: &Client,
    prometheus: &str,
    alert: &str,
    firing: bool,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let now = state(client, prometheus, alert).await?;
        let reached = if firing {
            now.as_deref() == Some("firing")
        } else {
            now.is_none()
        };
        if reached {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            let wanted = if firing { "fire" } else { "resolve" };
            return Err(format!(
                "{alert} did not {wanted} within {} s",
                within.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
