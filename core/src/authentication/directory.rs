//! Who each token's user is (their role, and that they still exist), remembered by this process
//! so that a request with a token costs no database read.
//!
//! It is only safe because every replica hears of every change: on Postgres a trigger announces
//! each deleted user or changed role on the channel `bank_users` as it commits (see the migration
//! `notify_user_changes`), and [`listen`] forgets that user at once. The bound is the delivery of
//! one notification, milliseconds. Nothing is remembered while the channel is not heard (before
//! it is, or after its connection is lost, until it is heard again), and a read that began before
//! a change arrived is not remembered either. SQLite has no notifications: there nothing is
//! remembered and each request reads its user.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::Role;
use crate::domain::UserId;

/// The channel the `users` trigger notifies.
pub const CHANNEL: &str = "bank_users";
/// The payload of a notice that every user may have changed (the table was emptied).
const EVERYONE: &str = "*";
/// Beyond this many users, the directory starts again from empty, so memory stays bounded.
const MAX_USERS: usize = 100_000;

#[derive(Default)]
pub struct Directory {
    users: RwLock<HashMap<UserId, Role>>,
    /// Moves on with every change heard and every loss of the channel; a read that began at an
    /// older generation may be stale, and is not remembered.
    generation: AtomicU64,
    /// Whether changes are being heard; only then is anything remembered.
    listening: AtomicBool,
}

impl Directory {
    /// The user's role, if remembered.
    pub fn role(&self, user: UserId) -> Option<Role> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(&user).copied()
    }

    /// Where the directory stands now: pass it to [`Directory::remember`] with what a read that
    /// starts now finds.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a user read from the database, unless anything changed since `generation` was
    /// taken, or changes are not being heard.
    pub fn remember(&self, user: UserId, role: Role, generation: u64) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        // Under the lock, as `forget` moves the generation under it: no change slips between.
        if !self.listening.load(Ordering::Acquire) || self.generation() != generation {
            return;
        }
        if users.len() >= MAX_USERS {
            users.clear();
        }
        users.insert(user, role);
    }

    /// A change was announced: `payload` is a user's id, or `*` (or anything else) for everyone.
    fn changed(&self, payload: &str) {
        let user = payload.parse().ok().filter(|_| payload != EVERYONE);
        self.forget(user.map(UserId));
    }

    /// Forgets one user (`None`: all of them) and moves the generation on.
    fn forget(&self, user: Option<UserId>) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match user {
            Some(user) => {
                users.remove(&user);
            }
            None => users.clear(),
        }
    }

    fn set_listening(&self, listening: bool) {
        self.forget(None);
        self.listening.store(listening, Ordering::Release);
    }
}

/// Why listening for user changes ended.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen for user changes: {0}")]
    Connect(#[from] sqlx::Error),
    #[error("the connection that heard user changes was lost")]
    Lost,
}

/// Hears the changes announced on `bank_users`, on a connection of its own, and keeps `directory`
/// true to them until that connection is lost. Nothing is remembered before the channel is heard,
/// nor once this returns or is dropped: run it again (the server's background work does) to hear
/// changes again.
///
/// The connection is outside the API's pool: a listener holds its connection for good, and taken
/// from the pool it would leave requests one connection fewer (none at `DB_MAX_CONNECTIONS=1`).
pub async fn listen(
    directory: Arc<Directory>,
    options: PgConnectOptions,
) -> Result<(), ListenError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    let _heard = Heard::start(&directory);
    // `try_recv` gives `None` when the connection is lost, before it would reconnect by itself:
    // what happened meanwhile was not heard, so it is up to the caller to start again.
    while let Some(notice) = listener.try_recv().await? {
        directory.changed(notice.payload());
    }
    Err(ListenError::Lost)
}

/// Changes are heard while this lives: whatever ends the listening (an error, a panic, a stop),
/// the directory forgets everyone and remembers nothing until it is heard again.
struct Heard<'a>(&'a Directory);

impl<'a> Heard<'a> {
    fn start(directory: &'a Directory) -> Self {
        directory.set_listening(true);
        Self(directory)
    }
}

impl Drop for Heard<'_> {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_remembered_unheard_or_across_a_change() {
        let directory = Directory::default();
        let ada = UserId(1);
        directory.remember(ada, Role::Customer, directory.generation());
        assert_eq!(directory.role(ada), None, "not listening: not remembered");

        directory.set_listening(true);
        let before = directory.generation();
        directory.changed("1");
        directory.remember(ada, Role::Customer, before);
        assert_eq!(
            directory.role(ada),
            None,
            "read before a change: not remembered"
        );

        directory.remember(ada, Role::Customer, directory.generation());
        assert_eq!(directory.role(ada), Some(Role::Customer));
        directory.changed("2");
        assert_eq!(
            directory.role(ada),
            Some(Role::Customer),
            "another user's change"
        );
        directory.changed("1");
        assert_eq!(directory.role(ada), None, "forgotten at once");

        directory.remember(ada, Role::Operator, directory.generation());
        directory.changed(EVERYONE);
        assert_eq!(directory.role(ada), None);
        directory.remember(ada, Role::Operator, directory.generation());
        directory.set_listening(false);
        assert_eq!(directory.role(ada), None, "a lost channel forgets everyone");
    }
}
