//! The process's CPU profiles, from pyroscope's pprof-rs backend. A process holds one such
//! profiler (a timer signal and its handler), so it is given to one user: operators asking for a
//! profile on demand (`PROFILING=true`, [`Sampling`]) or Pyroscope, pushed to all the time
//! (`PYROSCOPE_SERVER_ADDRESS`, [`Pusher`]); the settings refuse both at once. The backend
//! unwinds with framehop from the signal's saved registers, so a sample starts at the function
//! the thread was running and the handler never calls into libgcc's unwinder (which can
//! deadlock there).

mod on_demand;
mod push;

use pyroscope::backend::{
    BackendConfig, BackendImpl, BackendUninitialized, PprofConfig, pprof_backend,
};

pub use on_demand::{Sampled, Sampling, SamplingError};
pub use push::Pusher;

/// Samples a second: not 100, so that sampling never runs in step with a 100 Hz timer and sees
/// only what runs on its ticks.
const FREQUENCY_HZ: u32 = 99;

/// The sampler both users start: pprof-rs at [`FREQUENCY_HZ`], no thread or process labels.
fn sampler() -> BackendImpl<BackendUninitialized> {
    let config = PprofConfig {
        sample_rate: FREQUENCY_HZ,
    };
    pprof_backend(config, BackendConfig::default())
}
