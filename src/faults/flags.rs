//! The fault flags by name, as the flags file declares them, and their evaluation through
//! OpenFeature: route flags once per route template (flagd targeting may name routes through the
//! `route` attribute), the others once.

use std::{path::Path, time::Duration};

use open_feature::{Client, EvaluationContext, OpenFeature};

use super::{RouteFaults, State, provider::FlagFile};

#[derive(Debug, thiserror::Error)]
#[error("cannot read the fault flags of FAULT_FLAGS={path}: {reason}")]
pub struct FlagsError {
    path: String,
    reason: String,
}

/// Every fault flag. A flag missing from the file, or of another type, is off.
#[derive(Clone, Copy, Debug)]
pub(super) enum Flag {
    /// Integer: the median in milliseconds of the latency added to a route's requests.
    RouteLatency,
    /// Number from 0 to 1: the share of a route's requests answered 500.
    RouteFailure,
    /// Integer: milliseconds of CPU burned on the worker by each of a route's requests.
    RouteCpuBurn,
    /// Integer: milliseconds every grouped write's statement sleeps (`pg_sleep`), holding its locks.
    SlowStatement,
    /// Integer: the database connections taken from the pool and kept.
    PoolHeld,
    /// Boolean: a transaction kept open, as a forgotten session would.
    LongTransaction,
    /// Boolean: every second, two writers update the same two accounts in opposite orders.
    Deadlocks,
}

impl Flag {
    pub(super) const ALL: [Flag; 7] = [
        Flag::RouteLatency,
        Flag::RouteFailure,
        Flag::RouteCpuBurn,
        Flag::SlowStatement,
        Flag::PoolHeld,
        Flag::LongTransaction,
        Flag::Deadlocks,
    ];

    /// The flag's key in the flags file.
    pub(super) fn key(self) -> &'static str {
        match self {
            Flag::RouteLatency => "routeLatency",
            Flag::RouteFailure => "routeFailure",
            Flag::RouteCpuBurn => "routeCpuBurn",
            Flag::SlowStatement => "slowStatement",
            Flag::PoolHeld => "poolHeld",
            Flag::LongTransaction => "longTransaction",
            Flag::Deadlocks => "deadlocks",
        }
    }
}

pub(super) struct Evaluator {
    file: FlagFile,
    client: Client,
    routes: Vec<String>,
}

impl Evaluator {
    /// Opens the flags file as an OpenFeature provider of its own, named by its path, so that
    /// processes with several servers (the tests) keep theirs apart.
    pub(super) async fn open(path: &Path, routes: Vec<String>) -> Result<Self, FlagsError> {
        let name = path.display().to_string();
        let file = FlagFile::open(path).map_err(|reason| FlagsError {
            path: name.clone(),
            reason,
        })?;
        let mut api = OpenFeature::singleton_mut().await;
        api.set_named_provider(&name, file.clone()).await;
        Ok(Self {
            file,
            client: api.create_named_client(&name),
            routes,
        })
    }

    /// Every flag as the file says now.
    pub(super) async fn evaluate(&self) -> State {
        self.file.reload();
        let mut state = State {
            slow_statement: self.millis(Flag::SlowStatement, None).await,
            pool_held: u32::try_from(self.int(Flag::PoolHeld, None).await).unwrap_or(0),
            long_transaction: self.boolean(Flag::LongTransaction).await,
            deadlocks: self.boolean(Flag::Deadlocks).await,
            ..State::default()
        };
        for route in &self.routes {
            let context = EvaluationContext::default().with_custom_field("route", route.as_str());
            let faults = RouteFaults {
                latency: self.millis(Flag::RouteLatency, Some(&context)).await,
                failing: self
                    .client
                    .get_float_value(Flag::RouteFailure.key(), Some(&context), None)
                    .await
                    .map_or(0.0, |share| share.clamp(0.0, 1.0)),
                cpu: self.millis(Flag::RouteCpuBurn, Some(&context)).await,
            };
            if faults != RouteFaults::default() {
                state.routes.insert(route.clone(), faults);
            }
        }
        state
    }

    async fn int(&self, flag: Flag, context: Option<&EvaluationContext>) -> i64 {
        self.client
            .get_int_value(flag.key(), context, None)
            .await
            .unwrap_or(0)
    }

    async fn millis(&self, flag: Flag, context: Option<&EvaluationContext>) -> Duration {
        Duration::from_millis(u64::try_from(self.int(flag, context).await).unwrap_or(0))
    }

    async fn boolean(&self, flag: Flag) -> bool {
        self.client
            .get_bool_value(flag.key(), None, None)
            .await
            .unwrap_or(false)
    }
}
