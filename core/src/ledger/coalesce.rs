//! Primary-key reads of accounts that are waiting at the same moment are asked in one statement,
//! as a DataLoader does: `unnest` of their ids joined to `accounts`, each id with the owner its
//! request is scoped to, so every request still gets only what its caller may see.
//!
//! On these machines a round trip to Postgres costs more in wakeups and context switches than
//! the query itself, and sqlx adds one more per query (it pings a connection as it goes back to
//! its pool). A few reads run at once as usual; the ones that arrive while those are running
//! wait and go together in the next statement. When nothing else is running a read goes alone,
//! at once, so a quiet server answers as fast as before. The statements that follow one another
//! run on one connection kept from the pool (`kept`), which saves that ping. Postgres only:
//! SQLite reads in process.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use entity::account;
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, FromQueryResult, Iterable, Statement, Value,
    sea_query::{Condition, Expr, ExprTrait, Func, FunctionCall, JoinType, Query, SelectStatement},
};
use tokio::sync::oneshot;
use tracing::{Instrument, Span};

use super::{kept::KeptConnection, linked, scope};
use crate::{
    database::StatementObserver,
    domain::{AccountId, Scope, UserId},
};

/// Statements of coalesced reads running at once; a read that finds this many waits for the
/// next one.
const IN_FLIGHT: usize = 2;
/// The most ids one statement asks for.
const MOST: usize = 128;

type Answer = Result<Option<account::Model>, DbErr>;

struct Wanted {
    id: AccountId,
    scope: Scope,
    answer: oneshot::Sender<Answer>,
    /// The span of the request that wants it.
    span: Span,
}

pub struct Coalescer {
    db: DatabaseConnection,
    observe: StatementObserver,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Wanted>,
    running: usize,
}

impl Coalescer {
    pub fn new(db: DatabaseConnection, observe: StatementObserver) -> Arc<Self> {
        Arc::new(Self {
            db,
            observe,
            state: Mutex::default(),
        })
    }

    /// The account `id` if it is in `scope`.
    pub async fn account(
        self: &Arc<Self>,
        scope: Scope,
        id: AccountId,
    ) -> Result<Option<account::Model>, DbErr> {
        let (reply, answered) = oneshot::channel();
        let leads = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push(Wanted {
                id,
                scope,
                answer: reply,
                span: Span::current(),
            });
            let leads = state.running < IN_FLIGHT;
            state.running += usize::from(leads);
            leads
        };
        if leads {
            // This request reads what is waiting, itself included; whatever comes meanwhile is
            // read by a task of its own, on the same connection, so this request is not held up
            // answering others.
            if let Some(batch) = self.take() {
                let mut connection = KeptConnection::new(&self.db, self.observe.clone());
                answer(&mut connection, batch).await;
                tokio::spawn(self.clone().drain(connection));
            }
        }
        answered
            .await
            .map_err(|_| DbErr::Custom("a coalesced read was dropped unanswered".into()))?
    }

    /// Up to `MOST` of the waiting reads, oldest first; `None`, and one statement fewer
    /// running, when none waits.
    fn take(&self) -> Option<Vec<Wanted>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.waiting.is_empty() {
            state.running -= 1;
            return None;
        }
        let rest = state.waiting.len().min(MOST);
        let newer = state.waiting.split_off(rest);
        Some(std::mem::replace(&mut state.waiting, newer))
    }

    /// Reads what waits until nothing does, on `connection`, which goes back to the pool then.
    async fn drain(self: Arc<Self>, mut connection: KeptConnection) {
        while let Some(batch) = self.take() {
            answer(&mut connection, batch).await;
        }
    }
}

/// The batch as the statement's parameters, one array per column: each wanted id, its caller's
/// scope (any owner, or which) and its place in the batch.
fn columns(batch: &[Wanted]) -> [Value; 4] {
    let ids: Vec<i64> = batch.iter().map(|wanted| wanted.id.0).collect();
    let owners: Vec<Option<UserId>> = batch.iter().map(|wanted| wanted.scope.owner()).collect();
    let any: Vec<bool> = owners.iter().map(Option::is_none).collect();
    let owners: Vec<i64> = owners
        .iter()
        .map(|owner| owner.map_or(0, |owner| owner.0))
        .collect();
    let places: Vec<i64> = (1..=batch.len() as i64).collect();
    [ids.into(), any.into(), owners.into(), places.into()]
}

/// One statement for the whole batch: for each wanted id, the account of that id if its caller
/// may see it. The lookup is a lateral subquery with `LIMIT 1` (an id names one account at
/// most) so that Postgres cannot fold it into a join: joined, it hashed the wanted ids against
/// a scan of every account, by its costs, which on a small bank named that cheaper than a few
/// index lookups (pgbench, 1,000 accounts: 148 µs for 8 ids against 112, 486 µs for 100
/// against 231). Each id is one lookup by the primary key, whatever the bank's size.
///
/// Each array is read through a scalar subquery, `unnest((SELECT $1))`, where Postgres cannot see
/// it while planning. Seen, a batch's own array made a plan for its length look cheaper than one
/// for any batch, so Postgres planned every batch anew, and planning took longer than reading
/// (Postgres log under `wrk`: bind 69 µs, execute 38 µs per batch). Unseen, every batch costs the
/// same to Postgres, and after five it keeps one plan for all (pgbench, 8 ids among 1,000
/// accounts: 63-72 µs per statement against 116-153).
fn read([ids, any, owners, places]: [Value; 4]) -> SelectStatement {
    fn unnest(values: Value) -> FunctionCall {
        let array = Query::select().expr(Expr::val(values)).to_owned();
        Func::cust("unnest").arg(Expr::SubQuery(None, Box::new(array.into())))
    }
    let wanted = Query::select()
        .expr_as(unnest(ids), "id")
        .expr_as(unnest(any), "any")
        .expr_as(unnest(owners), "owner")
        .expr_as(unnest(places), PLACE)
        .to_owned();
    let found = Query::select()
        .columns(account::Column::iter().map(|column| (account::Entity, column)))
        .from(account::Entity)
        .and_where(Expr::col((account::Entity, account::Column::Id)).equals(("w", "id")))
        .and_where(scope::admits_each(
            Expr::col(("w", "any")),
            Expr::col(("w", "owner")),
        ))
        .limit(1)
        .to_owned();
    Query::select()
        .column(("w", PLACE))
        .columns(account::Column::iter().map(|column| ("a", column)))
        .from_subquery(wanted, "w")
        .join_lateral(JoinType::InnerJoin, found, "a", Condition::all())
        .to_owned()
}

/// The column that tells which wanted account a row answers.
const PLACE: &str = "place";

/// Every batch, whatever its size, is the same text with other arrays as its parameters: built
/// once, where building it for each batch took a tenth of a read's CPU. Kept with it, the
/// parameters after the batch's arrays: the statement's own (the lookup's limit).
static READ: LazyLock<(String, Vec<Value>)> = LazyLock::new(|| {
    let built = DbBackend::Postgres.build(&read(columns(&[])));
    let own = built.values.map(|mut values| values.0.split_off(4));
    (built.sql, own.unwrap_or_default())
});

/// The parameters of the batch's statement: its arrays, then the statement's own.
fn parameters(batch: &[Wanted]) -> Vec<Value> {
    columns(batch)
        .into_iter()
        .chain(READ.1.iter().cloned())
        .collect()
}

/// Reads `batch` in one statement, which runs in a `ledger.read` span in every traced request's
/// trace (`linked`): the reads that wait are answered by a task of no request's.
async fn answer(connection: &mut KeptConnection, batch: Vec<Wanted>) {
    let statement =
        Statement::from_sql_and_values(DbBackend::Postgres, READ.0.as_str(), parameters(&batch));
    let reads = batch.len();
    let (span, _linked) = linked::spans(batch.iter().map(|wanted| &wanted.span), || {
        tracing::info_span!("ledger.read", reads)
    });
    let found = connection.select(&statement).instrument(span).await;
    let found = found.and_then(|rows| {
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64>("", PLACE)?,
                    account::Model::from_query_result(row, "")?,
                ))
            })
            .collect::<Result<HashMap<i64, account::Model>, DbErr>>()
    });
    for (position, wanted) in (1..).zip(batch) {
        let answer = match &found {
            Ok(found) => Ok(found.get(&position).cloned()),
            Err(error) => Err(error.clone()),
        };
        let _ = wanted.answer.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text built once serves every batch: each column is one array parameter, whatever the
    /// batch's size, so only the parameters differ.
    #[test]
    fn every_batch_is_the_same_statement() {
        let wanted = |id, scope| Wanted {
            id: AccountId(id),
            scope,
            answer: oneshot::channel().0,
            span: Span::none(),
        };
        let batch = [
            wanted(1, Scope::All),
            wanted(2, Scope::OwnedBy(UserId(7))),
            wanted(3, Scope::All),
        ];
        let built = DbBackend::Postgres.build(&read(columns(&batch)));
        assert_eq!(built.sql, READ.0);
        let values = built.values.expect("parameters").0;
        assert_eq!(values, parameters(&batch));
    }
}
