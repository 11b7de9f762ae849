//! The grouped statement: on Postgres, every write (a posting or a transfer, with or without an
//! idempotency key) reaches the database as an item of a group, and a group is one call of one
//! server-side function: one round trip, one statement, one commit. The function applies its
//! items in order, each under the same rules as the step-by-step path (their conditions are
//! rendered from [`rules`], with SQL variables for the terms), so each item keeps its own
//! outcome: applied, refused, replayed from its key, or refused for a key used differently.
//!
//! When a group makes at least [`TABLE_AT_A_TIME`] balance changes and every item fits (each
//! account is there and the caller's, each item meets the rules with what the items before it
//! left, each key is new), it is written a table at a time: one statement per table for all its
//! items. Otherwise the items are judged and applied one by one, and the rows they leave are
//! stored together. The group is judged by the same rules, rendered from the same list with a
//! running balance for each account, and the ledger's property test holds both paths to one
//! reference model.
//!
//! Before the first item it locks every account the group touches in id order. Every group
//! locks that way, so two groups (on two connections or two replicas) wait for each other but
//! cannot deadlock.
//!
//! The function's name carries a digest of its text, so a new build installs its own beside the
//! one an older replica still calls during a rolling upgrade.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use entity::transaction;
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value,
    sea_query::{Expr, PostgresQueryBuilder, Query},
};
use sha2::{Digest, Sha256};

use super::{
    LedgerError,
    rules::{Rule, Terms, rules},
    scope,
    writes::{Item, ItemOutcome, Movement, Replay},
};
use crate::{database, idempotency::Claim};

/// The refusals of the rules, as the function names them.
fn code(refusal: &LedgerError) -> &'static str {
    match refusal {
        LedgerError::AccountNotFound => "not_found",
        LedgerError::InsufficientFunds => "insufficient_funds",
        LedgerError::BalanceLimitExceeded => "balance_limit",
        LedgerError::Database(_) => "error",
    }
}

/// The function's name and its `CREATE` statement, the same in every process of this build.
pub(super) struct Function {
    pub name: String,
    definition: String,
}

pub(super) static FUNCTION: LazyLock<Function> = LazyLock::new(Function::new);

/// An expression as Postgres reads it.
fn sql(expr: Expr) -> String {
    let select = Query::select().expr(expr).to_string(PostgresQueryBuilder);
    select.trim_start_matches("SELECT ").to_owned()
}

impl Function {
    fn new() -> Self {
        let one = terms("v");
        // The same rules for every change of a group at once: columns of `CHANGES` for the terms,
        // and as `balance`, what the account holds when the change comes to it.
        let holds_each = all(&rules(&terms("c")));
        let rules = rules(&one);
        let body = BODY
            .replace("{changes}", CHANGES)
            .replace("{table_at_a_time}", &TABLE_AT_A_TIME.to_string())
            .replace("{new_balance}", &sql(one.new_balance()))
            .replace("{holds}", &all(&rules))
            .replace("{holds_each}", &holds_each)
            .replace("{judge}", &judge(&rules))
            .replace("{written_before_replay}", &WRITTEN.replace("{upto}", "i"))
            .replace(
                "{written_at_end}",
                &WRITTEN.replace("{upto}", "cardinality(transfers)"),
            );
        let digest = Sha256::digest(format!("{SIGNATURE}{body}").as_bytes());
        let name = format!(
            "bank_apply_{:x}",
            u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
        );
        let definition = format!("CREATE FUNCTION {name}{SIGNATURE} AS $body${body}$body$");
        Self { name, definition }
    }

    /// Creates the function unless this build's is there already. Run under the migration lock,
    /// so that replicas starting together do not create it twice.
    pub(super) async fn install(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let exists = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_proc WHERE proname = $1",
                [Value::from(self.name.clone())],
            ))
            .await?;
        if exists.is_none() {
            db.execute_unprepared(&self.definition).await?;
        }
        Ok(())
    }

    /// Applies `items` in one statement; what became of each, in the order given.
    pub(super) async fn apply(
        &self,
        db: &impl ConnectionTrait,
        items: &[&Item],
        pause: Option<Duration>,
    ) -> Result<Vec<ItemOutcome>, DbErr> {
        let rows = db.query_all_raw(self.call(items, pause)).await?;
        outcomes(items.len(), &rows)
    }

    /// The call of the function on `items`; with a `pause`, the statement also sleeps that long
    /// (before or after the function, as Postgres plans it), so it is slow as a whole.
    fn call(&self, items: &[&Item], pause: Option<Duration>) -> Statement {
        fn column<T>(items: &[&Item], value: impl Fn(&Item) -> T) -> Value
        where
            Vec<T>: Into<Value>,
        {
            items
                .iter()
                .map(|item| value(item))
                .collect::<Vec<T>>()
                .into()
        }
        let parts = |item: &Item| match item.write.movement {
            Movement::Post(posting) => (
                false,
                posting.account.0,
                0,
                posting.credit.minor_units(),
                posting.debit.minor_units(),
            ),
            Movement::Transfer(transfer) => (
                true,
                transfer.from.0,
                transfer.to.0,
                0,
                transfer.amount.minor_units(),
            ),
        };
        fn claim(item: &Item) -> Option<&Claim> {
            item.write.claim.as_ref()
        }
        let values = vec![
            column(items, |item| parts(item).0),
            column(items, |item| parts(item).1),
            column(items, |item| parts(item).2),
            column(items, |item| parts(item).3),
            column(items, |item| parts(item).4),
            column(items, |item| item.write.scope.owner().is_none()),
            column(items, |item| {
                item.write.scope.owner().map_or(0, |owner| owner.0)
            }),
            column(items, |item| item.write_id),
            column(items, |item| claim(item).map_or(0, Claim::owner_id)),
            column(items, |item| {
                claim(item).map_or(String::new(), |c| c.key().to_owned())
            }),
            column(items, |item| {
                claim(item).map_or(String::new(), |c| c.fingerprint.clone())
            }),
            column(items, |item| {
                claim(item).map_or(String::new(), |c| c.before_owners.clone())
            }),
            column(items, |item| item.write.trace.clone().unwrap_or_default()),
            Value::from(super::now()),
        ];
        let placeholders: Vec<String> = (1..=values.len()).map(|n| format!("${n}")).collect();
        let mut sql = format!(
            "SELECT r.* FROM {}({}) r",
            self.name,
            placeholders.join(", ")
        );
        let mut values = values;
        if let Some(pause) = pause {
            values.push(Value::from(pause.as_secs_f64()));
            sql.push_str(&format!(", pg_sleep(${})", values.len()));
        }
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }
}

/// The rules of a change of `{p}_delta` by a caller who may touch any owner's accounts
/// (`{p}_any`) or `{p}_owner`'s, where `p` names the function's variables or `CHANGES`' columns.
fn terms(p: &str) -> Terms {
    Terms {
        delta: Expr::cust(format!("{p}_delta")),
        held: Expr::val(0),
        lowers: None,
        owned: Some(scope::admits_each(
            Expr::cust(format!("{p}_any")),
            Expr::cust(format!("{p}_owner")),
        )),
    }
}

/// Every rule at once.
fn all(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|rule| format!("({})", sql(rule.holds.clone())))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `CASE` naming the first rule that does not hold for the row, NULL when all hold. NULL (an
/// account without an owner, asked for by a customer) does not hold.
fn judge(rules: &[Rule]) -> String {
    let cases: String = rules
        .iter()
        .map(|rule| {
            format!(
                " WHEN NOT COALESCE(({}), false) THEN '{}'",
                sql(rule.holds.clone()),
                code(&rule.otherwise)
            )
        })
        .collect();
    format!("CASE{cases} ELSE NULL END")
}

/// Each item's outcome from the rows the function returned: one per ledger row of an applied or
/// replayed item, one for any other.
fn outcomes(items: usize, rows: &[QueryResult]) -> Result<Vec<ItemOutcome>, DbErr> {
    let mut outcomes: Vec<Option<ItemOutcome>> = (0..items).map(|_| None).collect();
    for row in rows {
        let item = usize::try_from(row.try_get::<i32>("", "item")? - 1)
            .map_err(|_| DbErr::Custom("an item numbered below 1".into()))?;
        let slot = outcomes
            .get_mut(item)
            .ok_or_else(|| DbErr::Custom(format!("an outcome for item {item} of {items}")))?;
        let outcome: String = row.try_get("", "outcome")?;
        let ledger_row = || -> Result<transaction::Model, DbErr> {
            Ok(transaction::Model {
                id: row.try_get("", "tx_id")?,
                acc_id: row.try_get("", "tx_acc")?,
                credit: row.try_get("", "tx_credit")?,
                debit: row.try_get("", "tx_debit")?,
                balance_after: row.try_get("", "tx_balance")?,
                created_at: row.try_get::<DateTime<Utc>>("", "tx_at")?,
            })
        };
        match (outcome.as_str(), slot) {
            ("applied", Some(ItemOutcome::Applied(rows)))
            | ("replayed", Some(ItemOutcome::Replayed(Replay::Rows(rows)))) => {
                rows.push(ledger_row()?)
            }
            ("applied", slot @ None) => *slot = Some(ItemOutcome::Applied(vec![ledger_row()?])),
            ("replayed", slot @ None) => {
                *slot = Some(ItemOutcome::Replayed(
                    match row.try_get::<Option<String>>("", "body")? {
                        Some(body) => Replay::Stored(body),
                        None => Replay::Rows(vec![ledger_row()?]),
                    },
                ))
            }
            ("key_reused", slot @ None) => *slot = Some(ItemOutcome::KeyReused),
            (refused, slot @ None) => {
                *slot = Some(ItemOutcome::Refused(match refused {
                    "not_found" => LedgerError::AccountNotFound,
                    "insufficient_funds" => LedgerError::InsufficientFunds,
                    "balance_limit" => LedgerError::BalanceLimitExceeded,
                    other => return Err(DbErr::Custom(format!("an outcome named {other}"))),
                }))
            }
            (outcome, Some(_)) => {
                return Err(DbErr::Custom(format!(
                    "a second outcome, {outcome}, for item {item}"
                )));
            }
        }
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(item, outcome)| {
            outcome.ok_or_else(|| DbErr::Custom(format!("no outcome for item {item}")))
        })
        .collect()
}

/// Whether the items of a group of `items` that failed are each tried again alone: when the
/// failure may be one item's doing (an error the database answered, so the statement was rolled
/// back and nothing of it happened, that is not the database being away), or when the database
/// rolled the group back for a conflict with another transaction, which a second try seldom
/// meets, even for a write that was alone.
pub(super) fn retry_alone(error: &DbErr, items: usize) -> bool {
    database::is_conflict(error) || (items > 1 && !database::is_unavailable(error))
}

/// The function's parameters, its result and how it runs. Its statements take arrays whose
/// length Postgres cannot know, so it planned them anew on every call, a third of a single
/// write's time in the function; one plan for every length suits them all (by the primary key,
/// one row per item).
const SIGNATURE: &str = "(
    transfers bool[], froms int8[], tos int8[], credits int8[], debits int8[],
    anys bool[], owners int8[], write_ids uuid[],
    key_owners int8[], keys text[], fingerprints text[], before_owners text[], traceparents text[],
    at timestamptz)
RETURNS TABLE (item int4, outcome text, tx_id int8, tx_acc int8, tx_credit int8, tx_debit int8,
    tx_balance int8, tx_at timestamptz, body text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan";

/// The fewest balance changes (a posting's one, a transfer's two) a group must make to be judged
/// whole and written a table at a time: below it, the judgement costs about what it saves.
/// pgbench calling the function, one client, postings on random accounts of 1,000,
/// `synchronous_commit = off`, item by item against a table at a time: 16 items 0.90-0.98 ms
/// against 1.11-1.20 ms; 24 items 1.17-1.19 against 1.28-1.35 ms; 32 items 1.41-1.42 against
/// 1.46-1.47 ms; 100 items 3.22-3.44 against 2.72-2.77 ms. Through the API, 32 connections,
/// `bench/compare.py`'s method in both orders, 32 changes against 16 items: postings 111% and
/// 110% (Postgres CPU 56 against 64 µs and 55 against 62), transfers (16 of them make 32 changes)
/// 98% and 101%, batches 100% and 100%.
pub const TABLE_AT_A_TIME: usize = 32;

/// The balance changes of a group's items, in their order: a posting's one, and a transfer's two
/// (the sender's, held to the caller's scope, then the receiver's, open to anyone).
const CHANGES: &str = "
SELECT x.c_item, 1 AS c_side, x.c_from AS c_acc, x.c_credit, x.c_debit,
       x.c_credit - x.c_debit AS c_delta, x.c_any, x.c_owner
FROM unnest(froms, credits, debits, anys, owners) WITH ORDINALITY
     AS x(c_from, c_credit, c_debit, c_any, c_owner, c_item)
UNION ALL
SELECT x.c_item, 2, x.c_to, x.c_debit, 0, x.c_debit, true, x.c_owner
FROM unnest(transfers, tos, debits, owners) WITH ORDINALITY
     AS x(c_transfer, c_to, c_debit, c_owner, c_item)
WHERE x.c_transfer";

/// Stores the ledger rows and the `ledger_writes` rows of the items the loop applied, from the
/// item after the last one stored up to `{upto}`. The loop keeps them in arrays until a replay
/// needs them or the loop ends: a statement per table for the group instead of one per item, and
/// the outbox's statement trigger fires once. pgbench, one client, postings on random accounts of
/// 1,000, the function's own time: 8 items 622 against 490 µs, 12 items 782 against 603 µs.
const WRITTEN: &str = "
        IF v_pending THEN
            INSERT INTO transactions (id, acc_id, credit, debit, balance_after, created_at)
                SELECT r.id, r.acc, r.credit, r.debit, r.balance, at
                FROM generate_series(v_written + 1, {upto}) k,
                     LATERAL (VALUES (v_firsts[k], froms[k], credits[k], debits[k],
                                      v_first_balances[k]),
                                     (v_seconds[k], tos[k], debits[k], 0::int8,
                                      v_second_balances[k]))
                         AS r(id, acc, credit, debit, balance)
                WHERE r.id IS NOT NULL ORDER BY r.id;
            INSERT INTO ledger_writes (write_id, first_transaction_id, second_transaction_id,
                                       created_at, traceparent)
                SELECT write_ids[k], v_firsts[k], v_seconds[k], at, NULLIF(traceparents[k], '')
                FROM generate_series(v_written + 1, {upto}) k WHERE v_firsts[k] IS NOT NULL;
            v_written := {upto};
            v_pending := false;
        END IF;";

/// The function's body. `{holds}` is every rule at once, `{judge}` names the first that fails,
/// `{new_balance}` is the balance after `v_delta`; the variables are their terms.
const BODY: &str = r#"
#variable_conflict use_column
DECLARE
    i int4;
    v_delta int8;
    v_any bool;
    v_owner int8;
    v_balance int8;
    v_id int8;
    v_id2 int8;
    v_refused text;
    v_received text;
    v_fingerprint text;
    v_write uuid;
    v_body text;
    v_claimed bool;
    v_fits bool;
    v_ids int8[];
    -- A group written a table at a time: each change's balance after it, in the changes' order.
    v_afters int8[];
    -- What the loop applied and has not stored yet: each item's ledger row ids and balances after
    -- (a transfer's second row apart), stored from `v_written + 1` on (`WRITTEN`).
    v_firsts int8[];
    v_first_balances int8[];
    v_seconds int8[];
    v_second_balances int8[];
    v_written int4 := 0;
    v_pending bool := false;
    -- Looked up once: `pg_get_serial_sequence` in the query below ran for each ledger row, and
    -- cost nine times what `nextval` does (50,000 rows: 150 against 17 ms).
    v_sequence regclass := pg_get_serial_sequence('transactions', 'id');
    -- The group's balance changes: a posting's one and a transfer's two.
    v_changes int4 := cardinality(transfers) + cardinality(array_positions(transfers, true));
BEGIN
    -- The plan is the same for every length, so Postgres cannot tell a few accounts from many:
    -- it scans a small table whole and joins it by hash. A group the loop takes locks its few
    -- accounts by the index, one lookup each, in id order (pgbench, one item: 278 against 186 µs
    -- in the function; 12 items 782 against 712). For a long group, scanning the table is the
    -- planner's to choose.
    IF v_changes < {table_at_a_time} THEN
        PERFORM 1 FROM (SELECT DISTINCT u.id FROM unnest(froms || tos) u(id) ORDER BY u.id) u
            CROSS JOIN LATERAL (SELECT 1 FROM accounts a WHERE a.id = u.id FOR UPDATE) locked;
    ELSE
        PERFORM 1 FROM accounts WHERE id IN (SELECT unnest(froms || tos)) ORDER BY id FOR UPDATE;
    END IF;
    -- When every item will be applied as it comes (each account exists, is the caller's and
    -- meets the rules with what the items before it left, and each key is new), the group is
    -- written a table at a time: a few statements for all its items, instead of a few for each.
    -- Otherwise the loop below takes the items one by one and tells each its own outcome. A
    -- group too small to pay for the judgement goes straight to the loop. The judgement keeps
    -- the balance each change leaves, so the writing does not work it out again.
    v_fits := false;
    IF v_changes >= {table_at_a_time} THEN
        SELECT count(*) = v_changes
               AND bool_and(COALESCE({holds_each}, false)),
               array_agg(balance + c_delta ORDER BY c_item, c_side)
            INTO v_fits, v_afters
            FROM (SELECT a.owner_id, a.held, c.c_item, c.c_side, c.c_delta, c.c_any, c.c_owner,
                         a.balance + COALESCE(sum(c.c_delta) OVER earlier, 0) AS balance
                  FROM ({changes}) c JOIN accounts a ON a.id = c.c_acc
                  WINDOW earlier AS (PARTITION BY c.c_acc ORDER BY c.c_item, c.c_side
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) accounts;
    END IF;
    IF v_fits AND '' <> ANY(keys) THEN
        -- Keys are claimed all at once. A key already claimed (a replay, a reuse, a key used
        -- twice in the group) or one stored before keys were per user gives the group back to
        -- the loop, without the claims of this attempt.
        SELECT NOT EXISTS (SELECT 1 FROM unnest(keys, before_owners) u(u_key, u_before)
                           JOIN idempotency_keys k ON k.owner_id = -1 AND k.key = u.u_key
                                                  AND k.fingerprint = u.u_before)
            INTO v_fits;
        IF v_fits THEN
            WITH claimed AS (
                INSERT INTO idempotency_keys (owner_id, key, fingerprint, response_body, created_at,
                                              write_id)
                SELECT u.u_owner, u.u_key, u.u_fingerprint, '', at, u.u_write
                FROM unnest(key_owners, keys, fingerprints, write_ids)
                     AS u(u_owner, u_key, u_fingerprint, u_write)
                WHERE u.u_key <> ''
                ON CONFLICT DO NOTHING RETURNING 1)
            SELECT count(*) = cardinality(keys) - cardinality(array_positions(keys, ''))
                INTO v_fits FROM claimed;
            IF NOT v_fits THEN
                DELETE FROM idempotency_keys k
                    USING unnest(key_owners, keys, write_ids) AS u(u_owner, u_key, u_write)
                    WHERE k.owner_id = u.u_owner AND k.key = u.u_key AND k.write_id = u.u_write;
            END IF;
        END IF;
    END IF;
    IF v_fits THEN
        -- Ledger rows are numbered in the order of the items, as the loop would number them.
        v_ids := ARRAY(SELECT nextval(v_sequence) FROM generate_series(1, v_changes) ORDER BY 1);
        RETURN QUERY
        WITH c AS (
            SELECT c.*, row_number() OVER (ORDER BY c.c_item, c.c_side) AS c_k,
                   v_afters[row_number() OVER (ORDER BY c.c_item, c.c_side)] AS c_after
            FROM ({changes}) c),
        moved AS (
            UPDATE accounts a SET balance = a.balance + s.s_total
            FROM (SELECT c_acc, sum(c_delta)::int8 AS s_total FROM c GROUP BY c_acc) s
            WHERE a.id = s.c_acc),
        ledger_rows AS (
            INSERT INTO transactions (id, acc_id, credit, debit, balance_after, created_at)
            SELECT v_ids[c_k], c_acc, c_credit, c_debit, c_after, at FROM c),
        written AS (
            INSERT INTO ledger_writes (write_id, first_transaction_id, second_transaction_id,
                                       created_at, traceparent)
            SELECT write_ids[c_item], v_ids[min(c_k)],
                   CASE WHEN count(*) = 2 THEN v_ids[max(c_k)] END, at,
                   NULLIF(traceparents[c_item], '')
            FROM c GROUP BY c_item)
        SELECT c_item::int4, 'applied'::text, v_ids[c_k], c_acc, c_credit, c_debit, c_after, at,
               NULL::text
        FROM c ORDER BY c_k;
        RETURN;
    END IF;
    v_firsts := array_fill(NULL::int8, ARRAY[cardinality(transfers)]);
    v_first_balances := v_firsts;
    v_seconds := v_firsts;
    v_second_balances := v_firsts;
    FOR i IN 1 .. cardinality(transfers) LOOP
        v_claimed := false;
        IF keys[i] <> '' THEN
            INSERT INTO idempotency_keys (owner_id, key, fingerprint, response_body, created_at, write_id)
                VALUES (key_owners[i], keys[i], fingerprints[i], '', at, write_ids[i])
                ON CONFLICT DO NOTHING;
            IF FOUND THEN
                v_claimed := true;
                -- A key stored before keys were per user replays only this user's same request.
                SELECT response_body INTO v_body FROM idempotency_keys
                    WHERE owner_id = -1 AND key = keys[i] AND fingerprint = before_owners[i];
                IF FOUND THEN
                    DELETE FROM idempotency_keys WHERE owner_id = key_owners[i] AND key = keys[i];
                    RETURN QUERY SELECT i, 'replayed'::text, NULL::int8, NULL::int8, NULL::int8,
                        NULL::int8, NULL::int8, NULL::timestamptz, v_body;
                    CONTINUE;
                END IF;
            ELSE
                SELECT fingerprint, write_id, response_body INTO v_fingerprint, v_write, v_body
                    FROM idempotency_keys WHERE owner_id = key_owners[i] AND key = keys[i];
                IF v_fingerprint <> fingerprints[i] THEN
                    RETURN QUERY SELECT i, 'key_reused'::text, NULL::int8, NULL::int8, NULL::int8,
                        NULL::int8, NULL::int8, NULL::timestamptz, NULL::text;
                ELSIF v_write IS NULL THEN
                    RETURN QUERY SELECT i, 'replayed'::text, NULL::int8, NULL::int8, NULL::int8,
                        NULL::int8, NULL::int8, NULL::timestamptz, v_body;
                ELSE
                    -- The write may be one of this group's, not stored yet.{written_before_replay}
                    RETURN QUERY SELECT i, 'replayed'::text, t.id, t.acc_id, t.credit, t.debit,
                        t.balance_after, t.created_at, NULL::text
                        FROM ledger_writes w
                        JOIN transactions t ON t.id IN (w.first_transaction_id, w.second_transaction_id)
                        WHERE w.write_id = v_write ORDER BY t.id;
                END IF;
                CONTINUE;
            END IF;
        END IF;
        v_any := anys[i];
        v_owner := owners[i];
        IF NOT transfers[i] THEN
            v_delta := credits[i] - debits[i];
            UPDATE accounts SET balance = {new_balance} WHERE id = froms[i] AND {holds}
                RETURNING balance INTO v_balance;
            IF NOT FOUND THEN
                SELECT {judge} INTO v_refused FROM accounts WHERE id = froms[i];
                v_refused := COALESCE(v_refused, 'not_found');
            END IF;
        ELSE
            -- The sender is held to the caller's scope; anyone may receive. A missing account is
            -- told first, then the sender's refusal, then the receiver's.
            v_delta := -debits[i];
            SELECT {judge} INTO v_refused FROM accounts WHERE id = froms[i];
            IF NOT FOUND THEN v_refused := 'not_found'; END IF;
            v_delta := debits[i];
            v_any := true;
            SELECT {judge} INTO v_received FROM accounts WHERE id = tos[i];
            IF NOT FOUND THEN v_received := 'not_found'; END IF;
            IF v_received = 'not_found' OR v_refused IS NULL THEN
                v_refused := COALESCE(v_received, v_refused);
            END IF;
        END IF;
        IF v_refused IS NOT NULL THEN
            -- A refused write does not use up its key.
            IF v_claimed THEN
                DELETE FROM idempotency_keys WHERE owner_id = key_owners[i] AND key = keys[i];
            END IF;
            RETURN QUERY SELECT i, v_refused, NULL::int8, NULL::int8, NULL::int8, NULL::int8,
                NULL::int8, NULL::timestamptz, NULL::text;
            v_refused := NULL;
            CONTINUE;
        END IF;
        -- A transfer's credit is 0: its first row is the sender's debit.
        IF transfers[i] THEN
            UPDATE accounts SET balance = balance - debits[i] WHERE id = froms[i]
                RETURNING balance INTO v_balance;
        END IF;
        v_id := nextval(v_sequence);
        v_firsts[i] := v_id;
        v_first_balances[i] := v_balance;
        v_pending := true;
        RETURN QUERY SELECT i, 'applied'::text, v_id, froms[i], credits[i], debits[i], v_balance,
            at, NULL::text;
        IF transfers[i] THEN
            UPDATE accounts SET balance = balance + debits[i] WHERE id = tos[i]
                RETURNING balance INTO v_balance;
            v_id2 := nextval(v_sequence);
            v_seconds[i] := v_id2;
            v_second_balances[i] := v_balance;
            RETURN QUERY SELECT i, 'applied'::text, v_id2, tos[i], debits[i], 0::int8, v_balance,
                at, NULL::text;
        END IF;
    END LOOP;{written_at_end}
END
"#;
