//! The work the server does besides answering requests, with a lifetime: each task is started
//! here, runs until the server stops, and is stopped with it. A task that fails or panics is
//! logged, counted in `bank_background_task_failures_total`, and started again after a pause
//! that grows while it keeps failing; `bank_background_tasks_running` says which are running.
//! `startup.rs` starts them, so it lists every one.

use std::{error::Error, future::Future, time::Duration};

use prometheus::{IntCounterVec, IntGaugeVec};
use tokio::{sync::watch, task::JoinSet, time::Instant};

use crate::metrics::Metrics;

/// The first pause before a failed task starts again, doubled on each failure up to `MOST`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MOST: Duration = Duration::from_secs(30);
/// A run this long is a success: the next failure pauses `FIRST_PAUSE` again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

pub type TaskError = Box<dyn Error + Send + Sync>;

pub struct Background {
    tasks: JoinSet<&'static str>,
    stop: watch::Sender<bool>,
    failures: IntCounterVec,
    running: IntGaugeVec,
}

impl Background {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            tasks: JoinSet::new(),
            stop: watch::Sender::new(false),
            failures: metrics.background_failures.clone(),
            running: metrics.background_running.clone(),
        }
    }

    /// Runs `task` (each run a fresh future from `start`) until the server stops.
    pub fn spawn<F, E>(&mut self, name: &'static str, start: impl Fn() -> F + Send + 'static)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<TaskError> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        let failures = self.failures.with_label_values(&[name]);
        let running = self.running.with_label_values(&[name]);
        self.tasks.spawn(async move {
            let mut pause = FIRST_PAUSE;
            loop {
                let started = Instant::now();
                // Each run is a task of its own, so that a panic ends the run, not the loop.
                let mut run = tokio::spawn(start());
                running.set(1);
                let ended = tokio::select! {
                    _ = stopped(&mut stop) => {
                        run.abort();
                        let _ = run.await;
                        running.set(0);
                        return name;
                    }
                    ended = &mut run => ended,
                };
                running.set(0);
                failures.inc();
                match ended {
                    Ok(Ok(())) => log::error!("background task {name} ended by itself"),
                    Ok(Err(error)) => {
                        log::error!("background task {name} failed: {}", error.into())
                    }
                    Err(panic) => log::error!("background task {name} panicked: {panic}"),
                }
                if started.elapsed() >= HEALTHY_RUN {
                    pause = FIRST_PAUSE;
                }
                tokio::select! {
                    _ = stopped(&mut stop) => return name,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MOST);
            }
        });
    }

    /// Stops every task and waits until each has stopped.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        while let Some(stopped) = self.tasks.join_next().await {
            match stopped {
                Ok(name) => log::info!("background task {name} stopped"),
                Err(error) => log::error!("a background task could not be stopped: {error}"),
            }
        }
    }
}

/// Resolves once the server asks its background work to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, and with it the server: stop too.
    let _ = stop.wait_for(|stop| *stop).await;
}
