//! Traffic simulator: signs up a customer (or logs in as the one given), opens accounts, then
//! drives a realistic mix of credits, debits, transfers, holds (captured, voided or left to
//! expire), reads, idempotent retries and a few bad requests (malformed bodies, unknown accounts, a wrong password, a missing token) at a steady
//! rate, printing progress. Its first 101 requests take every kind in turn, so every dashboard
//! panel has data seconds after start.
//!
//! bank-simulate [--target URL] [--rate REQ_PER_SEC] [--duration SECS (0 = until stopped)]
//!               [--accounts N] [--username NAME --password PASSWORD]
//!               [--scenario NAME [--flags FILE] [--prometheus URL] [--hold SECS]] [--list]
//!
//! `--scenario` runs a game day's scenario (`--list` prints them with the alert each trips): it
//! turns fault flags on in the API's flags file (`--flags`, or `FAULT_FLAGS`), or adds bad
//! requests to the mix, until the alert fires in Prometheus and `--hold` seconds more (default
//! 35), then puts the file back and keeps the traffic going until the alert resolves; each wait
//! lasts at most `--duration` (default 900 s). The hold is for Alertmanager: an alert that
//! resolves before its group is first sent (the shipped configuration waits 30 s for a ticket) is
//! never notified, and a gauge's alert, such as a long transaction's, resolves at the next scrape.
//!
//! The credentials may come from `SIMULATOR_USERNAME` and `SIMULATOR_PASSWORD` instead, so that a
//! password need not be on a command line. Its few calls to the diagnostics route `/500` fail with
//! a 500 only for an operator, on a server started with `DIAGNOSTICS_ROUTES=true`.

mod mix;
mod scenarios;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use mix::{Extra, HoldEnd, Request, Rng, next_request};
use scenarios::{Flipped, Scenario};

/// Longer than the shipped Alertmanager's longest group wait (a ticket's, 30 s).
const DEFAULT_HOLD: Duration = Duration::from_secs(35);

struct Options {
    target: String,
    rate: u32,
    duration: Option<Duration>,
    accounts: usize,
    /// Log in as this user; without it, a new customer is signed up.
    credentials: Option<(String, String)>,
    scenario: Option<&'static Scenario>,
    /// The API's flags file, for a scenario's flags.
    flags: Option<PathBuf>,
    prometheus: String,
    /// How long a scenario keeps its fault on once its alert fires.
    hold: Duration,
    list: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        target: "http://127.0.0.1:8888".into(),
        rate: 20,
        duration: Some(Duration::from_secs(60)),
        accounts: 20,
        credentials: None,
        scenario: None,
        flags: std::env::var_os("FAULT_FLAGS")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from),
        prometheus: "http://127.0.0.1:9090".into(),
        hold: DEFAULT_HOLD,
        list: false,
    };
    let mut duration_given = false;
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (mut username, mut password) = (
        from_env("SIMULATOR_USERNAME"),
        from_env("SIMULATOR_PASSWORD"),
    );
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--list" {
            options.list = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: expected a whole number, got {value:?}"))
        };
        match flag.as_str() {
            "--target" => options.target = value.trim_end_matches('/').to_owned(),
            "--rate" => options.rate = u32::try_from(number()?.clamp(1, 10_000)).unwrap_or(10_000),
            "--duration" => {
                duration_given = true;
                options.duration = Some(number()?).filter(|s| *s > 0).map(Duration::from_secs)
            }
            "--scenario" => {
                let scenario = scenarios::find(&value);
                options.scenario =
                    Some(scenario.ok_or(format!("no scenario {value:?}: --list prints them"))?);
            }
            "--flags" => options.flags = Some(PathBuf::from(value)),
            "--prometheus" => options.prometheus = value.trim_end_matches('/').to_owned(),
            "--hold" => options.hold = Duration::from_secs(number()?),
            "--accounts" => {
                options.accounts = usize::try_from(number()?.clamp(2, 10_000)).unwrap_or(2)
            }
            "--username" => username = Some(value),
            "--password" => password = Some(value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    options.credentials = match (username, password) {
        (Some(username), Some(password)) => Some((username, password)),
        (None, None) => None,
        _ => return Err("--username and --password go together".into()),
    };
    // A scenario waits for Prometheus, whose alerts take minutes; one without an alert runs as
    // long as any traffic does.
    if options
        .scenario
        .is_some_and(|scenario| !scenario.alert.is_empty())
        && !duration_given
    {
        options.duration = Some(Duration::from_secs(900));
    }
    Ok(options)
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    /// Counts an answer with `status`, or a request that got none (`None`).
    fn record(&self, status: Option<StatusCode>) {
        let counter = match status {
            Some(status) if status.is_success() => &self.ok,
            Some(status) if status.is_client_error() => &self.client_errors,
            Some(_) => &self.server_errors,
            None => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self, elapsed: Duration) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        format!(
            "t={:>4}s sent={sent} 2xx={} 4xx={} 5xx={} failed={} rate={:.1}/s",
            elapsed.as_secs(),
            self.ok.load(Ordering::Relaxed),
            self.client_errors.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            sent as f64 / elapsed.as_secs_f64().max(0.001),
        )
    }
}

/// Sends `request` and counts its answer; a hold it placed is then captured or voided as
/// `request.then` says (or left to expire), and that is counted as a request of its own.
async fn send_and_follow(
    client: &Client,
    target: &str,
    token: &str,
    request: &Request,
    tally: &Tally,
) {
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let response = send(client, target, token, request).await;
    tally.record(response.as_ref().ok().map(reqwest::Response::status));
    let (Ok(response), Some(then)) = (response, request.then) else {
        return;
    };
    if response.status() != StatusCode::CREATED {
        return;
    }
    let Some(hold) = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|hold| hold["id"].as_i64())
    else {
        return;
    };
    let (path, body) = match then {
        HoldEnd::Capture(amount) => (format!("/holds/{hold}/capture"), json!({"amount": amount})),
        HoldEnd::Void => (format!("/holds/{hold}/void"), json!({})),
        HoldEnd::Expire => return,
    };
    let follow_up = Request {
        method: Method::POST,
        path,
        body: Some(body),
        retry_key: None,
        anonymous: false,
        form: None,
        then: None,
    };
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let response = send(client, target, token, &follow_up).await;
    tally.record(response.ok().as_ref().map(reqwest::Response::status));
}

async fn send(
    client: &Client,
    target: &str,
    token: &str,
    request: &Request,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut builder = client.request(request.method.clone(), format!("{target}{}", request.path));
    if !request.anonymous {
        builder = builder.bearer_auth(token);
    }
    if let Some(form) = &request.form {
        builder = builder.form(form);
    } else if let Some(body) = &request.body {
        builder = builder.json(body);
    }
    if let Some(key) = &request.retry_key {
        builder = builder.header("Idempotency-Key", key);
    }
    builder.send().await
}

/// The simulator's own customer: signed up once, unless credentials were given.
async fn credentials(
    client: &Client,
    target: &str,
    given: Option<(String, String)>,
) -> Result<(String, String), String> {
    if let Some(given) = given {
        return Ok(given);
    }
    let mut rng = Rng(seed());
    let username = format!("sim-{}-{}", std::process::id(), rng.below(1_000_000));
    let password = format!(
        "sim-{:016x}{:016x}",
        rng.below(u64::MAX),
        rng.below(u64::MAX)
    );
    let response = client
        .post(format!("{target}/users"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    if response.status() != StatusCode::CREATED {
        return Err(format!(
            "cannot sign up ({}): pass --username and --password of an existing user",
            response.status()
        ));
    }
    Ok((username, password))
}

/// A bearer token and how long it lasts.
async fn log_in(
    client: &Client,
    target: &str,
    (username, password): &(String, String),
) -> Result<(String, Duration), String> {
    let response = client
        .post(format!("{target}/token"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    match (body["access_token"].as_str(), body["expires_in"].as_u64()) {
        (Some(token), Some(seconds)) => Ok((token.to_owned(), Duration::from_secs(seconds))),
        _ => Err(format!("cannot log in as {username} ({status}): {body}")),
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()) ^ nanos
}

async fn open_accounts(
    client: &Client,
    target: &str,
    token: &str,
    count: usize,
) -> Result<Vec<i64>, String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = json!({"first_name": format!("Sim{n}"), "last_name": "Customer", "address": format!("{n} Load Street")});
        let response = client
            .post(format!("{target}/accounts"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {target}: {e}"))?;
        let account: Value = response.json().await.map_err(|e| e.to_string())?;
        ids.push(
            account["id"]
                .as_i64()
                .ok_or(format!("unexpected answer: {account}"))?,
        );
    }
    Ok(ids)
}

/// Where the traffic goes and how it is sent.
struct Traffic {
    client: Client,
    target: String,
    rate: u32,
    token: Arc<RwLock<String>>,
    accounts: Arc<Vec<i64>>,
    /// A scenario's bad requests, added to the mix while `bad` is true.
    extra: Option<Extra>,
    bad: AtomicBool,
}

impl Traffic {
    /// Sends the mix at the rate until `running` is false or `limit` has passed, printing
    /// progress every 5 s.
    async fn drive(&self, running: &AtomicBool, limit: Option<Duration>) {
        let tally = Arc::new(Tally::default());
        let in_flight = Arc::new(Semaphore::new(256));
        let mut rng = Rng(seed());
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / self.rate);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let started = Instant::now();
        let mut last_report = started;
        let mut serial = 0_u64;
        while running.load(Ordering::Relaxed) && limit.is_none_or(|limit| started.elapsed() < limit)
        {
            ticker.tick().await;
            serial += 1;
            let extra = self.extra.filter(|_| self.bad.load(Ordering::Relaxed));
            let request = next_request(&mut rng, &self.accounts, serial, extra);
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (client, target, task_tally) =
                (self.client.clone(), self.target.clone(), tally.clone());
            let token = self.token.read().unwrap_or_else(|e| e.into_inner()).clone();
            tokio::spawn(async move {
                let attempts = if request.retry_key.is_some() { 2 } else { 1 };
                for _ in 0..attempts {
                    send_and_follow(&client, &target, &token, &request, &task_tally).await;
                }
                drop(permit);
            });
            if last_report.elapsed() >= Duration::from_secs(5) {
                println!("{}", tally.line(started.elapsed()));
                last_report = Instant::now();
            }
        }
        let _ = in_flight.acquire_many(256).await;
        println!("done: {}", tally.line(started.elapsed()));
    }
}

/// Runs `scenario` while `traffic` is sent: its flags on (or its bad requests sent) until its
/// alert fires and `options.hold` more, then off until the alert resolves.
async fn run_scenario(
    options: &Options,
    scenario: &Scenario,
    traffic: &Traffic,
) -> Result<(), String> {
    let client = &traffic.client;
    let flipped = match (&options.flags, scenario.flags.is_empty()) {
        (_, true) => None,
        (Some(path), false) => Some(Flipped::new(path, scenario)?),
        (None, false) => {
            return Err("the scenario needs the API's flags file: --flags or FAULT_FLAGS".into());
        }
    };
    let within = options.duration.unwrap_or(Duration::MAX);
    println!("scenario {}: {}", scenario.name, scenario.story);
    let ran = async {
        if scenario.alert.is_empty() {
            tokio::time::sleep(options.duration.unwrap_or(Duration::from_secs(60))).await;
            return Ok(());
        }
        let fired =
            scenarios::until(client, &options.prometheus, scenario.alert, true, within).await?;
        println!(
            "{} fired after {} s; the fault stays on {} s more, for Alertmanager to send it",
            scenario.alert,
            fired.as_secs(),
            options.hold.as_secs()
        );
        tokio::time::sleep(options.hold).await;
        if let Some(flipped) = &flipped {
            flipped.restore()?;
        }
        traffic.bad.store(false, Ordering::Relaxed);
        let resolved =
            scenarios::until(client, &options.prometheus, scenario.alert, false, within).await?;
        println!("{} resolved after {} s", scenario.alert, resolved.as_secs());
        Ok(())
    };
    let outcome = ran.await;
    drop(flipped);
    outcome
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bank-simulate: {error}");
            return ExitCode::from(2);
        }
    };
    if options.list {
        println!("{}", scenarios::list());
        return ExitCode::SUCCESS;
    }
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let started_up = async {
        let credentials =
            credentials(&client, &options.target, options.credentials.clone()).await?;
        let (token, lifetime) = log_in(&client, &options.target, &credentials).await?;
        let accounts = open_accounts(&client, &options.target, &token, options.accounts).await?;
        Ok::<_, String>((credentials, token, lifetime, accounts))
    };
    let (credentials, token, lifetime, accounts) = match started_up.await {
        Ok(started) => started,
        Err(error) => {
            eprintln!("bank-simulate: {error}");
            return ExitCode::FAILURE;
        }
    };
    let token = Arc::new(RwLock::new(token));
    // Tokens expire: log in again at half their lifetime.
    let renewer = {
        let (client, target, token) = (client.clone(), options.target.clone(), token.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lifetime / 2).await;
                match log_in(&client, &target, &credentials).await {
                    Ok((fresh, _)) => *token.write().unwrap_or_else(|e| e.into_inner()) = fresh,
                    Err(error) => eprintln!("bank-simulate: {error}"),
                }
            }
        })
    };
    println!(
        "opened {} accounts at {}; sending {} requests/s",
        accounts.len(),
        options.target,
        options.rate
    );
    let traffic = Traffic {
        client: client.clone(),
        target: options.target.clone(),
        rate: options.rate,
        token,
        accounts: Arc::new(accounts),
        extra: options.scenario.and_then(|scenario| scenario.extra),
        bad: AtomicBool::new(true),
    };
    let running = AtomicBool::new(true);
    let outcome = match options.scenario {
        Some(scenario) => {
            let run = async {
                let outcome = run_scenario(&options, scenario, &traffic).await;
                running.store(false, Ordering::Relaxed);
                outcome
            };
            tokio::join!(run, traffic.drive(&running, None)).0
        }
        None => {
            traffic.drive(&running, options.duration).await;
            Ok(())
        }
    };
    renewer.abort();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bank-simulate: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scenario run against the shipped stack holds its fault long enough to be notified.
    #[test]
    fn the_default_hold_outlasts_every_group_wait_alertmanager_ships_with() {
        let config = include_str!("../../prometheus/alertmanager/alertmanager.yml");
        let waits: Vec<u64> = config
            .lines()
            .filter_map(|line| line.trim().strip_prefix("group_wait: "))
            .map(|wait| {
                wait.trim_end_matches('s')
                    .parse()
                    .expect("a wait in seconds")
            })
            .collect();
        assert!(
            !waits.is_empty(),
            "the shipped configuration has group waits"
        );
        for wait in waits {
            assert!(
                DEFAULT_HOLD > Duration::from_secs(wait),
                "group_wait {wait}s"
            );
        }
    }
}
