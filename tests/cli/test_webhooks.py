"""Webhooks as a customer's system receives them: every money change of the account arrives, at
least once, through a stretch of failures, and every message's signature verifies with
`standardwebhooks`, the Standard Webhooks reference library from PyPI, which nobody here wrote."""

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bank_testkit.http import bearer, request
from bank_testkit.processes import Api
from bank_testkit.webhooks import Receiver

FAILING_FIRST = 4


@pytest.fixture()
def receiver():
    server = Receiver(fail_first=FAILING_FIRST)
    yield server
    server.close()


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
    secret = created(api, token, "/webhooks", {"url": receiver.url})["secret"]

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

    deadline = time.monotonic() + 30
    while len({headers["webhook-id"] for headers, _ in receiver.requests()[FAILING_FIRST:]}) < len(expected):
        assert time.monotonic() < deadline, f"{len(receiver.requests())} requests: {receiver.requests()}"
        time.sleep(0.1)

    verifier = Webhook(secret)
    arrived = set()
    for headers, body in receiver.requests():
        message = verifier.verify(body, headers)
        data = message["data"]
        subject = data["from_transaction"]["id"] if message["type"] == "transfer.made" else data["id"]
        arrived.add((message["type"], subject))
    assert arrived == set(expected), "every change arrived, and nothing else"

    ids = [headers["webhook-id"] for headers, _ in receiver.requests()]
    duplicates = len(ids) - len(set(ids))
    print(f"{len(expected)} events, {len(ids)} requests, {duplicates} repeats after {FAILING_FIRST} failures")
    assert duplicates >= FAILING_FIRST, "the failed attempts were sent again"

    headers, body = receiver.requests()[-1]
    tampered = json.dumps({**json.loads(body), "type": "transfer.made"}).encode()
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
