//! The money rules are written once and executed two ways: on Postgres a posting is one statement
//! (and step by step when that statement changes nothing, to find out why), on SQLite always step
//! by step. Both are checked against a reference model: a few lines of plain Rust holding each
//! account's balance and owner, applying the rules in order. Operations are generated in groups
//! that run at the same time; whatever order the database picked, the outcomes must be the
//! model's for some order of the group, and the balances the model's afterwards. A rule broken
//! the same way in both executions therefore still fails here. Some operations carry an
//! idempotency key, so keys are checked the same way: a key replays its own request's outcome,
//! refuses another request, and is not used up by a refused write.

use bank_api::config::Settings;
use std::{collections::HashMap, time::Duration};

use bank_core::{
    database,
    domain::{AccountId, IdempotencyKey, MAX_AMOUNT, MAX_BALANCE, Scope, Text, UserId},
    idempotency::{Claim, OwnedKey, WriteError},
    ledger::{
        self, Ledger, LedgerError, Movement, NewAccount, Posting, Replay, Transfer, Write, Written,
    },
};
use entity::{account, user};
use futures_util::future::join_all;
use proptest::{prelude::*, test_runner::TestRunner};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

#[path = "../common/mod.rs"]
mod common;

/// Each case's accounts: two of customer 0, one of customer 1, one of the operators; index 4
/// names an account that does not exist.
const OWNERS: [Option<usize>; 4] = [Some(0), Some(0), Some(1), None];
const MISSING: usize = OWNERS.len();

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Operator,
    Customer(usize),
}

#[derive(Clone, Debug)]
enum Operation {
    Post {
        by: Who,
        account: usize,
        credit: i64,
        debit: i64,
    },
    Transfer {
        by: Who,
        from: usize,
        to: usize,
        amount: i64,
    },
}

impl Operation {
    fn by(&self) -> Who {
        match *self {
            Self::Post { by, .. } | Self::Transfer { by, .. } => by,
        }
    }

    /// What a request is recognised by when its key comes again.
    fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

/// An operation as it is sent: with one of a few idempotency keys of its sender, or none.
#[derive(Clone, Debug)]
struct Sent {
    operation: Operation,
    key: Option<u8>,
}

/// What an operation came to, in terms the model and both backends share (not their row ids).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The balances left, in the order the rows were written.
    Applied(Vec<i64>),
    /// Its key's first request's balances, answered again.
    Replayed(Vec<i64>),
    KeyReused,
    Invalid,
    Refused(&'static str),
}

/// The bank as the rules describe it, without a database.
#[derive(Clone, Debug)]
struct Model {
    balances: Vec<i64>,
    /// Each used key: the fingerprint of its request and what that request left.
    keys: HashMap<(Who, u8), (String, Vec<i64>)>,
}

impl Model {
    /// Whether `who` may move money out of `account`: it exists and, for a customer, is theirs.
    fn may_debit(who: Who, account: usize) -> bool {
        match (who, OWNERS.get(account)) {
            (_, None) => false,
            (Who::Operator, Some(_)) => true,
            (Who::Customer(c), Some(owner)) => *owner == Some(c),
        }
    }

    /// The balance after adding `delta`, or why not: the floor binds only what lowers a balance.
    fn change(&self, account: usize, delta: i64) -> Result<i64, &'static str> {
        let after = self.balances[account] + delta;
        if delta < 0 && after < 0 {
            return Err("insufficient funds");
        }
        if after > MAX_BALANCE {
            return Err("balance limit");
        }
        Ok(after)
    }

    fn send(&mut self, sent: &Sent) -> Outcome {
        let operation = &sent.operation;
        if !Self::valid(operation) {
            return Outcome::Invalid;
        }
        let Some(key) = sent.key else {
            return self.apply(operation);
        };
        let key = (operation.by(), key);
        if let Some((fingerprint, balances)) = self.keys.get(&key) {
            return match *fingerprint == operation.fingerprint() {
                true => Outcome::Replayed(balances.clone()),
                false => Outcome::KeyReused,
            };
        }
        let outcome = self.apply(operation);
        if let Outcome::Applied(balances) = &outcome {
            self.keys
                .insert(key, (operation.fingerprint(), balances.clone()));
        }
        outcome
    }

    /// What a request may ask for, whatever the accounts hold.
    fn valid(operation: &Operation) -> bool {
        match *operation {
            Operation::Post { credit, debit, .. } => {
                (0..=MAX_AMOUNT).contains(&credit)
                    && (0..=MAX_AMOUNT).contains(&debit)
                    && (credit, debit) != (0, 0)
            }
            Operation::Transfer {
                from, to, amount, ..
            } => (1..=MAX_AMOUNT).contains(&amount) && from != to,
        }
    }

    fn apply(&mut self, operation: &Operation) -> Outcome {
        let outcome = match *operation {
            Operation::Post {
                by,
                account,
                credit,
                debit,
            } => {
                if !Self::may_debit(by, account) {
                    return Outcome::Refused("account not found");
                }
                self.change(account, credit - debit)
                    .map(|after| vec![(account, after)])
            }
            Operation::Transfer {
                by,
                from,
                to,
                amount,
            } => {
                if !Self::may_debit(by, from) || to == MISSING {
                    return Outcome::Refused("account not found");
                }
                // The sender's refusal is told before the receiver's.
                self.change(from, -amount).and_then(|sent| {
                    let received = self.change(to, amount)?;
                    Ok(vec![(from, sent), (to, received)])
                })
            }
        };
        match outcome {
            Ok(changes) => {
                for &(account, after) in &changes {
                    self.balances[account] = after;
                }
                Outcome::Applied(changes.into_iter().map(|(_, after)| after).collect())
            }
            Err(refusal) => Outcome::Refused(refusal),
        }
    }

    /// The model after `group` in some order that gives exactly `observed`, if there is one.
    fn explain(&self, group: &[Sent], observed: &[Outcome]) -> Option<Self> {
        if group.is_empty() {
            return Some(self.clone());
        }
        (0..group.len()).find_map(|first| {
            let mut next = self.clone();
            if next.send(&group[first]) != observed[first] {
                return None;
            }
            next.explain(&without(group, first), &without(observed, first))
        })
    }
}

/// `items` but the one at `index`.
fn without<T: Clone>(items: &[T], index: usize) -> Vec<T> {
    let mut rest = items.to_vec();
    rest.remove(index);
    rest
}

/// Small amounts and balances, so that a change often lands on or just past the floor.
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 0..40_i64,
        1 => Just(0),
        1 => Just(MAX_AMOUNT),
        1 => Just(MAX_AMOUNT + 1),
        1 => Just(-1),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::Operator), (0..2_usize).prop_map(Who::Customer)]
}

fn operation() -> impl Strategy<Value = Operation> {
    let account = 0..=MISSING;
    prop_oneof![
        (who(), account.clone(), amount(), amount()).prop_map(|(by, account, credit, debit)| {
            Operation::Post {
                by,
                account,
                credit,
                debit,
            }
        }),
        (who(), account.clone(), account, amount()).prop_map(|(by, from, to, amount)| {
            Operation::Transfer {
                by,
                from,
                to,
                amount,
            }
        }),
    ]
}

/// An operation, with one of three keys of its sender half of the time.
fn sent() -> impl Strategy<Value = Sent> {
    let key = prop_oneof![Just(None), (0..3_u8).prop_map(Some)];
    (operation(), key).prop_map(|(operation, key)| Sent { operation, key })
}

/// Groups of operations sent at the same time.
fn groups() -> impl Strategy<Value = Vec<Vec<Sent>>> {
    proptest::collection::vec(proptest::collection::vec(sent(), 1..=4), 1..6)
}

/// Starting balances: empty, some, and close enough to the limit for credits to break it.
fn balances() -> impl Strategy<Value = Vec<i64>> {
    let balance = prop_oneof![
        Just(0),
        1..40_i64,
        Just(MAX_BALANCE - 100),
        Just(MAX_BALANCE)
    ];
    proptest::collection::vec(balance, OWNERS.len())
}

struct Backend {
    db: DatabaseConnection,
    ledger: Ledger,
    customers: [UserId; 2],
}

impl Backend {
    async fn open(database_url: String) -> Self {
        let settings = Settings {
            database_url,
            ..Settings::default()
        };
        let db = database::connect(&settings.database())
            .await
            .expect("the database opens");
        let mut customers = [UserId(0); 2];
        for (i, customer) in customers.iter_mut().enumerate() {
            let created = user::ActiveModel {
                username: Set(format!("customer{i}")),
                password_hash: Set("not a hash: nobody logs in here".into()),
                role: Set("customer".into()),
                created_at: Set(chrono::Utc::now()),
                ..Default::default()
            }
            .insert(&db)
            .await
            .expect("a customer");
            *customer = UserId(created.id);
        }
        let ledger = Ledger::new(db.clone(), true, Duration::from_secs(5));
        Self {
            db,
            ledger,
            customers,
        }
    }

    fn scope(&self, who: Who) -> Scope {
        match who {
            Who::Operator => Scope::All,
            Who::Customer(i) => Scope::OwnedBy(self.customers[i]),
        }
    }

    /// This case's accounts, with their starting balances, and an id that exists nowhere.
    async fn accounts(&self, balances: &[i64]) -> Vec<AccountId> {
        let mut ids = Vec::new();
        for (owner, balance) in OWNERS.iter().zip(balances) {
            let scope = match owner {
                Some(i) => Scope::OwnedBy(self.customers[*i]),
                None => Scope::All,
            };
            let text = |s: &str| Text::parse(s).expect("valid text");
            let new = NewAccount {
                first_name: text("Ada"),
                last_name: text("Lovelace"),
                address: text("London"),
            };
            let opened = ledger::open_account(&self.db, scope, new)
                .await
                .expect("an account");
            account::ActiveModel {
                id: Set(opened.id),
                balance: Set(*balance),
                ..Default::default()
            }
            .update(&self.db)
            .await
            .expect("a starting balance");
            ids.push(AccountId(opened.id));
        }
        ids.push(AccountId(i64::MAX));
        ids
    }

    /// Sends an operation through the ledger, with its key (unique to this case) if it has one.
    async fn send(&self, ids: &[AccountId], case: &str, sent: &Sent) -> Outcome {
        let operation = &sent.operation;
        let movement = match *operation {
            Operation::Post {
                account,
                credit,
                debit,
                ..
            } => match Posting::new(ids[account], credit, debit) {
                Ok(posting) => Movement::Post(posting),
                Err(_) => return Outcome::Invalid,
            },
            Operation::Transfer {
                from, to, amount, ..
            } => match Transfer::new(ids[from], ids[to], amount) {
                Ok(transfer) => Movement::Transfer(transfer),
                Err(_) => return Outcome::Invalid,
            },
        };
        let by = operation.by();
        let claim = sent.key.map(|key| {
            let key = OwnedKey {
                owner: self.owner(by),
                key: IdempotencyKey::parse(&format!("{case}-{key}")).expect("a valid key"),
            };
            Claim::new(key, "operation", &operation.fingerprint())
        });
        let write = Write {
            movement,
            scope: self.scope(by),
            claim,
        };
        let balances = |rows: Vec<entity::transaction::Model>| {
            rows.iter().map(|row| row.balance_after).collect()
        };
        Outcome::Refused(match self.ledger.write(write).await {
            Ok(Written::Applied(rows)) => return Outcome::Applied(balances(rows)),
            Ok(Written::Replayed(Replay::Rows(rows))) => return Outcome::Replayed(balances(rows)),
            Ok(Written::Replayed(Replay::Stored(body))) => panic!("a stored answer: {body}"),
            Err(WriteError::KeyReused) => return Outcome::KeyReused,
            Err(WriteError::Ledger(LedgerError::AccountNotFound)) => "account not found",
            Err(WriteError::Ledger(LedgerError::InsufficientFunds)) => "insufficient funds",
            Err(WriteError::Ledger(LedgerError::BalanceLimitExceeded)) => "balance limit",
            Err(error) => panic!("{sent:?}: {error}"),
        })
    }

    fn owner(&self, who: Who) -> Option<UserId> {
        match who {
            Who::Operator => None,
            Who::Customer(i) => Some(self.customers[i]),
        }
    }
    /// Each account's balance now, and its starting balance plus what its ledger rows moved.
    async fn balances(&self, ids: &[AccountId], start: &[i64]) -> Vec<(i64, i64)> {
        let mut found = Vec::new();
        for (id, start) in ids.iter().zip(start) {
            let stored = account::Entity::find_by_id(id.0)
                .one(&self.db)
                .await
                .expect("a read")
                .expect("the account")
                .balance;
            let moved = self
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    self.db.get_database_backend(),
                    format!(
                        "SELECT CAST(COALESCE(SUM(credit - debit), 0) AS BIGINT) AS moved \
                         FROM transactions WHERE acc_id = {}",
                        id.0
                    ),
                ))
                .await
                .expect("a sum")
                .expect("a row")
                .try_get::<i64>("", "moved")
                .expect("an integer");
            found.push((stored, start + moved));
        }
        found
    }

    /// Runs generated cases against this backend and the model.
    fn keeps_the_model(self, runtime: &tokio::runtime::Runtime) {
        let case = (balances(), groups());
        let mut runner = TestRunner::new(ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        });
        let result = runner.run(&case, |(start, groups)| {
            runtime.block_on(async {
                let ids = self.accounts(&start).await;
                let case = uuid::Uuid::new_v4().simple().to_string();
                let mut model = Model {
                    balances: start.clone(),
                    keys: HashMap::new(),
                };
                for group in &groups {
                    let observed =
                        join_all(group.iter().map(|sent| self.send(&ids, &case, sent))).await;
                    let Some(next) = model.explain(group, &observed) else {
                        return Err(TestCaseError::fail(format!(
                            "no order of {group:?} gives {observed:?} from {model:?}"
                        )));
                    };
                    model = next;
                }
                for (account, (stored, from_ledger)) in self
                    .balances(&ids[..MISSING], &start)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    prop_assert_eq!(stored, model.balances[account], "account {}", account);
                    prop_assert_eq!(stored, from_ledger, "a balance is its ledger's sum");
                }
                Ok(())
            })
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
    }
}

#[test]
fn sqlite_keeps_the_reference_model() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let sqlite = runtime.block_on(Backend::open(common::sqlite_database()));
    sqlite.keeps_the_model(&runtime);
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[test]
fn postgres_keeps_the_reference_model() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
    let postgres =
        runtime.block_on(async { Backend::open(common::postgres_database(&server).await).await });
    postgres.keeps_the_model(&runtime);
}
