//! What every Rust test crate here needs: a fresh database of its own, on SQLite or on the
//! Postgres server `TEST_DATABASE_URL` names. Every database made here is removed when the test
//! process exits (the SQLite file, or the Postgres database with its sessions), so a run leaves
//! nothing behind; one that ends in a crash may.

use std::sync::{Mutex, Once};

use sea_orm::{ConnectionTrait, Database};

/// A new SQLite file in the temporary directory.
pub fn sqlite_database() -> String {
    let path = std::env::temp_dir().join(format!("bank-test-{}.db", uuid::Uuid::new_v4().simple()));
    remove_at_exit(Made::Sqlite(path.display().to_string()));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A new, empty database on the test server, so tests can run in parallel.
pub async fn postgres_database(server_url: &str) -> String {
    let server = Database::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL is set but Postgres is unreachable");
    let name = format!("bank_test_{}", uuid::Uuid::new_v4().simple());
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    remove_at_exit(Made::Postgres {
        server: server_url.to_owned(),
        name: name.clone(),
    });
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    format!("{base}/{name}")
}

enum Made {
    Sqlite(String),
    Postgres { server: String, name: String },
}

static MADE: Mutex<Vec<Made>> = Mutex::new(Vec::new());

fn remove_at_exit(made: Made) {
    static REGISTERED: Once = Once::new();
    // SAFETY: `remove_all` is an `extern "C" fn()` that neither unwinds nor calls `exit`.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
    MADE.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(made);
}

/// Runs as the process exits, after every test: the servers and runtimes of the tests are gone.
extern "C" fn remove_all() {
    let made = std::mem::take(&mut *MADE.lock().unwrap_or_else(|p| p.into_inner()));
    let mut postgres = Vec::new();
    for made in made {
        match made {
            Made::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            Made::Postgres { server, name } => postgres.push((server, name)),
        }
    }
    if postgres.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        for (server, name) in postgres {
            if let Ok(server) = Database::connect(&server).await {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = server.execute_unprepared(&drop).await;
            }
        }
    });
}
