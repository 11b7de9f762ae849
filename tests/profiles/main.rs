//! Continuous profiling, in a test binary of its own: the CPU profiler belongs to the whole
//! process. The API pushes to a Pyroscope push endpoint served inside the test, which decodes
//! what arrives with the protocol's own messages (`push.v1` and pprof's, from the pyroscope
//! crate) and checks it against what the Service overview's flame graph asks Pyroscope for.

#[path = "../common/cpu_profiles.rs"]
mod cpu_profiles;

use std::{path::PathBuf, time::Duration};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bank_api::{
    config::{Pyroscope, Settings},
    startup::Application,
};
use prost::Message;
use pyroscope::encode::r#gen::{google::Profile, push::PushRequest};
use serde_json::Value;
use tokio::sync::mpsc;

use cpu_profiles::{hottest_of_ours, time_in_ours};

const PUSH_PATH: &str = "/push.v1.PusherService/Push";
const BURNING: &str = "faults::request::checksum_rounds";

/// One push as it arrived: its labels and the pprof profile it carried.
struct Pushed {
    labels: Vec<(String, String)>,
    profile: Profile,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_profiles_show_the_burning_function_where_the_dashboard_looks() {
    let (server, mut pushes) = pyroscope_receiver();
    let flags = flags_burning_every_route();
    let database = std::env::temp_dir().join(format!("bank-profiles-{}.db", uuid::Uuid::new_v4()));
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", database.display()),
        port: 0,
        auth_required: false,
        rate_limit_per_second: None,
        fault_flags: Some(flags.clone()),
        pyroscope: Some(Pyroscope {
            server: server.clone(),
            service_name: "bank-api".into(),
        }),
        ..Settings::default()
    };
    let app = Application::build(settings).await.expect("the app starts");
    let (base, stop) = (format!("http://127.0.0.1:{}", app.port()), app.handle());
    let served = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/accounts"));
            tokio::spawn(async move {
                loop {
                    let _ = client.get(&url).send().await;
                }
            })
        })
        .collect();

    // Pushed every 10 s: the first may come before the flag is read, so a few are allowed.
    let burning = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let pushed = pushes.recv().await.expect("the receiver runs");
            if hottest_of_ours(&pushed.profile).is_some_and(|name| name.ends_with(BURNING)) {
                return pushed;
            }
            eprintln!(
                "a push without the burn on top: {:?}",
                time_in_ours(&pushed.profile)
            );
        }
    })
    .await
    .expect("a pushed profile with the burning function on top within 60 s");

    let label = |name: &str| {
        let found = burning.labels.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    };
    assert_eq!(label("service_name"), Some("bank-api"));
    assert_eq!(
        burning.profile.period,
        1_000_000_000 / 99,
        "sampled at 99 Hz"
    );
    // Pyroscope files a profile under `name:sample type:unit:period type:unit`.
    let text = |index: i64| burning.profile.string_table[index as usize].as_str();
    let sample_type = &burning.profile.sample_type[0];
    let period_type = burning.profile.period_type.as_ref().expect("a period type");
    let profile_type = format!(
        "{}:{}:{}:{}:{}",
        label("__name__").expect("a profile name"),
        text(sample_type.r#type),
        text(sample_type.unit),
        text(period_type.r#type),
        text(period_type.unit),
    );
    let (panel_type, selector) = flame_graph_query();
    assert_eq!(
        profile_type, panel_type,
        "the panel asks for the pushed type"
    );
    assert_eq!(selector, format!("{{service_name=\"{}\"}}", "bank-api"));
    assert_eq!(tempo_profile_type(), profile_type, "a span opens this type");

    // Stopped while still busy: the seconds since the last push are pushed on the way out.
    while pushes.try_recv().is_ok() {}
    stop.stop(true).await;
    served.await.expect("the server task").expect("served");
    load.iter().for_each(tokio::task::JoinHandle::abort);
    let last = pushes.try_recv().expect("a last push as the API stopped");
    assert!(!last.profile.sample.is_empty(), "the last seconds' samples");
    let _ = std::fs::remove_file(flags);
    let _ = std::fs::remove_file(database);
}

/// A Pyroscope push endpoint on a free port: its URL, and what is pushed to it.
fn pyroscope_receiver() -> (String, mpsc::UnboundedReceiver<Pushed>) {
    let (sender, pushes) = mpsc::unbounded_channel();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(sender.clone()))
            .app_data(web::PayloadConfig::new(16 << 20))
            .route(PUSH_PATH, web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("a free port");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), pushes)
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    pushes: web::Data<mpsc::UnboundedSender<Pushed>>,
) -> HttpResponse {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("content-type"), Some("application/proto"));
    // Sent gzipped, and unzipped by actix-web's body extractor.
    assert_eq!(header("content-encoding"), Some("gzip"));
    let request = PushRequest::decode(body.as_ref()).expect("a push.v1 PushRequest");
    for series in request.series {
        let labels = series
            .labels
            .into_iter()
            .map(|pair| (pair.name, pair.value))
            .collect::<Vec<_>>();
        for sample in series.samples {
            let profile = Profile::decode(sample.raw_profile.as_slice()).expect("pprof");
            let _ = pushes.send(Pushed {
                labels: labels.clone(),
                profile,
            });
        }
    }
    HttpResponse::Ok().finish()
}

/// The shipped flags, with `routeCpuBurn` on for every route.
fn flags_burning_every_route() -> PathBuf {
    let shipped = std::fs::read_to_string(repository("flagd/faults.flagd.json")).expect("flags");
    let mut flags: Value = serde_json::from_str(&shipped).expect("JSON");
    flags["flags"]["routeCpuBurn"]["defaultVariant"] = "20ms".into();
    let path = std::env::temp_dir().join(format!("bank-burn-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, flags.to_string()).expect("written");
    path
}

/// The profile type and label selector of the Service overview's flame graph.
fn flame_graph_query() -> (String, String) {
    let dashboard = std::fs::read_to_string(repository("grafana/dashboards/service-overview.json"));
    let dashboard: Value = serde_json::from_str(&dashboard.expect("the dashboard")).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let panel = panels.iter().find(|panel| panel["type"] == "flamegraph");
    let target = &panel.expect("a flame graph panel")["targets"][0];
    assert_eq!(target["datasource"]["uid"], "pyroscope");
    let field = |name: &str| target[name].as_str().expect(name).to_owned();
    (field("profileTypeId"), field("labelSelector"))
}

/// The profile type Tempo's "Profiles for this span" opens.
fn tempo_profile_type() -> String {
    let sources = std::fs::read_to_string(repository(
        "grafana/provisioning/datasources/datasources.yml",
    ));
    let sources = sources.expect("the data sources");
    let line = sources
        .lines()
        .find(|line| line.trim_start().starts_with("profileTypeId:"));
    let value = line
        .expect("tracesToProfiles' profile type")
        .split_once(':')
        .expect("a value")
        .1;
    value.trim().to_owned()
}

fn repository(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}
