//! Timing comparisons, in a test binary of their own. Cargo runs test binaries one after another,
//! so these run alone: beside the API suite's 147 tests on 2 cores, a login's time depended more
//! on which of them were busy than on what the login did (rounds' ratios from 0.44 to 4.67 in
//! one CI run).

use std::time::{Duration, Instant};

use bank_api::config::Settings;
use reqwest::StatusCode;

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::TestApp;

/// An unknown username costs what a wrong password costs, so timing cannot tell whether a
/// username exists: both check a password hash. Measured interleaved, in one run, each attempt
/// from an address of its own so that no limit is reached; the median ratio must be within 20%.
#[tokio::test]
async fn an_unknown_username_takes_as_long_as_a_wrong_password() {
    let app = TestApp::spawn(Settings {
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("a network")],
        ..helpers::sqlite_settings()
    })
    .await;
    app.customer("ada").await;
    // Each round times both, back to back, so both meet the same load, and which goes first
    // alternates, so neither gains from its place; the median of the rounds' ratios is the
    // comparison.
    let mut ratios = Vec::new();
    for round in 0..21 {
        let mut times = [Duration::ZERO; 2];
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let username = ["ada", "nobody"][i];
            let address = format!("198.51.100.{}", round * 2 + i + 1);
            let started = Instant::now();
            let response = app
                .log_in_from(username, "wrong password", Some(&address))
                .await;
            times[i] = started.elapsed();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
        }
        ratios.push(times[1].as_secs_f64() / times[0].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    assert!(
        (0.8..=1.25).contains(&ratio),
        "an unknown username took {ratio:.2} times as long as a wrong password: {ratios:.2?}"
    );
}
