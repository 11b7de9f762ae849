"""An alert reaches a person: the real Prometheus with the shipped rules and the real Alertmanager
with the shipped routing and Slack messages, posting to a Slack-compatible webhook this test runs.
The API is stopped, so BankApiDown must page: once, with its summary and runbook, not again
before the repeat interval, and resolved when the API is back. Only this test's copies of the
configuration are shortened (`for:`, intervals); the shipped files are used as they are otherwise."""

import http.server
import json
import os
import threading
import time

import pytest
import yaml

from bank_testkit.monitoring import Stack
from bank_testkit.processes import BANK_API, ROOT, free_port, wait_for

REPEAT_SECONDS = 20


class Webhook(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhook.received.append((time.monotonic(), body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def messages(status):
    return [(at, body) for at, body in Webhook.received
            if body["attachments"][0]["title"] == f"[{status}] BankApiDown"]


@pytest.fixture
def processes(tmp_path):
    processes = Stack(tmp_path)
    yield processes
    processes.stop_all()


def test_a_page_reaches_the_webhook_once_per_repeat_interval_and_then_resolves(tmp_path, processes):
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port()}

    rules = yaml.safe_load((ROOT / "prometheus/rules/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "BankApiDown":
                rule["for"] = "2s"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    prometheus_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "alerts.yml"), str(ROOT / "prometheus/rules/recording.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [{"job_name": "bank-api", "static_configs": [{"targets": [f"127.0.0.1:{ports['api']}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))

    api_env = dict(os.environ, PORT=str(ports["api"]), DATABASE_URL=f"sqlite://{tmp_path}/bank.db?mode=rwc")
    api = processes.start("api", [BANK_API], api_env, ready_url=f"http://127.0.0.1:{ports['api']}/ready")
    # The shipped routing and messages; only the secret's path and the timings are the test's.
    processes.alertmanager_posting_to(f"http://127.0.0.1:{webhook.server_address[1]}/hook", ports["alertmanager"],
                                      repeat_interval=f"{REPEAT_SECONDS}s")
    processes.prometheus(tmp_path / "prometheus.yml", ports["prometheus"])
    time.sleep(3)  # a few successful scrapes
    assert Webhook.received == [], "nothing is wrong yet"

    api.stop(timeout=30)
    wait_for("the page", lambda: messages("FIRING"), 30)
    first_at, page = messages("FIRING")[0]
    assert page["channel"] == "#bank-api-oncall", "a page goes to the on-call channel"
    text = page["attachments"][0]["text"]
    assert f"bank-api instance 127.0.0.1:{ports['api']} is down" in text, text
    assert "Runbook: docs/runbooks/BankApiDown.md" in text, text

    # Still down: the page comes again only after the repeat interval.
    wait_for("the page repeated", lambda: len(messages("FIRING")) >= 2, REPEAT_SECONDS + 15)
    second_at, _ = messages("FIRING")[1]
    assert second_at - first_at >= REPEAT_SECONDS - 1, f"repeated after {second_at - first_at:.1f} s"

    processes.start("api-restarted", [BANK_API], api_env, ready_url=f"http://127.0.0.1:{ports['api']}/ready")
    wait_for("the resolution", lambda: messages("RESOLVED"), 30)
    _, resolved = messages("RESOLVED")[0]
    assert resolved["channel"] == "#bank-api-oncall"
    assert "Runbook: docs/runbooks/BankApiDown.md" in resolved["attachments"][0]["text"]
    webhook.shutdown()
