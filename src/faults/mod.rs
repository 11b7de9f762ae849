//! Fault flags, for game days: faults declared as flags in flagd's JSON format (`flagd/`),
//! evaluated through OpenFeature with flagd's own targeting engine, and read again when the file
//! changes. Nothing here runs unless `FAULT_FLAGS` names a file; every flag is off until the file
//! turns it on, and only whoever can write that file can (no route changes a flag).
//!
//! A flag bends what the real path does, so that every signal shows it as a real fault would:
//! - `request`: per route (flagd targeting on the `route` attribute), latency drawn from a
//!   log-normal distribution, a share of requests failing with 500, CPU burned on the worker;
//! - `database`: the ledger's write statement made slow, the pool's connections held, a
//!   transaction left open, two writers deadlocking;
//! - `flags`: the flags by name, evaluated every second into the [`State`] the rest reads;
//! - `provider`: the OpenFeature provider of the flags file.
//!
//! Each flag's state is exported as `bank_fault_flag_active`, so a dashboard can annotate it.

mod database;
mod flags;
mod provider;
mod request;

pub use flags::FlagsError;
pub use request::inject;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, RwLock},
    time::Duration,
};

use bank_core::ledger::Pause;
use prometheus::{IntGaugeVec, Opts, Registry};
use sea_orm::DatabaseConnection;

use flags::{Evaluator, Flag};

/// How often the flags file is read and its flags evaluated again: a flipped flag takes effect
/// at the next evaluation.
const EVERY: Duration = Duration::from_secs(1);

/// What one route's requests are to suffer.
#[derive(Clone, Debug, Default, PartialEq)]
struct RouteFaults {
    /// The median of the latency added; zero for none.
    latency: Duration,
    /// The share of requests answered 500, from 0 to 1.
    failing: f64,
    /// CPU time burned on the worker before the route runs.
    cpu: Duration,
}

/// Every flag's value, as last evaluated.
#[derive(Debug, Default)]
struct State {
    /// By route template; routes that suffer nothing are left out.
    routes: HashMap<String, RouteFaults>,
    slow_statement: Duration,
    pool_held: u32,
    long_transaction: bool,
    deadlocks: bool,
}

impl State {
    fn active(&self, flag: Flag) -> bool {
        let routes = |of: fn(&RouteFaults) -> bool| self.routes.values().any(of);
        match flag {
            Flag::RouteLatency => routes(|route| !route.latency.is_zero()),
            Flag::RouteFailure => routes(|route| route.failing > 0.0),
            Flag::RouteCpuBurn => routes(|route| !route.cpu.is_zero()),
            Flag::SlowStatement => !self.slow_statement.is_zero(),
            Flag::PoolHeld => self.pool_held > 0,
            Flag::LongTransaction => self.long_transaction,
            Flag::Deadlocks => self.deadlocks,
        }
    }
}

/// The faults the flags ask for now, shared by the request path and the task that evaluates them.
#[derive(Clone)]
pub struct Faults {
    state: Arc<RwLock<Arc<State>>>,
    active: IntGaugeVec,
}

impl Faults {
    /// Registers `bank_fault_flag_active` with every flag at 0, flags file or not, so a dashboard's
    /// annotation query always has its series.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let active = IntGaugeVec::new(
            Opts::new(
                "bank_fault_flag_active",
                "1 while a fault flag of the FAULT_FLAGS file is on (for at least one route), \
                 0 otherwise; for annotating dashboards during a game day.",
            ),
            &["flag"],
        )?;
        for flag in Flag::ALL {
            active.with_label_values(&[flag.key()]).set(0);
        }
        registry.register(Box::new(active.clone()))?;
        Ok(Self {
            state: Arc::default(),
            active,
        })
    }

    /// What the route of `request` is to suffer; the route is matched only when some route
    /// suffers something, so that flags all off cost a read of this state.
    fn of_route(&self, request: &actix_web::dev::ServiceRequest) -> Option<RouteFaults> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner()).clone();
        if state.routes.is_empty() {
            return None;
        }
        state.routes.get(&request.match_pattern()?).cloned()
    }

    /// Evaluates the flags every second and applies them until the server stops: the request
    /// path reads the routes' faults, the ledger its pause, and the database faults are kept as
    /// asked (connections held, a transaction open, writers deadlocking).
    pub async fn keep_applying(
        &self,
        flags: &Flags,
        db: &DatabaseConnection,
        pause: &Pause,
    ) -> Result<(), sea_orm::DbErr> {
        let mut held = database::Held::default();
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            let state = flags.evaluator.evaluate().await;
            held.follow(db, &state).await?;
            if state.deadlocks {
                database::deadlock(db);
            }
            self.publish(state, pause);
        }
    }

    fn publish(&self, state: State, pause: &Pause) {
        for flag in Flag::ALL {
            let active = i64::from(state.active(flag));
            self.active.with_label_values(&[flag.key()]).set(active);
        }
        pause.set(state.slow_statement);
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}

/// Reads the flags file at `path`; what its flags ask of `routes` (the API's route templates)
/// is evaluated by [`Faults::keep_applying`].
pub async fn open(path: &Path, routes: Vec<String>) -> Result<Flags, FlagsError> {
    Ok(Flags {
        evaluator: Arc::new(Evaluator::open(path, routes).await?),
    })
}

/// The flags file, opened.
#[derive(Clone)]
pub struct Flags {
    evaluator: Arc<Evaluator>,
}
