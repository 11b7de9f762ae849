"""End to end, with the real tools: the API on Postgres exporting traces to a real OTLP receiver,
the real Prometheus with the shipped configuration, rules and feature flags (only the target
addresses rewritten for localhost), Alertmanager, and traffic from the simulator. Then every PromQL
expression in the dashboards and the rule files must return data, every SQL panel query must run,
as Grafana's read-only role, and return rows, every exemplar must lead to an exported trace, and
promtool must find nothing to lint in a scrape taken under the load."""

import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from bank_testkit.dashboards import HA_DASHBOARD, HA_RULES, dashboard_targets, rule_expressions, substitute
from bank_testkit.http import request
from bank_testkit.monitoring import Stack
from bank_testkit.otlp import Receiver
from bank_testkit.postgres import drop_postgres_database, new_postgres_database, psql
from bank_testkit.processes import AUTH_ENV, BANK_API, OPERATOR, ROOT, SIMULATOR, free_port
from bank_testkit.prometheus import instant_query

TRAFFIC_SECONDS = int(os.environ.get("E2E_TRAFFIC_SECONDS", "75"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    database_url = new_postgres_database("bank_e2e")
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port(), "postgres-exporter": free_port()}
    processes = Stack(tmp)
    receiver = Receiver()
    # As compose runs it with the simulator profile: the operator the simulator logs in as, and
    # the diagnostics route its few 5xx come from, for the error panels and rules.
    api = processes.start("api", [BANK_API], dict(
        os.environ, PORT=str(ports["api"]), DATABASE_URL=database_url, LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SERVICE_NAME="bank-api", DIAGNOSTICS_ROUTES="true",
        **AUTH_ENV,
    ), ready_url=f"http://127.0.0.1:{ports['api']}/ready")

    processes.postgres_exporter(database_url, ports["postgres-exporter"])

    # Alertmanager with the shipped configuration; the webhook secret points at a closed local port.
    (tmp / "webhook_url").write_text("http://127.0.0.1:9/")
    am_config = (ROOT / "prometheus" / "alertmanager" / "alertmanager.yml").read_text()
    (tmp / "alertmanager.yml").write_text(am_config.replace("/run/secrets/alert_slack_webhook_url", str(tmp / "webhook_url")))
    processes.alertmanager(tmp / "alertmanager.yml", ports["alertmanager"])

    # Prometheus with the shipped configuration: only "service:port" targets become localhost ports.
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    text = json.dumps(config)
    for service, port in ports.items():
        text = re.sub(rf'"{service}:\d+"', f'"127.0.0.1:{port}"', text)
    config = json.loads(text)
    config["rule_files"] = [str(ROOT / "prometheus" / rule) for rule in config["rule_files"]]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes.prometheus(tmp / "prometheus.yml", ports["prometheus"], *shipped_prometheus_features())

    started = time.time()
    # A scrape taken halfway through the traffic, for promtool's lint.
    scrape = threading.Timer(TRAFFIC_SECONDS / 2, lambda: (tmp / "scrape.txt").write_bytes(
        urllib.request.urlopen(f"http://127.0.0.1:{ports['api']}/metrics", timeout=10).read()))
    scrape.start()
    simulation = subprocess.run(
        [SIMULATOR, "--target", f"http://127.0.0.1:{ports['api']}", "--rate", "40", "--duration", str(TRAFFIC_SECONDS)],
        capture_output=True, text=True, timeout=TRAFFIC_SECONDS + 60,
        env=dict(os.environ, SIMULATOR_USERNAME=OPERATOR[0], SIMULATOR_PASSWORD=OPERATOR[1]),
    )
    print(simulation.stdout)
    assert simulation.returncode == 0, simulation.stderr
    scrape.join()
    time.sleep(12)  # two more scrapes and rule evaluations after the last request

    yield {"prometheus": f"http://127.0.0.1:{ports['prometheus']}", "database_url": database_url, "tmp": tmp,
           "api": api, "api_url": f"http://127.0.0.1:{ports['api']}", "receiver": receiver,
           "traffic": (started, time.time())}

    processes.stop_all()
    receiver.stop()
    drop_postgres_database(database_url)


def shipped_prometheus_features():
    """The `--enable-feature` flags compose.yaml starts Prometheus with (exemplar storage)."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return [flag for flag in compose["services"]["prometheus"]["command"] if flag.startswith("--enable-feature=")]


# An alert's condition is empty while nothing is wrong; with `bool` the same expression returns
# 0 or 1 per series, which shows that every series it needs exists.
COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)\s*(?=[\d(])")


# Panels that are empty by design here: replication lag needs a replica, and the HA dashboard the
# profile `ha` (tests/resilience/test_failover.py gives them data). Their queries must still be
# valid PromQL, which `instant_query` checks.
EMPTY_WITHOUT_REPLICA = {("postgres.json", "Replication lag")}


def test_promtool_finds_nothing_to_lint_in_a_scrape_taken_under_load(stack):
    scrape = (stack["tmp"] / "scrape.txt").read_bytes()
    assert b"http_requests_total" in scrape and b"bank_transactions_total" in scrape
    lint = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, timeout=60)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, b"", b""), lint


def test_every_dashboard_promql_expression_returns_data(stack):
    blank = []
    checked = 0
    for dashboard, panel, uid, target in dashboard_targets():
        if uid != "prometheus":
            continue
        checked += 1
        result = instant_query(stack["prometheus"], substitute(target["expr"]))
        if not result and (dashboard, panel) not in EMPTY_WITHOUT_REPLICA and dashboard != HA_DASHBOARD:
            blank.append(f"{dashboard} / {panel} / {target['refId']}: {target['expr']}")
    print(f"{checked} dashboard expressions evaluated")
    assert checked >= 20
    assert not blank, "blank panels:\n" + "\n".join(blank)


def test_every_rule_expression_returns_data(stack):
    blank = []
    ha = {name for name, _ in rule_expressions(HA_RULES)}
    rules = [(name, expr) for name, expr in rule_expressions() if name not in ha]
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
    assert {series["metric"]["job"] for series in up} == {"bank-api", "postgres", "prometheus", "alertmanager"}
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


def test_every_exemplar_leads_to_an_exported_trace_with_its_database_spans(stack):
    """A write's statement may be a group's, run in the trace of the group's first request: the
    others reach it through their `ledger.group` span's link."""
    start, end = stack["traffic"]
    url = f"{stack['prometheus']}/api/v1/query_exemplars?" + urllib.parse.urlencode(
        {"query": "http_requests_duration_seconds_bucket", "start": start, "end": end + 30})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    exemplars = [(series["seriesLabels"], exemplar["labels"]["trace_id"])
                 for series in body["data"] for exemplar in series["exemplars"]]
    spans = stack["receiver"].snapshot()
    servers = {span["trace_id"]: span for span in spans if span["server"]}
    by_id = {span["span_id"]: span for span in spans}
    children = {}
    for span in spans:
        children.setdefault(span["parent_span_id"], []).append(span)

    def statements_under(span):
        """The database spans below `span`, or below the span a `ledger.group` span links to."""
        found = []
        for child in children.get(span["span_id"], []):
            if "db.system.name" in child["attributes"]:
                found.append(child)
            found += statements_under(child)
            for _, linked in child["links"]:
                if child["name"] == "ledger.group" and linked in by_id:
                    found += statements_under(by_id[linked])
        return found
    print(f"{len(exemplars)} exemplars, {len(spans)} spans received")
    assert len(exemplars) >= 10, body
    for labels, trace_id in exemplars:
        server = servers.get(trace_id)
        assert server, f"exemplar {trace_id} of {labels} was never exported"
        assert server["service"] == "bank-api"
        assert server["attributes"]["http.route"] == labels["endpoint"], (server, labels)
        # Every success but /ping read or wrote the database; a refusal may come before it (a
        # missing token, a throttled login, a malformed body).
        if labels["endpoint"] != "/ping" and labels["status"].startswith("2"):
            statements = statements_under(server)
            assert statements, f"{labels}: no database spans under {server}"
            # The stable database conventions, as a real OTLP receiver got them.
            for span in statements:
                attributes = span["attributes"]
                assert attributes["db.system.name"] == "postgresql", span
                assert not {"db.system", "db.statement", "db.operation"} & set(attributes), span
                target = attributes.get("db.collection.name") or attributes.get("db.stored_procedure.name")
                assert span["name"] == " ".join(filter(None, [attributes["db.operation.name"], target])), span


def test_every_access_log_line_names_its_trace_and_request(stack):
    lines = [json.loads(line) for line in (stack["tmp"] / "api.log").read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["target"] == "access"]
    assert len(access) > 100
    for line in access:
        assert re.fullmatch(r"[0-9a-f]{32}", line.get("trace_id", "")), line
        assert re.fullmatch(r"[0-9a-f]{16}", line.get("span_id", "")), line
    by_request = {span["attributes"].get("request_id"): span for span in stack["receiver"].snapshot() if span["server"]}
    linked = [line for line in access if line["request_id"] in by_request]
    assert len(linked) > 100, "the request span carries the request id of its log line"
    for line in linked:
        assert by_request[line["request_id"]]["trace_id"] == line["trace_id"], line


def _datasources():
    return yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yml").read_text())["datasources"]


def test_log_and_trace_queries_name_only_what_the_api_and_alloy_emit(stack):
    """LogQL and TraceQL cannot run here (no Loki, no Tempo): every label, JSON field and span
    attribute the dashboards and data-source links query must be one the real API emitted above."""
    log_lines = [json.loads(line) for line in (stack["tmp"] / "api.log").read_text().splitlines() if line.startswith("{")]
    fields = {key for line in log_lines for key in line}
    alloy = (ROOT / "docker/alloy/config.alloy").read_text()
    stream_labels = set(re.findall(r'target_label\s*=\s*"(\w+)"', alloy))
    stream_labels |= set(re.findall(r"values\s*=\s*\{\s*(\w+)\s*=", alloy))
    sources = {source["uid"]: source for source in _datasources()}
    logql = [t["expr"] for _, _, uid, t in dashboard_targets() if uid == "loki"]
    logql.append(sources["tempo"]["jsonData"]["tracesToLogsV2"]["query"].replace("$${__span.traceId}", "x"))
    assert len(logql) >= 3
    for query in logql:
        selector, _, pipeline = query.partition("}")
        assert set(re.findall(r"(\w+)\s*[=!]~?\s*\"", selector)) <= stream_labels, query
        assert "| json" in pipeline, query
        used = set(re.findall(r"\|\s*(\w+)\s*(?:=~|!=|!~|>=|<=|=|>|<)", pipeline))
        assert used <= fields, f"{query}: {used - fields} never logged"

    spans = stack["receiver"].snapshot()
    span_attributes = {key for span in spans for key in span["attributes"]}
    traceql = [t["query"] for _, _, uid, t in dashboard_targets() if uid == "tempo"]
    assert traceql
    for query in traceql:
        for scope, name in re.findall(r"\b(span|resource)\.([\w.]+)", query):
            known = span_attributes if scope == "span" else {"service.name"}
            assert name in known, f"{query}: {scope}.{name} is never emitted"
    for tag in sources["tempo"]["jsonData"]["tracesToMetrics"]["tags"]:
        assert tag["key"] in span_attributes, tag

    # The links themselves: a log line's trace_id is found by the Loki derived field, and the
    # exemplar label the Prometheus data source opens in Tempo is the one the API writes.
    pattern = re.compile(sources["loki"]["jsonData"]["derivedFields"][0]["matcherRegex"])
    raw_access = next(line for line in (stack["tmp"] / "api.log").read_text().splitlines() if '"target":"access"' in line)
    assert pattern.search(raw_access).group(1) == json.loads(raw_access)["trace_id"]
    destination = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]
    assert destination == {"name": "trace_id", "datasourceUid": "tempo"}


def test_spans_in_flight_are_sent_when_the_api_stops(stack):
    """Last in this file: it stops the API. The batch exporter waits 5 s between sends, so only
    the flush at shutdown can deliver this span in time."""
    trace_id = uuid.uuid4().hex
    status, _ = request("GET", f"{stack['api_url']}/ping", headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01"})
    assert status == 200
    assert stack["api"].stop(timeout=30) == 0
    assert any(span["trace_id"] == trace_id for span in stack["receiver"].snapshot()), "flushed at shutdown"
