//! Primary-key reads of accounts that are waiting at the same moment are asked in one statement,
//! as a DataLoader does: `unnest` of their ids joined to `accounts`, each id with the owner its
//! request is scoped to, so every request still gets only what its caller may see.
//!
//! On these machines a round trip to Postgres costs more in wakeups and context switches than
//! the query itself, and sqlx adds one more per query (it pings a connection as it goes back to
//! its pool). A few reads run at once as usual; the ones that arrive while those are running
//! wait and go together in the next statement. When nothing else is running a read goes alone,
//! at once, so a quiet server answers as fast as before. Postgres only: SQLite reads in process.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use entity::account;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Iterable, Statement,
    Value,
    sea_query::{Condition, Expr, ExprTrait, Func, FunctionCall, PgFunc, Query, SelectStatement},
};
use tokio::sync::oneshot;

use super::scope;
use crate::domain::{AccountId, Scope, UserId};

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
}

pub struct Coalescer {
    db: DatabaseConnection,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Wanted>,
    running: usize,
}

impl Coalescer {
    pub fn new(db: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            db,
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
            });
            let leads = state.running < IN_FLIGHT;
            state.running += usize::from(leads);
            leads
        };
        if leads {
            // This request reads what is waiting, itself included; whatever comes meanwhile is
            // read by a task of its own, so this request is not held up answering others.
            if let Some(batch) = self.take() {
                answer(&self.db, batch).await;
                tokio::spawn(self.clone().drain());
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

    async fn drain(self: Arc<Self>) {
        while let Some(batch) = self.take() {
            answer(&self.db, batch).await;
        }
    }
}

/// The batch as the statement's parameters, one array per column: each wanted id, its caller's
/// scope (any owner, or which) and its place in the batch; then the ids again, for the index.
fn columns(batch: &[Wanted]) -> [Value; 5] {
    let ids: Vec<i64> = batch.iter().map(|wanted| wanted.id.0).collect();
    let owners: Vec<Option<UserId>> = batch.iter().map(|wanted| wanted.scope.owner()).collect();
    let any: Vec<bool> = owners.iter().map(Option::is_none).collect();
    let owners: Vec<i64> = owners
        .iter()
        .map(|owner| owner.map_or(0, |owner| owner.0))
        .collect();
    let places: Vec<i64> = (1..=batch.len() as i64).collect();
    let ids = Value::from(ids);
    [ids.clone(), any.into(), owners.into(), places.into(), ids]
}

/// One statement for the whole batch: the wanted ids joined to the accounts each may see. The
/// join alone let Postgres hash it against a scan of every account (0.1 ms for 8 ids among a
/// thousand, and more as accounts grow); `id = ANY(ids)` finds them by the primary key.
fn read([ids, any, owners, places, found_by]: [Value; 5]) -> SelectStatement {
    fn unnest(values: Value) -> FunctionCall {
        Func::cust("unnest").arg(Expr::val(values))
    }
    let wanted = Query::select()
        .expr_as(unnest(ids), "id")
        .expr_as(unnest(any), "any")
        .expr_as(unnest(owners), "owner")
        .expr_as(unnest(places), PLACE)
        .to_owned();
    let joined = Condition::all()
        .add(Expr::col((account::Entity, account::Column::Id)).equals(("w", "id")))
        .add(scope::admits_each(
            Expr::col(("w", "any")),
            Expr::col(("w", "owner")),
        ));
    Query::select()
        .column(("w", PLACE))
        .columns(account::Column::iter().map(|column| (account::Entity, column)))
        .from_subquery(wanted, "w")
        .inner_join(account::Entity, joined)
        .and_where(
            Expr::col((account::Entity, account::Column::Id)).eq(PgFunc::any(Expr::val(found_by))),
        )
        .to_owned()
}

/// The column that tells which wanted account a row answers.
const PLACE: &str = "place";

/// Every batch, whatever its size, is the same text with other arrays as its parameters: built
/// once, where building it for each batch took a tenth of a read's CPU.
static READ: LazyLock<String> =
    LazyLock::new(|| DbBackend::Postgres.build(&read(columns(&[]))).sql);

async fn answer(db: &DatabaseConnection, batch: Vec<Wanted>) {
    let statement =
        Statement::from_sql_and_values(DbBackend::Postgres, READ.as_str(), columns(&batch));
    let found = db.query_all_raw(statement).await.and_then(|rows| {
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
        };
        let batch = [
            wanted(1, Scope::All),
            wanted(2, Scope::OwnedBy(UserId(7))),
            wanted(3, Scope::All),
        ];
        let built = DbBackend::Postgres.build(&read(columns(&batch)));
        assert_eq!(built.sql, *READ);
        let values = built.values.expect("parameters").0;
        assert_eq!(
            values.len(),
            5,
            "one array per column, and the ids: {values:?}"
        );
        assert_eq!(values, columns(&batch).to_vec());
    }
}
