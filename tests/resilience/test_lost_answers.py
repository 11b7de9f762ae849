"""A write whose answer is lost with its connection, made to happen on purpose every run, so the
mapping from what happened to what the client is told is always tested: applied and settled in
time is 201; certainly not applied is 503 (and a retry applies it once); unknowable in time is
500 "outcome unknown", and a resend with the same Idempotency-Key then applies it at most once.

Postgres is reached through `CuttingProxy`, which forwards a write's last message and cuts the
connection before the answer comes back (or cuts it before the message gets there), and can
refuse new connections for longer than the API may spend settling. A posting, keyed or not, is one
statement (the ledger's grouped call), so its last message is the `Sync` after it; an atomic
batch is a transaction, whose last message is its `COMMIT`. Access control is off here:
no user lookup shares the one connection; the proxy picks the write out of what the server's
background work sends on it."""

import time
import urllib.parse
import uuid

import pytest
from cutting_proxy import CuttingProxy

from bank_testkit.http import request
from bank_testkit.postgres import drop_postgres_database, new_postgres_database
from bank_testkit.processes import Api

SETTLE_SECONDS = 2
OUTCOME_UNKNOWN = ("The outcome of this write is unknown: the database connection failed after it was sent. "
                   "Check the account's ledger (GET /accounts/{account_id}/transactions) before sending it "
                   "again, or resend it with the same Idempotency-Key, which applies it at most once.")
UNAVAILABLE = {"detail": "Service temporarily unavailable"}


@pytest.fixture()
def api(tmp_path):
    database = new_postgres_database("bank_test_lost")
    address = urllib.parse.urlsplit(database)
    proxy = CuttingProxy(address.port or 5432)
    through_proxy = address._replace(netloc=f"{address.username}@127.0.0.1:{proxy.port}", query="sslmode=disable")
    server = Api.for_tests(urllib.parse.urlunsplit(through_proxy), tmp_path / "api.log", AUTH_REQUIRED="false",
                 DB_MAX_CONNECTIONS=1, DB_ACQUIRE_TIMEOUT_SECS=SETTLE_SECONDS)
    server.proxy = proxy
    try:
        yield server
    finally:
        server.stop()
        drop_postgres_database(database)


def credits(api, account):
    status, rows = request("GET", f"{api.url}/accounts/{account}/transactions?limit=1000")
    assert status == 200, rows
    return [row["credit"] for row in rows]


def post(api, account, credit, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return request("POST", f"{api.url}/transactions", {"acc_id": account, "credit": credit}, headers=headers,
                   timeout=30)


def ready_again(api):
    deadline = time.monotonic() + 30
    while request("GET", f"{api.url}/ready")[0] != 200:
        assert time.monotonic() < deadline, "the API never reached the database again"
        time.sleep(0.2)


def post_batch(api, account, credit):
    """An atomic batch of one posting: (status, the posting's row or the answer)."""
    status, body = request("POST", f"{api.url}/batches",
                           {"atomic": True, "items": [{"kind": "posting", "acc_id": account, "credit": credit}]},
                           timeout=30)
    if status == 201:
        return status, body["results"][0]["transaction"]
    return status, body


def lose(api, account, credit, key, on, forward, refuse_for):
    """One write whose connection is cut as armed; its answer, once the database is back. On a
    `commit`, the write is an atomic batch of one posting."""
    api.proxy.arm(on, forward, refuse_for)
    answer = post_batch(api, account, credit) if on == "commit" else post(api, account, credit, key)
    assert api.proxy.cut.is_set(), f"the proxy never saw the {on}"
    ready_again(api)
    return answer


def test_a_lost_answer_is_settled_before_the_client_is_told(api):
    status, account = request("POST", f"{api.url}/accounts", {"first_name": "L", "last_name": "A", "address": "x"})
    assert status == 201
    account = account["id"]

    # Applied, and the database could be asked in time: the write's own 201.
    status, body = lose(api, account, 10, f"k-{uuid.uuid4()}", "sync", forward=True, refuse_for=0)
    assert status == 201 and body["credit"] == 10, body
    status, body = lose(api, account, 20, None, "sync", forward=True, refuse_for=0)
    assert status == 201 and body["credit"] == 20, body
    status, body = lose(api, account, 25, None, "commit", forward=True, refuse_for=0)
    assert status == 201 and body["credit"] == 25, body

    # Never reached the database: 503, and it is not applied.
    key = f"k-{uuid.uuid4()}"
    assert lose(api, account, 30, key, "sync", forward=False, refuse_for=0) == (503, UNAVAILABLE)
    assert lose(api, account, 40, None, "sync", forward=False, refuse_for=0) == (503, UNAVAILABLE)
    assert lose(api, account, 45, None, "commit", forward=False, refuse_for=0) == (503, UNAVAILABLE)
    stored = credits(api, account)
    assert 30 not in stored and 40 not in stored and 45 not in stored, stored
    status, body = post(api, account, 30, key)
    assert status == 201 and body["credit"] == 30, "a 503 did not use up its key"

    # Applied, but the database cannot be asked within the settling time: 500 outcome unknown.
    key = f"k-{uuid.uuid4()}"
    for credit, key_or_none, on in [(50, key, "sync"), (60, None, "sync"), (65, None, "commit")]:
        assert lose(api, account, credit, key_or_none, on, forward=True, refuse_for=3 * SETTLE_SECONDS) == (
            500, {"detail": OUTCOME_UNKNOWN}), credit
    stored = credits(api, account)
    assert [stored.count(credit) for credit in (50, 60, 65)] == [1, 1, 1], "all were in fact applied, once"
    # The resend the 500 asks for, with the same key, applies it at most once: here, not again.
    status, replayed = post(api, account, 50, key)
    assert status == 201 and replayed["credit"] == 50
    stored = credits(api, account)
    assert sorted(stored) == [10, 20, 25, 30, 50, 60, 65], stored
    status, balance = request("GET", f"{api.url}/accounts/{account}/balance")
    assert balance["balance"] == sum(stored)
