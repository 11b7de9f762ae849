//! A pause inside every grouped write's statement, holding its locks as a slow statement does:
//! what the `slowStatement` fault flag asks for. Zero unless a flag sets it, and then the
//! statement is the usual one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

#[derive(Clone, Debug, Default)]
pub struct Pause(Arc<AtomicU64>);

impl Pause {
    pub fn set(&self, pause: Duration) {
        let millis = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.0.store(millis, Ordering::Relaxed);
    }

    /// The pause to add, `None` when there is none.
    pub(super) fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        }
    }
}
