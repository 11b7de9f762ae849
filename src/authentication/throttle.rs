//! Failed logins, remembered for a window: after `PER_USERNAME` failures for one username, or
//! `PER_ADDRESS` from one client address, further logins get 429 until the oldest failure leaves
//! the window. The address limit is looser, so one user's mistakes do not lock out the others
//! behind the same address. Kept in memory: each replica counts its own.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

pub const PER_USERNAME: usize = 5;
pub const PER_ADDRESS: usize = 20;
/// Beyond this many remembered keys, the stalest are dropped: a flood of made-up usernames
/// cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Username(String),
    Address(IpAddr),
}

pub struct Throttle {
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when this username or address has failed too often lately.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        for (key, limit) in keys(username, address) {
            if let Some(times) = failures.get_mut(&key) {
                forget_older(times, now, self.window);
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max(self.window.saturating_sub(now - *oldest));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.as_secs().max(1))
        }
    }

    pub fn failed(&self, username: &str, address: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                forget_older(times, now, self.window);
                !times.is_empty()
            });
        }
        for (key, _) in keys(username, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A correct password clears the username's failures (not the address's).
    pub fn succeeded(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&Key::Username(username.to_owned()));
    }
}

fn keys(username: &str, address: Option<IpAddr>) -> impl Iterator<Item = (Key, usize)> {
    let username = (Key::Username(username.to_owned()), PER_USERNAME);
    let address = address.map(|address| (Key::Address(address), PER_ADDRESS));
    std::iter::once(username).chain(address)
}

fn forget_older(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|time| now - *time >= window) {
        times.pop_front();
    }
}
