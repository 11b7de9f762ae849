"""Webhooks as a customer's system receives them: every money change of the account arrives, at
least once, through a stretch of failures, and every message's signature verifies with
`standardwebhooks`, the Standard Webhooks reference library from PyPI, which nobody here wrote."""

import http.server
import json
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bank_testkit.http import bearer, request
from bank_testkit.processes import Api

FAILING_FIRST = 4


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 500 to its first `FAILING_FIRST` requests, then 204; keeps every request."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/bank-events"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            self.server.received.append((dict(self.headers), body))
            status = 500 if len(self.server.received) <= FAILING_FIRST else 204
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture()
def api(tmp_path):
    server = Api.for_tests(
        f"sqlite://{tmp_path}/bank.sqlite?mode=rwc",
        tmp_path / "bank-api.log",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        WEBHOOK_FIRST_RETRY_MS="50",
    )
    yield server
    server.stop()


def created(api, token, path, body):
    status, answer = request("POST", f"{api.url}{path}", body, headers=bearer(token))
    assert status in (200, 201), (path, status, answer)
    return answer


def test_every_change_arrives_signed_through_a_stretch_of_failures(api, receiver):
    token = api.customer_token("ada")
    endpoint = created(api, token, "/webhooks", {"url": receiver.url})
    secret = endpoint["secret"]

    account = created(api, token, "/accounts", {"first_name": "Ada", "last_name": "L", "address": "London"})["id"]
    other = created(api, token, "/accounts", {"first_name": "Ada", "last_name": "L", "address": "Paris"})["id"]
    expected = []
    for credit in (1000, 250, 75):
        row = created(api, token, "/transactions", {"acc_id": account, "credit": credit})
        expected.append(("transaction.posted", row["id"]))
    transfer = created(api, token, "/transfers", {"from_acc_id": account, "to_acc_id": other, "amount": 100})
    expected.append(("transfer.made", transfer["from_transaction"]["id"]))
    for action, event in (("capture", "hold.captured"), ("void", "hold.voided")):
        hold = created(api, token, "/holds", {"from_acc_id": account, "to_acc_id": other, "amount": 40})
        created(api, token, f"/holds/{hold['id']}/{action}", {})
        expected += [("hold.created", hold["id"]), (event, hold["id"])]

    def delivered():
        with receiver.lock:
            return list(receiver.received)

    deadline = time.monotonic() + 30
    while len({headers["webhook-id"] for headers, _ in delivered()[FAILING_FIRST:]}) < len(expected):
        assert time.monotonic() < deadline, f"{len(delivered())} requests: {delivered()}"
        time.sleep(0.1)

    verifier = Webhook(secret)
    arrived = set()
    for headers, body in delivered():
        message = verifier.verify(body, headers)
        data = message["data"]
        subject = data["from_transaction"]["id"] if message["type"] == "transfer.made" else data["id"]
        arrived.add((message["type"], subject))
    assert arrived == set(expected), "every change arrived, and nothing else"

    ids = [headers["webhook-id"] for headers, _ in delivered()]
    duplicates = len(ids) - len(set(ids))
    print(f"{len(expected)} events, {len(ids)} requests, {duplicates} repeats after {FAILING_FIRST} failures")
    assert duplicates >= FAILING_FIRST, "the failed attempts were sent again"

    headers, body = delivered()[-1]
    tampered = json.dumps({**json.loads(body), "type": "transfer.made"}).encode()
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
