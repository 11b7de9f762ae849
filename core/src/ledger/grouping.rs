//! Writes waiting at the same moment go to Postgres together, as the items of one call of the
//! grouped statement (`grouped`). One group runs at a time; the writes that arrive meanwhile wait
//! and go together in the next one. When nothing is running a write goes alone, at once, so a
//! quiet server answers as fast as before (the pattern of `coalesce`, for reads).
//!
//! A group that fails as a whole answers each of its items truthfully: when the database answered
//! with an error (the statement was rolled back, so nothing of it happened), each item is tried
//! again alone, so that one item's trouble is its own, and a write alone that the database rolled
//! back for a conflict with another transaction is tried once more; when the connection failed,
//! every item gets that failure and is settled by its own write id (`writes`).
//!
//! Traces: a group's statement runs in a `ledger.group` span, in every traced request's trace
//! (`linked`).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::oneshot;
use tracing::{Instrument, Span};

use super::{
    Pause,
    grouped::{FUNCTION, retry_alone},
    linked,
    writes::{Item, ItemOutcome, after_conflict},
};
use crate::database;

/// Groups running at once; a write that finds this many waits for the next one. One: a second
/// group running beside it halves both, and a posting's share of a call costs more in a smaller
/// group than the overlap wins (`bench/compare.py`, 32 connections, against 2 at once: postings
/// 7,091 against 6,465 req/s, CPU per posting 42 against 53 µs in the server and 111 against
/// 144 µs in Postgres; transfers 5,650 against 5,284; 3 at once was slower still).
const IN_FLIGHT: usize = 1;
/// The most items one group carries, unless one caller's writes sent together are more: those
/// always go in one group, in their order, so that no two groups can reorder them.
const MOST: usize = 1024;

type Answer = Result<ItemOutcome, DbErr>;

struct Waiting {
    item: Item,
    answer: oneshot::Sender<Answer>,
    /// The span of the request that sent it.
    span: Span,
}

pub(super) struct Groups {
    db: DatabaseConnection,
    pause: Pause,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Writes sent together stay together: each entry is one caller's.
    waiting: VecDeque<Vec<Waiting>>,
    running: usize,
}

impl Groups {
    pub(super) fn new(db: DatabaseConnection, pause: Pause) -> Arc<Self> {
        Arc::new(Self {
            db,
            pause,
            state: Mutex::default(),
        })
    }

    /// Applies `item` in the next group and returns what became of it.
    pub(super) async fn apply(self: &Arc<Self>, item: Item) -> Answer {
        let mut answers = self.apply_in_order(vec![item]).await;
        answers
            .pop()
            .unwrap_or_else(|| Err(DbErr::Custom("no answer for a grouped write".into())))
    }

    /// Applies `items` in one group, in their order, and returns what became of each.
    pub(super) async fn apply_in_order(self: &Arc<Self>, items: Vec<Item>) -> Vec<Answer> {
        let span = Span::current();
        let (waiting, answered): (Vec<Waiting>, Vec<_>) = items
            .into_iter()
            .map(|item| {
                let (answer, answered) = oneshot::channel();
                let span = span.clone();
                (Waiting { item, answer, span }, answered)
            })
            .unzip();
        let leads = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push_back(waiting);
            let leads = state.running < IN_FLIGHT;
            state.running += usize::from(leads);
            leads
        };
        if leads {
            // This request sends what is waiting, itself included; whatever comes meanwhile is
            // sent by a task of its own, so this request is not held up answering others.
            if let Some(group) = self.take() {
                apply(&self.db, group, self.pause.get()).await;
                tokio::spawn(self.clone().drain());
            }
        }
        let mut answers = Vec::with_capacity(answered.len());
        for answered in answered {
            answers.push(answered.await.unwrap_or_else(|_| {
                Err(DbErr::Custom(
                    "a grouped write was dropped unanswered".into(),
                ))
            }));
        }
        answers
    }

    /// The waiting writes, oldest first, up to `MOST` (or one caller's writes sent together);
    /// `None`, and one group fewer running, when none waits.
    fn take(&self) -> Option<Vec<Waiting>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut group) = state.waiting.pop_front() else {
            state.running -= 1;
            return None;
        };
        while let Some(next) = state.waiting.front()
            && group.len() + next.len() <= MOST
        {
            group.extend(state.waiting.pop_front().into_iter().flatten());
        }
        Some(group)
    }

    async fn drain(self: Arc<Self>) {
        while let Some(group) = self.take() {
            apply(&self.db, group, self.pause.get()).await;
        }
    }
}

async fn apply(db: &DatabaseConnection, group: Vec<Waiting>, pause: Option<Duration>) {
    let writes = group.len();
    let (statement, _linked) = linked::spans(group.iter().map(|waiting| &waiting.span), || {
        tracing::info_span!("ledger.group", writes)
    });
    apply_group(db, group, pause).instrument(statement).await;
}

async fn apply_group(db: &DatabaseConnection, group: Vec<Waiting>, pause: Option<Duration>) {
    let items: Vec<&Item> = group.iter().map(|waiting| &waiting.item).collect();
    match FUNCTION.apply(db, &items, pause).await {
        Ok(outcomes) => {
            for (waiting, outcome) in group.into_iter().zip(outcomes) {
                let _ = waiting.answer.send(Ok(outcome));
            }
        }
        Err(error) if retry_alone(&error, group.len()) => {
            if database::is_conflict(&error) {
                after_conflict(&error).await;
            }
            log::debug!(
                "a group of {} writes failed, each is tried alone: {error}",
                group.len()
            );
            for waiting in group {
                let alone =
                    FUNCTION
                        .apply(db, &[&waiting.item], pause)
                        .await
                        .and_then(|mut outcomes| {
                            outcomes
                                .pop()
                                .ok_or_else(|| DbErr::Custom("no outcome for a write alone".into()))
                        });
                let _ = waiting.answer.send(alone);
            }
        }
        Err(error) => {
            for waiting in group {
                let _ = waiting.answer.send(Err(error.clone()));
            }
        }
    }
}
