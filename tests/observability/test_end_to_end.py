"""End to end, with the real tools: the API on Postgres, the real Prometheus with the shipped
configuration and rules (only the target addresses rewritten for localhost), Alertmanager, and
traffic from the simulator. Then every PromQL expression in the dashboards and the rule files must
return data, and every SQL panel query must run, as Grafana's read-only role, and return rows."""

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from dashboards import dashboard_targets, rule_expressions, substitute
from support import BANK_API, ROOT, SIMULATOR, drop_postgres_database, free_port, new_postgres_database, psql, wait_until_ok

TRAFFIC_SECONDS = int(os.environ.get("E2E_TRAFFIC_SECONDS", "75"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    database_url = new_postgres_database("bank_e2e")
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port()}
    processes = []

    def start(name, command, env=None):
        log = open(tmp / f"{name}.log", "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        processes.append(process)
        return process

    api = start("api", [BANK_API], dict(os.environ, PORT=str(ports["api"]), DATABASE_URL=database_url, LOG_FORMAT="json"))
    wait_until_ok(f"http://127.0.0.1:{ports['api']}/ready", api)

    # Alertmanager with the shipped configuration; the webhook secret points at a closed local port.
    (tmp / "webhook_url").write_text("http://127.0.0.1:9/")
    am_config = (ROOT / "prometheus" / "alertmanager" / "alertmanager.yml").read_text()
    (tmp / "alertmanager.yml").write_text(am_config.replace("/run/secrets/alert_slack_webhook_url", str(tmp / "webhook_url")))
    alertmanager = start("alertmanager", [
        "prometheus-alertmanager", f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}",
        f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address=",
    ])
    wait_until_ok(f"http://127.0.0.1:{ports['alertmanager']}/-/ready", alertmanager)

    # Prometheus with the shipped configuration: only "service:port" targets become localhost ports.
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    text = json.dumps(config)
    for service, port in ports.items():
        text = re.sub(rf'"{service}:\d+"', f'"127.0.0.1:{port}"', text)
    config = json.loads(text)
    config["rule_files"] = [str(ROOT / "prometheus" / rule) for rule in config["rule_files"]]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = start("prometheus", [
        "prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
    ])
    wait_until_ok(f"http://127.0.0.1:{ports['prometheus']}/-/ready", prometheus)

    simulation = subprocess.run(
        [SIMULATOR, "--target", f"http://127.0.0.1:{ports['api']}", "--rate", "40", "--duration", str(TRAFFIC_SECONDS)],
        capture_output=True, text=True, timeout=TRAFFIC_SECONDS + 60,
    )
    print(simulation.stdout)
    assert simulation.returncode == 0, simulation.stderr
    time.sleep(12)  # two more scrapes and rule evaluations after the last request

    yield {"prometheus": f"http://127.0.0.1:{ports['prometheus']}", "database_url": database_url, "tmp": tmp}

    for process in processes:
        process.terminate()
        process.wait(timeout=30)
    drop_postgres_database(database_url)


def instant_query(prometheus, expr):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


# An alert's condition is empty while nothing is wrong; with `bool` the same expression returns
# 0 or 1 per series, which shows that every series it needs exists.
COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)\s*(?=[\d(])")


def test_every_dashboard_promql_expression_returns_data(stack):
    blank = []
    checked = 0
    for dashboard, panel, uid, target in dashboard_targets():
        if uid != "prometheus":
            continue
        checked += 1
        if not instant_query(stack["prometheus"], substitute(target["expr"])):
            blank.append(f"{dashboard} / {panel} / {target['refId']}: {target['expr']}")
    print(f"{checked} dashboard expressions evaluated")
    assert checked >= 20
    assert not blank, "blank panels:\n" + "\n".join(blank)


def test_every_rule_expression_returns_data(stack):
    blank = []
    rules = list(rule_expressions())
    for name, expr in rules:
        if not instant_query(stack["prometheus"], COMPARISON.sub(r"\1 bool ", expr)):
            blank.append(f"{name}: {expr}")
    print(f"{len(rules)} rule expressions evaluated")
    assert not blank, "rules without data:\n" + "\n".join(blank)


def test_prometheus_loaded_every_rule_and_scrapes_every_target(stack):
    with urllib.request.urlopen(f"{stack['prometheus']}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert loaded == {name for name, _ in rule_expressions()}
    up = instant_query(stack["prometheus"], "up")
    assert {series["metric"]["job"] for series in up} == {"bank-api", "prometheus", "alertmanager"}
    assert all(series["value"][1] == "1" for series in up), up


def test_every_sql_panel_query_runs_as_grafanas_read_only_role(stack):
    reader = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    url = stack["database_url"]
    owner = urllib.parse.urlparse(url).username or "postgres"
    database = url.rsplit("/", 1)[1]
    host = urllib.parse.urlparse(url).hostname
    env = dict(os.environ, POSTGRES_USER=owner, POSTGRES_DB=database, PGHOST=host,
               GRAFANA_DB_USER=reader, GRAFANA_DB_PASSWORD="e2e")
    init = subprocess.run(["bash", str(ROOT / "docker/postgres/initdb/01-grafana-reader.sh")], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    reader_url = url.replace(f"//{owner}@", f"//{reader}:e2e@", 1) if f"//{owner}@" in url else url
    try:
        queries = [(f"{d} / {p}", t["rawSql"]) for d, p, uid, t in dashboard_targets() if uid == "postgres"]
        assert len(queries) >= 4
        for name, sql in queries:
            result = psql(reader_url, "-c", substitute(sql))
            assert result.returncode == 0, f"{name}: {result.stderr}"
            assert result.stdout.strip(), f"{name}: no rows"
        write = psql(reader_url, "-c", "UPDATE accounts SET balance = 0")
        assert write.returncode != 0 and "permission denied" in write.stderr, "the reader role cannot write"
    finally:
        psql(url, "-c", f"REASSIGN OWNED BY {reader} TO {owner}; DROP OWNED BY {reader}; DROP ROLE {reader}")
