//! Continuous profiling: the pyroscope agent samples all the time and pushes what it sampled to
//! the server every 10 s, as Pyroscope's `push.v1` API, under `service_name`.

use pyroscope::{
    PyroscopeAgent, PyroscopeError,
    pyroscope::{PyroscopeAgentBuilder, PyroscopeAgentRunning},
};

use super::FREQUENCY_HZ;
use crate::config::Pyroscope;

pub struct Pusher(PyroscopeAgent<PyroscopeAgentRunning>);

impl Pusher {
    pub fn start(to: &Pyroscope) -> Result<Self, PyroscopeError> {
        let agent = PyroscopeAgentBuilder::new(
            &to.server,
            &to.service_name,
            FREQUENCY_HZ,
            "pyroscope-rs",
            env!("CARGO_PKG_VERSION"),
            super::sampler(),
        )
        .tags(vec![("service_version", env!("CARGO_PKG_VERSION"))])
        .build()?;
        log::info!("CPU profiles are pushed to {} every 10 s", to.server);
        Ok(Self(agent.start()?))
    }

    /// Stops sampling and pushes what was sampled since the last push. Blocks until it is sent.
    pub fn stop(self) {
        match self.0.stop() {
            Ok(agent) => agent.shutdown(),
            Err(error) => log::warn!("the CPU profiler did not stop cleanly: {error}"),
        }
    }
}
