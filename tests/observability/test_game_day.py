"""Game day, end to end: every scenario of `bank-simulate --list` is run as the README says, against
the API on Postgres with a flags file (FAULT_FLAGS), its postgres exporter, the real Prometheus
with the shipped rules and the real Alertmanager with the shipped routing, posting to a
Slack-compatible webhook this test runs. For each scenario its alert fires, reaches the webhook
with its runbook link, and every alert sent resolves at the webhook once the simulator has turned
the flags off (none is left open there, whichever fired first); no other paging alert fires;
and the first query of the alert's runbook, run while the fault is on, names the cause.

Only this test's copies of the rules are shortened, and they say so here: every `for:` is 5 s,
every range window 20 s, and PostgresLongRunningTransaction's 300 s is 10 s, so that a scenario
takes about a minute instead of up to fifteen."""

import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

import pytest
import yaml

from bank_testkit.monitoring import Stack
from bank_testkit.postgres import drop_postgres_database, new_postgres_database
from bank_testkit.processes import AUTH_ENV, BANK_API, ROOT, SIMULATOR, free_port, wait_for
from bank_testkit.prometheus import instant_query

RULE_FILES = ["alerts.yml", "postgres.yml", "recording.yml"]
WINDOW = "20s"
# The flag each scenario turns on, which the Service overview's annotation must show meanwhile.
FLAGS = {"slow-route": "routeLatency", "slow-statement": "slowStatement", "error-budget": "routeFailure",
         "failing-route": "routeFailure", "held-pool": "poolHeld", "long-transaction": "longTransaction",
         "deadlocks": "deadlocks"}


class Webhook(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhook.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def shortened(rules):
    """The rules with `for:` 5 s, windows of 20 s and the long transaction's threshold 10 s."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "5s"
            rule["expr"] = re.sub(r"\[\d+[smhd]\]", f"[{WINDOW}]", rule["expr"])
            if rule.get("alert") == "PostgresLongRunningTransaction":
                rule["expr"] = rule["expr"].replace("> 300", "> 10")
    return rules


def severities():
    return {rule["alert"]: rule["labels"]["severity"]
            for name in RULE_FILES
            for group in yaml.safe_load((ROOT / "prometheus/rules" / name).read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def scenarios():
    """The scenarios as `bank-simulate --list` prints them: name, alert, and those firing with it."""
    listed = subprocess.run([SIMULATOR, "--list"], capture_output=True, text=True, check=True).stdout
    found, last = [], None
    for line in listed.splitlines():
        if line.startswith("alerts without a scenario"):
            break
        also = re.search(r"\(with it, by its nature: (.*)\)", line)
        if also and last:
            last["also"] = also.group(1).split(", ")
        elif re.match(r"^[a-z-]+ ", line) and not line.startswith("scenario "):
            name, alert = line.split()[:2]
            last = {"name": name, "alert": None if alert == "(none:" else alert, "also": []}
            found.append(last)
    return found


def first_query(alert):
    """The first promql block of the alert's runbook, with the test's windows."""
    page = (ROOT / "docs/runbooks" / f"{alert}.md").read_text()
    query = re.search(r"```promql\n(.*?)\n```", page, re.S)
    assert query, f"{alert}'s runbook has a first query"
    return re.sub(r"\[\d+[smhd]\]", f"[{WINDOW}]", query.group(1))


def names_the_cause(name, result, database):
    """Whether the runbook's first query, while `name` runs, names what the scenario broke."""
    if not result:
        return False
    top = max(result, key=lambda series: float(series["value"][1]))
    labels, value = top["metric"], float(top["value"][1])
    return {
        "slow-route": labels.get("endpoint") == "/accounts/{account_id}/balance",
        "slow-statement": labels.get("endpoint") in {"/transactions", "/transfers", "/holds"},
        "error-budget": labels.get("endpoint") == "/accounts/{account_id}/transactions",
        "failing-route": labels.get("endpoint") == "/transactions",
        "held-pool": value >= 5,
        "long-transaction": labels.get("state") == "idle in transaction" and labels.get("datname") == database,
        "deadlocks": labels.get("datname") == database,
        "rejections": labels.get("reason") == "insufficient_funds",
        "login-failures": labels.get("outcome") in {"bad_credentials", "throttled"},
    }[name]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("game-day")
    database_url = new_postgres_database("bank_e2e")
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port(),
             "postgres-exporter": free_port()}
    processes = Stack(tmp)
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()

    flags = tmp / "faults.flagd.json"
    flags.write_text((ROOT / "flagd/faults.flagd.json").read_text())
    processes.start("api", [BANK_API], dict(
        os.environ, PORT=str(ports["api"]), DATABASE_URL=database_url, LOG_FORMAT="json",
        FAULT_FLAGS=str(flags), **AUTH_ENV,
    ), ready_url=f"http://127.0.0.1:{ports['api']}/ready")

    processes.postgres_exporter(database_url, ports["postgres-exporter"])
    processes.alertmanager_posting_to(f"http://127.0.0.1:{webhook.server_address[1]}/hook", ports["alertmanager"])

    for name in RULE_FILES:
        rules = yaml.safe_load((ROOT / "prometheus/rules" / name).read_text())
        (tmp / name).write_text(yaml.safe_dump(shortened(rules)))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / name) for name in RULE_FILES],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [
            {"job_name": "bank-api", "static_configs": [{"targets": [f"127.0.0.1:{ports['api']}"]}]},
            {"job_name": "postgres", "static_configs": [{"targets": [f"127.0.0.1:{ports['postgres-exporter']}"]}]},
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes.prometheus(tmp / "prometheus.yml", ports["prometheus"])

    yield {"api": f"http://127.0.0.1:{ports['api']}", "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
           "flags": flags, "database": urllib.parse.urlparse(database_url).path[1:], "tmp": tmp}

    processes.stop_all()
    webhook.shutdown()
    drop_postgres_database(database_url)


def annotation_query():
    overview = json.loads((ROOT / "grafana/dashboards/service-overview.json").read_text())
    (annotation,) = [a for a in overview["annotations"]["list"] if a["name"] == "Fault flags"]
    return annotation["expr"]


def readme_game_day():
    """The README's game-day table: scenario -> (alert cell, open first)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Game day", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return {row[0].strip("| `"): (row[1], row[2]) for row in rows}


def test_the_readme_tables_every_scenario_with_its_alert_and_a_panel_that_exists():
    table = readme_game_day()
    listed = scenarios()
    assert sorted(table) == sorted(s["name"] for s in listed)
    titles = {path.stem: {p["title"] for p in json.loads(path.read_text())["panels"]}
              for path in (ROOT / "grafana/dashboards").glob("*.json")}
    for scenario in listed:
        alert_cell, open_first = table[scenario["name"]]
        assert (scenario["alert"] or "none") in alert_cell, (scenario, alert_cell)
        dashboard, panel = re.fullmatch(r'(.+), "(.+)"', open_first).groups()
        assert panel in titles[dashboard.lower().replace(" ", "-")], open_first


def active_alerts(prometheus):
    return {alert["metric"]["alertname"] for alert in instant_query(prometheus, "ALERTS")}


def delivered(status):
    return {re.sub(r"^\[\w+\] ", "", body["attachments"][0]["title"]): body["attachments"][0]["text"]
            for body in Webhook.received if body["attachments"][0]["title"].startswith(f"[{status}]")}


def left_open():
    """The alerts sent firing and not since sent resolved."""
    return set(delivered("FIRING")) - set(delivered("RESOLVED"))


def test_every_listed_alert_has_a_runbook_with_a_first_query():
    for scenario in scenarios():
        if scenario["alert"]:
            first_query(scenario["alert"])


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda scenario: scenario["name"])
def test_a_scenario_fires_its_alert_which_leads_to_the_cause_and_resolves(stack, scenario):
    if scenario["alert"] is None:
        pytest.skip("no alert: tests/api/profiling.rs takes a profile during this scenario")
    prometheus, alert = stack["prometheus"], scenario["alert"]
    expected = {alert, *scenario["also"]}
    severity = severities()
    pages = {name for name, level in severity.items() if level == "page"}
    # The scenario before may leave a page firing a little longer than its own alert (the held
    # pool's 503s burn the error budget for a window after the pool is back): it ends first.
    wait_for("the pages and alerts of the scenario before to end",
             lambda: not active_alerts(prometheus) & (expected | pages), 120, 1)
    Webhook.received.clear()
    log = open(stack["tmp"] / f"simulate-{scenario['name']}.log", "w+")
    simulation = subprocess.Popen(
        [SIMULATOR, "--scenario", scenario["name"], "--target", stack["api"], "--prometheus", prometheus,
         "--flags", str(stack["flags"]), "--rate", "20", "--accounts", "5", "--duration", "150",
         # The fault stays on 3 s after the alert fires: longer than this Alertmanager's group wait
         # (1 s) and an evaluation, so the alert is sent before it can resolve.
         "--hold", "3"],
        stdout=log, stderr=subprocess.STDOUT)

    # While the fault is on: the alert fires, and the runbook's first query names the cause.
    query, result = first_query(alert), None
    while simulation.poll() is None and alert not in {
            a["metric"]["alertname"] for a in instant_query(prometheus, 'ALERTS{alertstate="firing"}')}:
        time.sleep(0.5)
    result = instant_query(prometheus, query)
    # The dashboard's annotation query over the last 3 s, while the simulator holds the flags on.
    annotated = {series["metric"]["flag"] for series in instant_query(
        prometheus, f"max_over_time(({annotation_query()})[3s:500ms])")}
    fired = active_alerts(prometheus)
    assert simulation.wait(timeout=240) == 0, (stack["tmp"] / f"simulate-{scenario['name']}.log").read_text()
    assert names_the_cause(scenario["name"], result, stack["database"]), f"{query}\n{result}"
    flag = FLAGS.get(scenario["name"])
    assert annotated == ({flag} if flag else set()), f"the dashboard annotates {annotated}"

    wait_for(f"{alert} delivered", lambda: alert in delivered("FIRING"), 30, 0.5)
    for name, text in delivered("FIRING").items():
        assert f"Runbook: docs/runbooks/{name}.md" in text, text
    wait_for(lambda: f"resolved at the webhook, of {sorted(left_open())}", lambda: not left_open(), 60, 1)

    paging = {a for a in fired | set(delivered("FIRING")) if severity.get(a) == "page"}
    assert paging <= expected, f"no other page fires: {paging - expected}"
