//! Writes waiting at the same moment go to Postgres together, as the items of one call of the
//! grouped statement (`grouped`). One group runs at a time; the writes that arrive meanwhile wait
//! and go together in the next one. When nothing is running a write goes alone, at once, so a
//! quiet server answers as fast as before (the pattern of `coalesce`, for reads).
//!
//! A group long enough is sent as two parts at once, each on a connection of its own, when its
//! items fall in two parts that share no account and no idempotency key (`split`): one group's
//! statement runs on one core of Postgres, and two parts run on two. Writes on one account still
//! go in the order they came: all of them are in one part.
//!
//! A group that fails as a whole answers each of its items truthfully: when the database answered
//! with an error (the statement was rolled back, so nothing of it happened), each item is tried
//! again alone, so that one item's trouble is its own, and a write alone that the database rolled
//! back for a conflict with another transaction is tried once more; when the connection failed,
//! every item gets that failure and is settled by its own write id (`writes`).
//!
//! Traces: a group's statement runs in a `ledger.group` span, in every traced request's trace
//! (`linked`). Metrics: each group's (each part's) number of writes goes to a [`GroupObserver`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
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
    writes::{Item, ItemOutcome, Movement, after_conflict},
};
use crate::database;

/// Groups running at once (a group sent in two parts counts once); a write that finds this many
/// waits for the next one. One: a second group may share accounts with the first (and could then
/// take their locks first, out of arrival order); running beside it, it halves both, and a
/// posting's share of a call costs more in a smaller group than the overlap wins
/// (`bench/compare.py`, 32 connections, against 2 at once: postings 7,091 against 6,465 req/s,
/// CPU per posting 42 against 53 µs in the server and 111 against 144 µs in Postgres; transfers
/// 5,650 against 5,284; 3 at once was slower still).
const IN_FLIGHT: usize = 1;
/// The most items one group carries, unless one caller's writes sent together are more: those
/// always go in one group, in their order, so that no two groups can reorder them. Each group
/// (each part of one) pays a commit, whose flush of the log cost Postgres CPU as well as time:
/// batches of 100 postings from 32 connections, at most 1,024 against 2,048 items, 505 against
/// 538 and 491 against 570 requests/s, Postgres CPU per batch 2,548 against 2,403 and 2,549
/// against 2,314 µs (`bench/compare.py`'s method, the one build, 5 rounds of 5 s); single
/// postings never fill a group, and stayed within 1%. 4,096 gained nothing more (586 against
/// 578): 32 clients of 100 postings each keep at most 3,200 waiting.
const MOST: usize = 2048;

type Answer = Result<ItemOutcome, DbErr>;

/// Told the number of writes of each group (each part of one) as it is sent: how many share a
/// call and a commit sets what each write costs Postgres, and how long each waits.
pub type GroupObserver = Arc<dyn Fn(usize) + Send + Sync>;

struct Waiting {
    item: Item,
    answer: oneshot::Sender<Answer>,
    /// The span of the request that sent it.
    span: Span,
}

pub(super) struct Groups {
    db: DatabaseConnection,
    pause: Pause,
    observe: GroupObserver,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Writes sent together stay together: each entry is one caller's.
    waiting: VecDeque<Vec<Waiting>>,
    running: usize,
}

impl State {
    /// The waiting writes, oldest first, up to `MOST` (or one caller's writes sent together).
    fn next_group(&mut self) -> Option<Vec<Waiting>> {
        let mut group = self.waiting.pop_front()?;
        while let Some(next) = self.waiting.front()
            && group.len() + next.len() <= MOST
        {
            group.extend(self.waiting.pop_front().into_iter().flatten());
        }
        Some(group)
    }
}

impl Groups {
    pub(super) fn new(db: DatabaseConnection, pause: Pause, observe: GroupObserver) -> Arc<Self> {
        Arc::new(Self {
            db,
            pause,
            observe,
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
                self.send(group).await;
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

    /// The next group; `None`, and one group fewer running, when none waits.
    fn take(&self) -> Option<Vec<Waiting>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let group = state.next_group();
        if group.is_none() {
            state.running -= 1;
        }
        group
    }

    async fn drain(self: Arc<Self>) {
        while let Some(group) = self.take() {
            self.send(group).await;
        }
    }

    /// Sends `group`, in two parts when it splits (`split`).
    async fn send(&self, group: Vec<Waiting>) {
        let pause = self.pause.get();
        let items: Vec<&Item> = group.iter().map(|waiting| &waiting.item).collect();
        match split(&items) {
            None => self.send_part(group, pause).await,
            Some(second) => {
                let (seconds, firsts): (Vec<_>, Vec<_>) = group
                    .into_iter()
                    .zip(second)
                    .partition(|(_, second)| *second);
                let part =
                    |part: Vec<(Waiting, bool)>| part.into_iter().map(|(waiting, _)| waiting);
                tokio::join!(
                    self.send_part(part(firsts).collect(), pause),
                    self.send_part(part(seconds).collect(), pause)
                );
            }
        }
    }

    async fn send_part(&self, group: Vec<Waiting>, pause: Option<Duration>) {
        let writes = group.len();
        (self.observe)(writes);
        let (statement, _linked) = linked::spans(group.iter().map(|waiting| &waiting.span), || {
            tracing::info_span!("ledger.group", writes)
        });
        apply_group(&self.db, group, pause)
            .instrument(statement)
            .await;
    }
}

/// The fewest items a part may have when a group is split in two: a part pays a round trip, a
/// call and a commit of its own, worth it only where its items' own work is much more (pgbench
/// calling the function, one client, postings on random accounts: 3.9 ms for 100 items, 13.9 ms
/// for 500, so about 25 µs an item and 1.4 ms a call, commit included). Only writes sent
/// together reach it: 32 clients each sending one write never do. Split, batches of 100
/// postings from 32 connections went from 345 to 505 requests/s (`bench/compare.py`'s method,
/// 3 rounds of 5 s, the one build with splitting off and on), and single postings and transfers
/// stayed within 3%.
pub const PART_AT_LEAST: usize = 128;

/// What an item's outcome depends on, besides itself: an account it moves, the key it claims.
#[derive(PartialEq, Eq, Hash)]
enum Touched<'a> {
    Account(i64),
    Key(&'a str),
}

fn touched(item: &Item) -> impl Iterator<Item = Touched<'_>> {
    let (first, second) = match item.write.movement {
        Movement::Post(posting) => (posting.account.0, None),
        Movement::Transfer(transfer) => (transfer.from.0, Some(transfer.to.0)),
    };
    let key = item
        .write
        .claim
        .as_ref()
        .map(|claim| Touched::Key(claim.key()));
    std::iter::once(Touched::Account(first))
        .chain(second.map(Touched::Account))
        .chain(key)
}

/// For each item, whether it goes in the second of two parts that share nothing an outcome
/// depends on (each item lands with every other touching what it touches), as even as whole
/// sets of such items allow; `None` when a part would have fewer than `PART_AT_LEAST` items.
fn split(items: &[&Item]) -> Option<Vec<bool>> {
    if items.len() < 2 * PART_AT_LEAST {
        return None;
    }
    // Union-find: each item points towards the first item of its set.
    let mut set: Vec<usize> = (0..items.len()).collect();
    fn find(set: &mut [usize], mut item: usize) -> usize {
        while set[item] != item {
            set[item] = set[set[item]];
            item = set[item];
        }
        item
    }
    let mut first_to_touch = HashMap::new();
    for (item, write) in items.iter().enumerate() {
        for touched in touched(write) {
            let other = *first_to_touch.entry(touched).or_insert(item);
            let (a, b) = (find(&mut set, item), find(&mut set, other));
            set[a.max(b)] = a.min(b);
        }
    }
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for item in 0..items.len() {
        *sizes.entry(find(&mut set, item)).or_default() += 1;
    }
    // The largest sets first, each to the smaller part: the parts end within one set of even.
    let mut sets: Vec<(usize, usize)> = sizes.into_iter().collect();
    sets.sort_unstable_by_key(|&(first, size)| (std::cmp::Reverse(size), first));
    let (mut firsts, mut seconds, mut second) = (0, 0, HashSet::new());
    for (first, size) in sets {
        if seconds < firsts {
            seconds += size;
            second.insert(first);
        } else {
            firsts += size;
        }
    }
    (firsts.min(seconds) >= PART_AT_LEAST).then(|| {
        (0..items.len())
            .map(|item| second.contains(&find(&mut set, item)))
            .collect()
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{AccountId, IdempotencyKey, Scope},
        idempotency::{Claim, OwnedKey},
        ledger::{Posting, Transfer, Write},
    };

    fn item(movement: Movement, key: Option<&str>) -> Item {
        let claim = key.map(|key| {
            let key = IdempotencyKey::parse(key).expect("a key");
            Claim::new(OwnedKey { owner: None, key }, "test", &"")
        });
        Item {
            write: Write {
                movement,
                scope: Scope::All,
                claim,
                trace: None,
            },
            write_id: uuid::Uuid::nil(),
        }
    }

    fn posting(account: i64) -> Item {
        item(
            Movement::Post(Posting::new(AccountId(account), 1, 0).expect("a posting")),
            None,
        )
    }

    fn transfer(from: i64, to: i64) -> Item {
        item(
            Movement::Transfer(
                Transfer::new(AccountId(from), AccountId(to), 1).expect("a transfer"),
            ),
            None,
        )
    }

    fn split_of(items: &[Item]) -> Option<Vec<bool>> {
        split(&items.iter().collect::<Vec<_>>())
    }

    /// Which accounts each part moves.
    fn accounts(items: &[Item], second: &[bool]) -> [HashSet<i64>; 2] {
        let mut parts = [HashSet::new(), HashSet::new()];
        for (item, &second) in items.iter().zip(second) {
            parts[usize::from(second)].extend(touched(item).filter_map(|touched| match touched {
                Touched::Account(id) => Some(id),
                Touched::Key(_) => None,
            }));
        }
        parts
    }

    /// One caller's writes, sent together.
    fn sent_together(writes: usize) -> Vec<Waiting> {
        (0..writes)
            .map(|n| Waiting {
                item: posting(n as i64),
                answer: oneshot::channel().0,
                span: Span::none(),
            })
            .collect()
    }

    #[test]
    fn a_group_carries_whole_callers_up_to_the_most() {
        let mut state = State::default();
        state
            .waiting
            .extend([1000, 1000, 1000, 3000, 1].map(sent_together));
        let lengths: Vec<usize> = std::iter::from_fn(|| state.next_group())
            .map(|group| group.len())
            .collect();
        // Two batches of a thousand share a commit; a caller's writes beyond the most go whole.
        assert_eq!(lengths, [2000, 1000, 3000, 1]);
    }

    #[test]
    fn postings_on_many_accounts_go_in_two_even_parts_that_share_no_account() {
        let items: Vec<Item> = (0..4 * PART_AT_LEAST as i64)
            .map(|n| posting(n % 10))
            .collect();
        let second = split_of(&items).expect("two parts");
        let seconds = second.iter().filter(|&&second| second).count();
        assert!(seconds.abs_diff(items.len() - seconds) <= items.len() / 10 + 1);
        let [firsts, seconds] = accounts(&items, &second);
        assert!(firsts.is_disjoint(&seconds), "{firsts:?} {seconds:?}");
    }

    #[test]
    fn a_group_too_short_for_two_parts_is_not_split() {
        let items: Vec<Item> = (0..2 * PART_AT_LEAST as i64 - 1).map(posting).collect();
        assert_eq!(split_of(&items), None);
    }

    #[test]
    fn transfers_that_chain_every_account_keep_the_group_whole() {
        let mut items: Vec<Item> = (0..2 * PART_AT_LEAST as i64).map(posting).collect();
        items.extend((1..2 * PART_AT_LEAST as i64).map(|n| transfer(n - 1, n)));
        assert_eq!(split_of(&items), None);
    }

    #[test]
    fn writes_with_one_key_stay_in_one_part_whatever_their_accounts() {
        let mut items: Vec<Item> = (0..4 * PART_AT_LEAST as i64).map(posting).collect();
        items[0] = item(items[0].write.movement, Some("same"));
        let last = items.len() - 1;
        items[last] = item(items[last].write.movement, Some("same"));
        let second = split_of(&items).expect("two parts");
        assert_eq!(second[0], second[last]);
    }

    #[test]
    fn a_part_smaller_than_the_least_leaves_the_group_whole() {
        // One account's long run and a short remainder: no two parts of `PART_AT_LEAST` each.
        let mut items: Vec<Item> = (0..3 * PART_AT_LEAST).map(|_| posting(1)).collect();
        items.extend((0..PART_AT_LEAST as i64 - 1).map(|n| posting(100 + n)));
        assert_eq!(split_of(&items), None);
    }
}
