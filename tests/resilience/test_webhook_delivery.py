"""Webhooks lose nothing: 8 clients move money while the API's process (and with it its
dispatcher) is killed with SIGKILL mid-flight and started again, the receiving endpoint answers
500 for a stretch, and Postgres is restarted meanwhile. Afterwards every ledger row has arrived in a message,
at least once; repeats are counted and printed; and every request's signature verifies with the
`standardwebhooks` package from PyPI."""

import collections
import itertools
import threading
import time

from standardwebhooks.webhooks import Webhook

from bank_testkit.http import bearer, request
from bank_testkit.postgres import drop_postgres_database, new_postgres_database, psql
from bank_testkit.processes import Api
from bank_testkit.webhooks import Receiver, subjects

CLIENTS = 8
ACCOUNTS = 8
# A killed dispatcher's claims run out after 30 s (its lease), then another sends them again.
ARRIVAL_DEADLINE = 90


class Mover(threading.Thread):
    """One client posting and transferring as fast as it can, at whichever API is up; every
    answer or failure is ignored: what counts is what the ledger holds afterwards."""

    def __init__(self, server, token, accounts, seed):
        super().__init__(daemon=True)
        self.server, self.token, self.accounts = server, token, accounts
        self.turns = itertools.count(seed)
        self.running = True
        self.answers = collections.Counter()

    def run(self):
        while self.running:
            turn = next(self.turns)
            one, other = self.accounts[turn % len(self.accounts)], self.accounts[(turn + 1) % len(self.accounts)]
            path, body = (("/transactions", {"acc_id": one, "credit": 1 + turn % 50}) if turn % 3 else
                          ("/transfers", {"from_acc_id": one, "to_acc_id": other, "amount": 1}))
            try:
                status, _ = request("POST", f"{self.server['api'].url}{path}", body, headers=bearer(self.token), timeout=10)
            except OSError:
                status = None
                time.sleep(0.05)
            self.answers[status] += 1


def api_on(database, tmp_path, name):
    return Api.for_tests(database.url, tmp_path / f"{name}.log", WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                         WEBHOOK_FIRST_RETRY_MS="200", DB_ACQUIRE_TIMEOUT_SECS="2")


def test_no_ledger_change_is_lost_through_a_killed_dispatcher_a_restarted_database_and_a_failing_endpoint(
        database, tmp_path):
    receiver = Receiver()
    server = {"api": api_on(database, tmp_path, "api-1")}
    try:
        token = server["api"].operator_token()
        status, endpoint = request("POST", f"{server['api'].url}/webhooks", {"url": receiver.url}, headers=bearer(token))
        assert status == 201, endpoint
        accounts = []
        for _ in range(ACCOUNTS):
            status, account = request("POST", f"{server['api'].url}/accounts",
                                      {"first_name": "W", "last_name": "H", "address": "A"}, headers=bearer(token))
            accounts.append(account["id"])
        movers = [Mover(server, token, accounts, seed) for seed in range(CLIENTS)]
        for mover in movers:
            mover.start()

        time.sleep(3)
        # SIGKILL while deliveries are in flight: what its dispatcher had claimed waits for the
        # lease to run out, then the next one sends it.
        server["api"].process.kill()
        server["api"].process.wait()
        server["api"] = api_on(database, tmp_path, "api-2")
        time.sleep(1)
        receiver.failing = True
        time.sleep(2)
        database.stop()
        time.sleep(3)
        database.start()
        time.sleep(3)
        receiver.failing = False
        time.sleep(2)
        for mover in movers:
            mover.running = False
        for mover in movers:
            mover.join(timeout=15)

        rows = psql(database.url, "-At", "-c", "SELECT id FROM transactions ORDER BY id")
        assert rows.returncode == 0, rows.stderr
        ledger = {("row", int(row)) for row in rows.stdout.split()}
        verifier = Webhook(endpoint["secret"])
        deadline = time.monotonic() + ARRIVAL_DEADLINE
        while True:
            arrived = set()
            for headers, body in receiver.requests():
                arrived |= subjects(verifier.verify(body, headers))
            if ledger <= arrived or time.monotonic() > deadline:
                break
            time.sleep(0.5)

        requests = receiver.requests()
        ids = collections.Counter(headers["webhook-id"] for headers, _ in requests)
        answers = sum((mover.answers for mover in movers), collections.Counter())
        print(f"\n{sum(answers.values())} writes from {CLIENTS} clients ({dict(answers)}), {len(ledger)} ledger "
              f"rows; {len(requests)} webhook requests for {len(ids)} messages, "
              f"{sum(n - 1 for n in ids.values())} repeats; {len(ledger - arrived)} ledger rows lost; "
              f"every signature verified by standardwebhooks")
        assert len(ledger) > 100, "money moved"
        assert answers[None] > 0 or answers[503] > 0, "the faults were felt by the clients"
        assert ledger - arrived == set(), "a ledger row never arrived"
        assert arrived <= ledger, "nothing arrived that the ledger does not hold"
    finally:
        server["api"].stop()
        receiver.close()


def sent_by(api):
    """How many webhooks this replica's dispatcher has delivered."""
    status, text = request("GET", f"{api.url}/metrics")
    assert status == 200
    line = next(line for line in text.splitlines() if line.startswith('bank_webhook_deliveries_total{outcome="delivered"}'))
    return float(line.split()[-1])


def test_two_replicas_share_the_outbox_and_never_send_a_message_twice(tmp_path):
    """Both replicas' dispatchers claim from one outbox: each message is sent once, by one."""
    url = new_postgres_database("bank_test_webhooks")
    receiver = Receiver()
    replicas = []
    try:
        replicas = [Api.for_tests(url, tmp_path / f"replica-{n}.log", WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
                    for n in (1, 2)]
        token = replicas[0].operator_token()
        status, _ = request("POST", f"{replicas[0].url}/webhooks", {"url": receiver.url}, headers=bearer(token))
        assert status == 201
        status, account = request("POST", f"{replicas[1].url}/accounts",
                                  {"first_name": "W", "last_name": "H", "address": "A"}, headers=bearer(token))
        items = [{"kind": "posting", "acc_id": account["id"], "credit": 1}] * 1000
        for _ in range(3):
            status, _ = request("POST", f"{replicas[0].url}/batches", {"items": items}, headers=bearer(token), timeout=60)
            assert status == 200

        deadline = time.monotonic() + 60
        while len(receiver.requests()) < 3000 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # anything sent twice would arrive by now
        ids = collections.Counter(headers["webhook-id"] for headers, _ in receiver.requests())
        shares = [sent_by(replica) for replica in replicas]
        print(f"\n3000 messages from one outbox: {len(ids)} distinct arrived, {sum(ids.values())} requests; "
              f"the replicas sent {shares[0]:.0f} and {shares[1]:.0f}")
        assert len(ids) == 3000, "every message arrived"
        assert sum(ids.values()) == 3000, "none was sent twice"
        assert all(share > 0 for share in shares), "both replicas sent some"
    finally:
        for replica in replicas:
            replica.stop()
        receiver.close()
        drop_postgres_database(url)
