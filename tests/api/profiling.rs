//! `GET /debug/pprof/profile`: off unless `PROFILING=true`, then for operators only, one at a
//! time, answering a profile `go tool pprof` reads and a flame graph.
//!
//! The profiler samples the whole test process, and only one can run in it: the tests that take
//! profiles take turns (`PROFILER`), on SQLite (what is sampled does not depend on the database).

use std::time::Duration;

use prost::Message;
use pyroscope::encode::r#gen::google::Profile;
use reqwest::StatusCode;

use crate::cpu_profiles::{function_of, hottest_of_ours, time_in_ours};
use crate::helpers::{
    TestApp, assert_detail, assert_validation_error, on_each_backend, sqlite_settings,
};

const PROFILE: &str = "/debug/pprof/profile";
/// Held by each test that takes a profile.
static PROFILER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn profiling_is_off_by_default() {
    on_each_backend(async |app| {
        assert_detail(app.get(PROFILE).await, StatusCode::NOT_FOUND, "Not Found").await;
        let doc = app.get_json("/openapi.json").await;
        assert!(
            doc["paths"].get(PROFILE).is_none(),
            "not documented when off"
        );
    })
    .await;
}

#[tokio::test]
async fn an_operator_gets_a_profile_of_the_requests_being_served() {
    let _profiler = PROFILER.lock().await;
    let mut settings = sqlite_settings();
    settings.profiling = true;
    let app = TestApp::spawn(settings).await;
    let doc = app.get_json("/openapi.json").await;
    assert!(
        doc["paths"][PROFILE]["get"].is_object(),
        "documented when on"
    );

    let customer = app.customer("mallory").await;
    let only_operators = "Only operators may call the diagnostics routes";
    assert_detail(
        customer.get(PROFILE).await,
        StatusCode::FORBIDDEN,
        only_operators,
    )
    .await;
    let anonymous = app.anonymous(reqwest::Method::GET, PROFILE, None).await;
    assert_detail(anonymous, StatusCode::UNAUTHORIZED, "Not authenticated").await;
    for (query, loc) in [
        ("seconds=0", "seconds"),
        ("seconds=61", "seconds"),
        ("seconds=x", "seconds"),
        ("format=png", "format"),
    ] {
        let response = app.get(&format!("{PROFILE}?{query}")).await;
        assert_validation_error(response, &["query", loc], query).await;
    }

    // A customer's requests served while the profile is taken, so the server's own code is on
    // the stacks (theirs: the operator's own would spend the operator's request limit).
    let load = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/accounts"),
            customer.token.clone(),
        );
        tokio::spawn(async move {
            loop {
                let _ = client.get(&url).bearer_auth(&token).send().await;
            }
        })
    };
    // Two profiles asked for at nearly the same moment: whichever starts first is taken, the other
    // is refused.
    let two_seconds = format!("{PROFILE}?seconds=2");
    let first = app.get(&two_seconds);
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.get(&two_seconds).await
    };
    let (first, second) = tokio::join!(first, second);
    let (profile, refused) = if first.status() == StatusCode::OK {
        (first, second)
    } else {
        (second, first)
    };
    let busy = "A profile is already being taken; ask again when it ends";
    assert_detail(refused, StatusCode::CONFLICT, busy).await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert_eq!(
        profile.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = profile.bytes().await.expect("the profile's body");
    let profile = Profile::decode(bytes.as_ref()).expect("pprof's protobuf");
    assert!(!profile.sample.is_empty(), "samples were taken");
    let names = &profile.string_table;
    assert!(
        names.iter().any(|name| name.contains("actix_http")),
        "the server's request handling is on the sampled stacks: {:?}",
        names.iter().take(50).collect::<Vec<_>>()
    );
    assert!(names.iter().any(|name| name == "cpu"), "a CPU profile");
    // A stack that could not be unwound at all is a sample with no frames.
    let leaves: Vec<&str> = profile
        .sample
        .iter()
        .filter_map(|sample| function_of(&profile, *sample.location_id.first()?))
        .collect();
    assert!(!leaves.is_empty(), "samples have stacks");
    for leaf in leaves {
        assert!(
            !leaf.starts_with("framehop::") && !leaf.starts_with("pyroscope::"),
            "a sample starts where the thread was, not in the profiler's unwinding: {leaf}"
        );
    }

    let graph = app.get(&format!("{PROFILE}?seconds=1&format=svg")).await;
    load.abort();
    assert_eq!(graph.status(), StatusCode::OK);
    assert_eq!(graph.headers()["content-type"], "image/svg+xml");
    let svg = graph.text().await.expect("the flame graph");
    assert!(
        svg.contains("<svg"),
        "an SVG: {}",
        &svg[..svg.len().min(200)]
    );
}

/// The game day's CPU scenario: with `routeCpuBurn` on for one route under load, the function of
/// ours that the most samples were in is the one burning the CPU.
#[tokio::test]
async fn a_profile_taken_while_a_route_burns_cpu_finds_the_burning_function_on_top() {
    let _profiler = PROFILER.lock().await;
    let mut settings = sqlite_settings();
    settings.profiling = true;
    let (app, flags) = crate::faults::spawn_with_flags(settings).await;
    flags.set("routeCpuBurn", "20ms", Some("/accounts"));
    crate::faults::until_flag(&app, "routeCpuBurn", true).await;
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/accounts"),
                app.token.clone().expect("a token"),
            );
            tokio::spawn(async move {
                loop {
                    let _ = client.get(&url).bearer_auth(&token).send().await;
                }
            })
        })
        .collect();
    let profile = app.get(&format!("{PROFILE}?seconds=2")).await;
    load.iter().for_each(tokio::task::JoinHandle::abort);
    assert_eq!(profile.status(), StatusCode::OK);
    let bytes = profile.bytes().await.expect("the profile's body");
    let profile = Profile::decode(bytes.as_ref()).expect("pprof's protobuf");

    assert!(
        hottest_of_ours(&profile)
            .is_some_and(|name| name.ends_with("faults::request::checksum_rounds")),
        "the burning function on top: {:?}",
        time_in_ours(&profile)
    );
}
