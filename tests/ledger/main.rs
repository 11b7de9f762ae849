//! The money rules are written once and executed two ways: on Postgres a posting is one statement
//! (and step by step when that statement changes nothing, to find out why), on SQLite always step
//! by step. The same generated operations, run through the ledger on both backends, must have the
//! same outcomes, and every balance must end as its start plus what its ledger rows moved.

use bank_api::config::Settings;
use bank_core::{
    database,
    domain::{AccountId, MAX_AMOUNT, MAX_BALANCE, Scope, Text, UserId},
    ledger::{self, LedgerError, NewAccount, Posting, Transfer},
};
use entity::{account, user};
use proptest::{prelude::*, test_runner::TestRunner};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

#[path = "../common/mod.rs"]
mod common;

/// Each case's accounts: two of customer 0, one of customer 1, one of the operators; index 4
/// names an account that does not exist.
const OWNERS: [Option<usize>; 4] = [Some(0), Some(0), Some(1), None];
const MISSING: usize = OWNERS.len();

#[derive(Clone, Copy, Debug)]
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

/// What an operation came to, in terms both backends share (not their row ids).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The balances left, in the order the rows were written.
    Applied(Vec<i64>),
    Invalid,
    Refused(&'static str),
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 0..200_i64,
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

/// Starting balances: empty, some, and close enough to the limit for credits to break it.
fn balances() -> impl Strategy<Value = Vec<i64>> {
    let balance = prop_oneof![
        Just(0),
        1..300_i64,
        Just(MAX_BALANCE - 100),
        Just(MAX_BALANCE)
    ];
    proptest::collection::vec(balance, OWNERS.len())
}

struct Backend {
    db: DatabaseConnection,
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
        Self { db, customers }
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

    async fn run(&self, ids: &[AccountId], operation: &Operation) -> Outcome {
        let write_id = uuid::Uuid::new_v4();
        let executor = (&self.db).into();
        let result = match *operation {
            Operation::Post {
                by,
                account,
                credit,
                debit,
            } => {
                let Ok(posting) = Posting::new(ids[account], credit, debit) else {
                    return Outcome::Invalid;
                };
                ledger::post(&executor, self.scope(by), &posting, write_id)
                    .await
                    .map(|row| vec![row.balance_after])
            }
            Operation::Transfer {
                by,
                from,
                to,
                amount,
            } => {
                let Ok(transfer) = Transfer::new(ids[from], ids[to], amount) else {
                    return Outcome::Invalid;
                };
                ledger::transfer(&executor, self.scope(by), &transfer, write_id)
                    .await
                    .map(|(debit, credit)| vec![debit.balance_after, credit.balance_after])
            }
        };
        Outcome::Refused(match result {
            Ok(balances) => return Outcome::Applied(balances),
            Err(LedgerError::AccountNotFound) => "account not found",
            Err(LedgerError::InsufficientFunds) => "insufficient funds",
            Err(LedgerError::BalanceLimitExceeded) => "balance limit",
            Err(LedgerError::Database(error)) => panic!("{operation:?}: {error}"),
        })
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
}

#[cfg_attr(not(postgres_tests), ignore = "needs Postgres: set TEST_DATABASE_URL")]
#[test]
fn postgres_and_sqlite_give_every_operation_the_same_outcome() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
    let (sqlite, postgres) = runtime.block_on(async {
        let postgres = common::postgres_database(&server).await;
        (
            Backend::open(common::sqlite_database()).await,
            Backend::open(postgres).await,
        )
    });
    let case = (balances(), proptest::collection::vec(operation(), 1..12));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let result = runner.run(&case, |(start, operations)| {
        runtime.block_on(async {
            let on_sqlite = sqlite.accounts(&start).await;
            let on_postgres = postgres.accounts(&start).await;
            for operation in &operations {
                let expected = sqlite.run(&on_sqlite, operation).await;
                let got = postgres.run(&on_postgres, operation).await;
                prop_assert_eq!(&got, &expected, "{:?}", operation);
            }
            let ids = &on_sqlite[..MISSING];
            let sqlite_balances = sqlite.balances(ids, &start).await;
            let postgres_balances = postgres.balances(&on_postgres[..MISSING], &start).await;
            prop_assert_eq!(&postgres_balances, &sqlite_balances);
            for (stored, from_ledger) in sqlite_balances {
                prop_assert_eq!(stored, from_ledger, "a balance is its ledger's sum");
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
