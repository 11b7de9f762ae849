use std::process::ExitCode;

use bank_api::{config::Settings, healthcheck, startup::Application, telemetry};

/// The request path allocates and frees small blocks by the dozen. glibc's malloc spent a tenth
/// of the server's CPU on them (`perf`, reads under load). With mimalloc a read cost the server
/// 2 to 6 µs less CPU in four runs of `bench/compare.py` (reads at 98% to 114% of glibc's rate),
/// and a posting no more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    return_freed_memory();
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("bank-api: cannot read .env: {error}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("bank-api: {error}");
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return match healthcheck::check(settings.port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bank-api healthcheck: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let telemetry = match telemetry::init(&settings) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("bank-api: {error}");
            return ExitCode::FAILURE;
        }
    };
    let host = settings.host.clone();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("bank-api: {error}");
            telemetry.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "listening on http://{host}:{} (docs at /docs, metrics at /metrics)",
        app.port()
    );
    let served = app.run_until_stopped().await;
    telemetry.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bank-api: server error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc's options that differ from its defaults, by their place in `mi_option_t`
/// (mimalloc.h, v3).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed goes back to the kernel at once, a page at a time. By default mimalloc commits
/// its arenas whole, the kernel backs them with huge pages of 2 MiB (a few live blocks keep a
/// whole one resident), and freed pages are kept for a while, which a thread that frees and then
/// idles never ends: every password check frees argon2's 19 MiB on a blocking thread that then
/// waits for the next one. With the defaults the server held 56 MB once ready and 75 MB after
/// eight logins; with these settings 32 MB and 32 MB, and 52 MB at its peak under load
/// (glibc's malloc: 25, 26 and 45 MB).
fn return_freed_memory() {
    // SAFETY: mi_option_set writes one setting and prctl one flag of this process; both run
    // first in `main`, before any other thread of ours exists.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
