//! Failed logins, counted in the database for a window so that every replica sees the same
//! counts. Three things are counted: the username together with the client address (the tight
//! limit, so that someone guessing from one address does not lock the user out everywhere else),
//! the username alone (a higher cap, against guessing spread over many addresses), and the
//! address alone (against one address trying many usernames). Past any limit, logins get 429
//! until that window ends.
//!
//! An attempt is counted before its password is checked, in one statement that returns the new
//! counts: parallel attempts cannot all slip under a limit while their hashes are checked, on one
//! replica or many. A correct password then takes its attempt back (the address's count) and
//! clears the username's counts.

use std::{net::IpAddr, time::Duration};

use chrono::Utc;
use entity::login_failure::{self, Column};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use sha2::{Digest, Sha256};

/// Failures of one username from one address.
pub const PER_USERNAME_AND_ADDRESS: i32 = 5;
/// Failures of one username from every address together.
pub const PER_USERNAME: i32 = 50;
/// Failures from one address, whatever the usernames.
pub const PER_ADDRESS: i32 = 20;

pub struct Throttle {
    window: Duration,
}

/// What one login attempt is counted under, and the limit of each.
pub struct Attempt {
    username: String,
    pair: Option<String>,
    address: Option<String>,
}

impl Attempt {
    fn new(username: &str, address: Option<IpAddr>) -> Self {
        // `ADA` and `ada` are one name, and one count.
        let username = crate::domain::username_key(username);
        Self {
            username: digest(&format!("username:{username}")),
            pair: address.map(|address| digest(&format!("pair:{address}/{username}"))),
            address: address.map(|address| digest(&format!("address:{address}"))),
        }
    }

    fn limits(&self) -> impl Iterator<Item = (&String, i32)> {
        let username = Some((&self.username, PER_USERNAME));
        let pair = self
            .pair
            .as_ref()
            .map(|key| (key, PER_USERNAME_AND_ADDRESS));
        let address = self.address.as_ref().map(|key| (key, PER_ADDRESS));
        [username, pair, address].into_iter().flatten()
    }

    fn keys(&self) -> Vec<String> {
        self.limits().map(|(key, _)| key.clone()).collect()
    }
}

/// Why an attempt may not go on.
pub enum Refusal {
    /// Over a limit: the seconds until its window ends.
    Throttled(u64),
    Database(DbErr),
}

impl From<DbErr> for Refusal {
    fn from(error: DbErr) -> Self {
        Self::Database(error)
    }
}

impl Throttle {
    pub fn new(window: Duration) -> Self {
        Self { window }
    }

    /// Counts an attempt to log in as `username` from `address` as a failure until
    /// [`Throttle::succeeded`] says otherwise. Refused without being counted when a limit is
    /// already reached, so that refused attempts do not push the user's other counts up.
    pub async fn attempt(
        &self,
        db: &impl ConnectionTrait,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt, Refusal> {
        let attempt = Attempt::new(username, address);
        let now = now_ms();
        let current = login_failure::Entity::find()
            .filter(Column::Key.is_in(attempt.keys()))
            .filter(Column::WindowStartedAt.gt(self.cutoff(now)))
            .all(db)
            .await?;
        self.within_limits(&attempt, &current, now, 1)?;
        let counted = self.count(db, &attempt, now).await?;
        // Counted now, so it may reach each limit; others may have been counted meanwhile.
        self.within_limits(&attempt, &counted, now, 0)?;
        Ok(attempt)
    }

    /// The password was right: the attempt is not a failure after all.
    pub async fn succeeded(
        &self,
        db: &impl ConnectionTrait,
        attempt: &Attempt,
    ) -> Result<(), DbErr> {
        let username = [Some(attempt.username.clone()), attempt.pair.clone()];
        login_failure::Entity::delete_many()
            .filter(Column::Key.is_in(username.into_iter().flatten()))
            .exec(db)
            .await?;
        if let Some(address) = &attempt.address {
            let one_fewer =
                Expr::case(Column::Failures.gt(0), Expr::col(Column::Failures).sub(1)).finally(0);
            login_failure::Entity::update_many()
                .col_expr(Column::Failures, one_fewer.into())
                .filter(Column::Key.eq(address))
                .exec(db)
                .await?;
        }
        Ok(())
    }

    /// Forgets the windows that have ended. Run now and then by every replica; any one is enough.
    pub async fn sweep(&self, db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let ended = login_failure::Entity::delete_many()
            .filter(Column::WindowStartedAt.lte(self.cutoff(now_ms())))
            .exec(db)
            .await?;
        Ok(ended.rows_affected)
    }

    /// Sweeps once a window, for as long as it runs; a failed sweep ends it.
    pub async fn keep_swept(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut every_window = tokio::time::interval(self.window);
        loop {
            every_window.tick().await;
            self.sweep(db).await?;
        }
    }

    /// One more failure under each of the attempt's keys, in one statement: a key whose window
    /// has ended starts a new one. Returns the counts after it.
    async fn count(
        &self,
        db: &impl ConnectionTrait,
        attempt: &Attempt,
        now: i64,
    ) -> Result<Vec<login_failure::Model>, DbErr> {
        let rows = attempt
            .keys()
            .into_iter()
            .map(|key| login_failure::ActiveModel {
                key: Set(key),
                window_started_at: Set(now),
                failures: Set(1),
            });
        let stored = |column: Column| Expr::col((login_failure::Entity, column));
        let ended = stored(Column::WindowStartedAt).lte(self.cutoff(now));
        let failures = Expr::case(ended.clone(), 1).finally(stored(Column::Failures).add(1));
        let started = Expr::case(ended, Expr::cust("excluded.window_started_at"))
            .finally(stored(Column::WindowStartedAt));
        let on_conflict = OnConflict::column(Column::Key)
            .value(Column::Failures, failures)
            .value(Column::WindowStartedAt, started)
            .to_owned();
        login_failure::Entity::insert_many(rows)
            .on_conflict(on_conflict)
            .exec_with_returning(db)
            .await
    }

    /// Refused when a count plus `this_attempt` (1 before it is counted, 0 after) is over a limit.
    fn within_limits(
        &self,
        attempt: &Attempt,
        counts: &[login_failure::Model],
        now: i64,
        this_attempt: i32,
    ) -> Result<(), Refusal> {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let over = |(key, limit): (&String, i32)| {
            let count = counts.iter().find(|row| &row.key == key)?;
            (count.failures + this_attempt > limit)
                .then(|| count.window_started_at.saturating_add(window) - now)
        };
        match attempt.limits().filter_map(over).max() {
            Some(wait_ms) => Err(Refusal::Throttled(seconds_to_wait(wait_ms))),
            None => Ok(()),
        }
    }

    fn cutoff(&self, now: i64) -> i64 {
        now - i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// Whole seconds, at least one: `Retry-After` of 0 would invite an immediate retry.
fn seconds_to_wait(milliseconds: i64) -> u64 {
    Ord::max(u64::try_from(milliseconds).unwrap_or(0).div_ceil(1000), 1)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
