//! A profile for an operator: sampling starts when asked and stops when the profile is written,
//! as pprof's protobuf (what Go's `/debug/pprof/profile` answers) or as a flame graph SVG.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use inferno::flamegraph;
use prost::Message;
use pyroscope::{
    PyroscopeError,
    backend::{BackendImpl, BackendReady, Report, ReportData},
    encode::pprof,
};

use super::FREQUENCY_HZ;

/// What the flame graph shows when nothing ran while sampling.
const IDLE_SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="30"><text x="5" y="20">No samples: the process was idle</text></svg>"#;

/// Set while a profile is being taken: the profiler is the process's one, so profiles take turns.
static TAKEN: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    #[error("a profile is being taken already")]
    Running,
    #[error("the CPU profiler failed: {0}")]
    Failed(#[from] PyroscopeError),
    #[error("cannot draw the flame graph: {0}")]
    Drawing(#[from] std::io::Error),
}

/// Sampling in progress; dropping it stops sampling and frees the profiler for the next one.
pub struct Sampling {
    backend: Option<BackendImpl<BackendReady>>,
    started: SystemTime,
    clock: Instant,
}

/// What was sampled, as stack traces with their counts.
pub struct Sampled {
    reports: Vec<Report>,
    started: SystemTime,
    duration_nanos: u64,
}

impl Sampling {
    pub fn start() -> Result<Self, SamplingError> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(SamplingError::Running);
        }
        match super::sampler().initialize() {
            Ok(backend) => Ok(Self {
                backend: Some(backend),
                started: SystemTime::now(),
                clock: Instant::now(),
            }),
            Err(error) => {
                TAKEN.store(false, Ordering::Release);
                Err(error.into())
            }
        }
    }

    /// Stops sampling. Blocks: every sampled frame's symbol is resolved here.
    pub fn finish(mut self) -> Result<Sampled, SamplingError> {
        let duration_nanos = self.clock.elapsed().as_nanos() as u64;
        let mut backend = self.backend.take().expect("sampling until finished");
        let batch = backend.report();
        backend.shutdown()?;
        let reports = match batch?.data {
            ReportData::Reports(reports) => reports,
            // The pprof-rs backend answers stack traces; only memory backends answer bytes.
            ReportData::RawPprof(_) => Vec::new(),
        };
        Ok(Sampled {
            reports,
            started: self.started,
            duration_nanos,
        })
    }
}

impl Drop for Sampling {
    fn drop(&mut self) {
        if let Some(backend) = self.backend.take()
            && let Err(error) = backend.shutdown()
        {
            log::warn!("the CPU profiler did not stop cleanly: {error}");
        }
        TAKEN.store(false, Ordering::Release);
    }
}

impl Sampled {
    /// pprof's protobuf, each sample's frames innermost first.
    pub fn pprof(&self) -> Vec<u8> {
        let started = self.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        let profile = pprof::encode(
            &self.reports,
            FREQUENCY_HZ,
            started.as_nanos() as u64,
            self.duration_nanos,
        );
        profile.encode_to_vec()
    }

    /// A flame graph: each stack outermost first, one line per stack with its count, as
    /// Brendan Gregg's `stackcollapse` scripts write them for `flamegraph.pl`.
    pub fn flame_graph(&self) -> Result<Vec<u8>, SamplingError> {
        let stacks: Vec<String> = self
            .reports
            .iter()
            .flat_map(|report| report.data.iter())
            .map(|(trace, count)| {
                let frames: Vec<String> = trace
                    .frames
                    .iter()
                    .rev()
                    .map(|frame| frame.name.as_deref().unwrap_or("?").replace(';', ":"))
                    .collect();
                format!("{} {count}", frames.join(";"))
            })
            .collect();
        if stacks.is_empty() {
            return Ok(IDLE_SVG.as_bytes().to_vec());
        }
        let mut svg = Vec::new();
        let mut options = flamegraph::Options::default();
        flamegraph::from_lines(&mut options, stacks.iter().map(String::as_str), &mut svg)?;
        Ok(svg)
    }
}
