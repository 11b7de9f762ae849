"""What the observability checks read: the dashboards' queries, the rules, `.env.example`."""

import json
import re

import yaml

from bank_testkit.processes import ROOT

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


def load_yaml(path):
    return yaml.safe_load(path.read_text())


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_targets():
    """(dashboard file, panel title, datasource uid, target) for every query in every dashboard."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel["datasource"])["uid"]
                yield path.name, panel["title"], uid, target


def dashboard_variables():
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            yield path.name, variable


# The rules and the dashboard of the compose profile `ha`: they need Patroni, HAProxy and a
# standby, so tests/resilience/test_failover.py proves them against its real cluster.
HA_RULES = "ha.yml"
HA_DASHBOARD = "postgres-ha.json"


def rule_expressions(only=None):
    """(rule name, expression) for every recording and alerting rule (of the file `only`)."""
    for path in RULE_FILES:
        if only and path.name != only:
            continue
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                yield rule.get("alert") or rule["record"], rule["expr"]


def env_example():
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if "=" in line and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


# Grafana's variables and macros, replaced by what "All" and a short range would give.
GRAFANA_SUBSTITUTIONS = [
    (re.compile(r"\$__rate_interval|\$__interval|\$__auto"), "1m"),
    (re.compile(r"\$(instance|route|level)\b"), ".*"),
    (re.compile(r"\$(request_id|trace_id)\b"), ""),
    (re.compile(r"\$__timeFilter\((\w+)\)"), r"\1 BETWEEN now() - interval '6 hours' AND now()"),
]


def substitute(query):
    for pattern, replacement in GRAFANA_SUBSTITUTIONS:
        query = pattern.sub(replacement, query)
    return query
