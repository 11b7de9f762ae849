"""The "bank" test of distributed-database testing: several customers, each with their own
accounts and token, move money concurrently among themselves (from their own accounts to anyone's)
through two server processes on one Postgres (one process on SQLite), retrying some writes with the
same Idempotency-Key. Afterwards no money may have appeared or vanished, no balance may ever have
been negative, and every acknowledged write must be stored exactly once."""

import collections
import http.client
import json
import os
import random
import threading
import time
import uuid

import pytest

from bank_testkit.http import bearer, request
from bank_testkit.postgres import drop_postgres_database, new_postgres_database
from bank_testkit.processes import Api

CUSTOMERS = 4
ACCOUNTS = 8  # two per customer
INITIAL_CREDIT = 10_000
CLIENTS = int(os.environ.get("BANK_TEST_CLIENTS", "16"))
SECONDS = float(os.environ.get("BANK_TEST_SECONDS", "15"))


class Client:
    """One keep-alive connection per server, like a real client with a connection pool."""

    def __init__(self, servers, token):
        self.connections = [http.client.HTTPConnection("127.0.0.1", api.port, timeout=30) for api in servers]
        self.token = token

    def call(self, method, path, body=None, key=None):
        connection = random.choice(self.connections)
        headers = {"Content-Type": "application/json", **bearer(self.token)}
        if key:
            headers["Idempotency-Key"] = key
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())


class Outcome:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.credits = 0
        self.debits = 0
        self.acked_rows = collections.Counter()  # ledger id -> times acknowledged as a new write
        self.negative_reads = []
        self.unexpected = []

    def acknowledge(self, rows, credit=0, debit=0):
        with self.lock:
            self.credits += credit
            self.debits += debit
            for row in rows:
                self.acked_rows[row["id"]] += 1


def run_client(servers, customer, accounts, outcome, deadline, seed):
    """A client that fails (a reset, a timeout, a body that is not JSON) is a finding, not a warning:
    its unanswered request could have been the one that lost money."""
    try:
        move_money(servers, customer, accounts, outcome, deadline, seed)
    except Exception as error:  # noqa: BLE001 - recorded and judged by check_the_bank
        with outcome.lock:
            outcome.unexpected.append(("client failed", seed, repr(error)))


def move_money(servers, customer, accounts, outcome, deadline, seed):
    """`customer` is (token, own account ids): money moves from their own accounts to any."""
    rng = random.Random(seed)
    token, own = customer
    client = Client(servers, token)
    while time.monotonic() < deadline:
        a = rng.choice(own)
        b = rng.choice([account for account in accounts if account != a])
        roll = rng.random()
        key = f"bank-{uuid.uuid4().hex}" if rng.random() < 0.2 else None
        if roll < 0.4:
            kind, path, body = "transfer", "/transfers", {"from_acc_id": a, "to_acc_id": b, "amount": rng.randint(1, 3000)}
        elif roll < 0.65:
            kind, path, body = "debit", "/transactions", {"acc_id": a, "debit": rng.randint(1, 2500)}
        elif roll < 0.9:
            kind, path, body = "credit", "/transactions", {"acc_id": a, "credit": rng.randint(1, 2000)}
        else:
            status, balance = client.call("GET", f"/accounts/{a}/balance")
            with outcome.lock:
                outcome.counts["balance reads"] += 1
                if status != 200:
                    outcome.unexpected.append(("read", status, balance))
                elif balance["balance"] < 0:
                    outcome.negative_reads.append(balance)
            continue
        status, answer = client.call("POST", path, body, key)
        if key:
            # A retry replays a 201 exactly; after a 409 nothing was stored, so the retry is a new
            # attempt and its answer is the one that counts. Any other first answer is a finding
            # of its own, which the retry's answer must not hide: nothing here fails on purpose.
            retry_status, retry_answer = client.call("POST", path, body, key)
            with outcome.lock:
                outcome.counts["idempotent retries"] += 1
                if status not in (201, 409):
                    outcome.unexpected.append((f"{kind} before its retry", status, answer))
                if status == 201 and (retry_status, retry_answer) != (status, answer):
                    outcome.unexpected.append(("replay differs", answer, retry_answer))
            status, answer = retry_status, retry_answer
        with outcome.lock:
            outcome.counts[f"{kind} {status}"] += 1
        if status == 201:
            if kind == "transfer":
                outcome.acknowledge([answer["from_transaction"], answer["to_transaction"]])
            else:
                outcome.acknowledge([answer], body.get("credit", 0), body.get("debit", 0))
        elif status != 409:
            with outcome.lock:
                outcome.unexpected.append((kind, status, answer))


def all_pages(base, path, token):
    rows, skip = [], 0
    while True:
        status, page = request("GET", f"{base}{path}?skip={skip}&limit=1000", headers=bearer(token))
        assert status == 200, page
        rows += page
        if len(page) < 1000:
            return rows
        skip += 1000


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_money_is_neither_created_nor_lost(backend, tmp_path):
    if backend == "postgres":
        database_url = new_postgres_database("bank_test_invariant")
        servers = [Api.for_tests(database_url, tmp_path / f"api{i}.log") for i in range(2)]
    else:
        database_url = f"sqlite://{tmp_path / 'bank.db'}?mode=rwc"
        servers = [Api.for_tests(database_url, tmp_path / "api.log")]
    try:
        check_the_bank(servers)
    finally:
        for api in servers:
            api.stop()
        if backend == "postgres":
            drop_postgres_database(database_url)


def check_the_bank(servers):
    base = servers[0].url
    outcome = Outcome()
    customers, accounts = [], []
    for c in range(CUSTOMERS):
        token = servers[0].customer_token(f"customer{c}")
        own = []
        for n in range(ACCOUNTS // CUSTOMERS):
            body = {"first_name": f"Bank{c}", "last_name": f"Test{n}", "address": "1 Ledger Lane"}
            status, account = request("POST", f"{base}/accounts", body, headers=bearer(token))
            assert status == 201, account
            own.append(account["id"])
            status, row = request("POST", f"{base}/transactions", {"acc_id": account["id"], "credit": INITIAL_CREDIT},
                                  headers=bearer(token))
            assert status == 201, row
            outcome.acknowledge([row], credit=INITIAL_CREDIT)
        customers.append((token, own))
        accounts += own
    operator = servers[0].operator_token()

    deadline = time.monotonic() + SECONDS
    clients = [threading.Thread(target=run_client, args=(servers, customers[seed % CUSTOMERS], accounts, outcome, deadline, seed))
               for seed in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=SECONDS + 60)
    assert not [client for client in clients if client.is_alive()], "a client never finished"

    balances = {a: request("GET", f"{base}/accounts/{a}/balance", headers=bearer(operator))[1]["balance"] for a in accounts}
    ledger = all_pages(base, "/transactions", operator)
    stored = collections.Counter(row["id"] for row in ledger)
    per_account = collections.defaultdict(list)
    for row in ledger:
        per_account[row["acc_id"]].append(row)

    writes = sum(count for name, count in outcome.counts.items() if name.split()[0] in {"transfer", "debit", "credit"})
    print(f"\nbank invariant on {len(servers)} process(es): {CUSTOMERS} customers, {CLIENTS} clients, {SECONDS:.0f} s, "
          f"{writes} writes, {sum(outcome.counts.values())} operations")
    for name, count in sorted(outcome.counts.items()):
        print(f"  {name}: {count}")
    print(f"  ledger rows: {len(ledger)}; acknowledged credits {outcome.credits}, debits {outcome.debits}")

    assert not outcome.unexpected, outcome.unexpected[:5]
    assert not outcome.negative_reads, outcome.negative_reads[:5]
    assert all(balance >= 0 for balance in balances.values()), balances
    assert sum(balances.values()) == outcome.credits - outcome.debits, "money appeared or vanished"
    assert all(times == 1 for times in outcome.acked_rows.values()), "a write was acknowledged twice"
    assert set(stored) == set(outcome.acked_rows), "stored rows differ from acknowledged writes"
    assert all(times == 1 for times in stored.values())
    for account, rows in per_account.items():
        running = 0
        for row in sorted(rows, key=lambda row: row["id"]):
            running += row["credit"] - row["debit"]
            assert row["balance_after"] == running >= 0, f"account {account}: ledger chain broken at {row}"
        assert balances[account] == running, f"account {account}: balance differs from its ledger"
    assert outcome.counts["transfer 201"] and outcome.counts["debit 409"] + outcome.counts["transfer 409"], "contention happened"
