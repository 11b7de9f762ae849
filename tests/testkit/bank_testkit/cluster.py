"""The compose profile `ha` as processes: etcd, Postgres nodes run by Patroni and HAProxy, each
started from the shipped file (docker/patroni/patroni.yml, docker/haproxy/haproxy.cfg) with only
addresses, ports and directories rewritten. No container engine runs here; these are the same
programs compose would run, from Debian's packages."""

import glob
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

from bank_testkit.http import get
from bank_testkit.processes import ROOT, free_port, wait_for

PATRONI_CONFIG = ROOT / "docker" / "patroni" / "patroni.yml"
POST_BOOTSTRAP = ROOT / "docker" / "patroni" / "post_bootstrap.sh"
HAPROXY_CONFIG = ROOT / "docker" / "haproxy" / "haproxy.cfg"
# Without spaces: the exporter (0.11) cannot read a DSN whose password has one.
PASSWORDS = {"PATRONI_SUPERUSER_PASSWORD": "superuser-secret-for-tests",
             "PATRONI_REPLICATION_PASSWORD": "replication-secret-for-tests",
             "PATRONI_REWIND_PASSWORD": "superuser-secret-for-tests",
             "BANK_DB_PASSWORD": "bank-secret-for-tests",
             "GRAFANA_DB_PASSWORD": "grafana-secret-for-tests",
             "POSTGRES_EXPORTER_PASSWORD": "exporter-secret-for-tests"}
AS_POSTGRES = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


def postgres_bin():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))
    assert bins, "PostgreSQL server binaries are not installed"
    return bins[-1]


def work_directory():
    """A directory the postgres account owns (pytest's tmp_path is root's alone)."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="bank-ha-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    return directory


class Etcd:
    def __init__(self, directory):
        self.port, peer = free_port(), free_port()
        self.log = open(directory / "etcd.log", "w")
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        self.process = subprocess.Popen(
            ["etcd", "--name=etcd", f"--data-dir={directory / 'etcd'}", f"--listen-client-urls={client}",
             f"--advertise-client-urls={client}", f"--listen-peer-urls={peer_url}",
             f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=etcd={peer_url}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("etcd", lambda: get(f"{client}/health")[0] == 200)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


class PatroniNode:
    """One Postgres node under Patroni. Its name, addresses and directories are PATRONI_*
    variables, as compose gives each node; the file is the shipped one with the post-bootstrap
    script's path rewritten to where it is here."""

    def __init__(self, name, etcd, directory):
        self.name = name
        self.directory = directory / name
        self.directory.mkdir(mode=0o700)
        self.data = self.directory / "data"
        self.api_port, self.pg_port = free_port(), free_port()
        script = self.directory / "post_bootstrap.sh"
        shutil.copy(POST_BOOTSTRAP, script)
        self.config = self.directory / "patroni.yml"
        self.config.write_text(PATRONI_CONFIG.read_text().replace("/etc/patroni/post_bootstrap.sh", str(script)))
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.directory)], check=True)
        self.env = dict(os.environ, **PASSWORDS,
                        PATRONI_NAME=name,
                        PATRONI_ETCD3_HOSTS=f"127.0.0.1:{etcd.port}",
                        PATRONI_RESTAPI_LISTEN=f"127.0.0.1:{self.api_port}",
                        PATRONI_RESTAPI_CONNECT_ADDRESS=f"127.0.0.1:{self.api_port}",
                        PATRONI_POSTGRESQL_LISTEN=f"127.0.0.1:{self.pg_port}",
                        PATRONI_POSTGRESQL_CONNECT_ADDRESS=f"127.0.0.1:{self.pg_port}",
                        PATRONI_POSTGRESQL_DATA_DIR=str(self.data),
                        PATRONI_POSTGRESQL_PGPASS=str(self.directory / "pgpass"),
                        PATRONI_POSTGRESQL_BIN_DIR=postgres_bin(),
                        HOME=str(self.directory))
        self.process = None
        self.start()

    @property
    def rest(self):
        return f"http://127.0.0.1:{self.api_port}"

    def start(self):
        self.log = open(self.directory / "patroni.log", "a")
        self.process = subprocess.Popen(["patroni", str(self.config)], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=self.directory, **AS_POSTGRES)

    def role(self):
        """"primary", "replica" or None, as Patroni's REST API says."""
        if get(f"{self.rest}/primary")[0] == 200:
            return "primary"
        if get(f"{self.rest}/replica")[0] == 200:
            return "replica"
        return None

    def is_sync_standby(self):
        return get(f"{self.rest}/sync")[0] == 200

    def timeline(self):
        return (get(f"{self.rest}/patroni")[1] or {}).get("timeline")

    def postmaster_pid(self):
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def lose(self):
        """The node dies at once: SIGKILL to Patroni and its postmaster together."""
        postmaster = self.postmaster_pid()
        self.process.send_signal(signal.SIGKILL)
        os.kill(postmaster, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def patronictl(self, *args):
        result = subprocess.run(["patronictl", "-c", str(self.config), *args], env=self.env, capture_output=True,
                                text=True, cwd=self.directory, **AS_POSTGRES)
        assert result.returncode == 0, f"patronictl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        try:  # a postmaster left behind by a lost Patroni
            os.kill(self.postmaster_pid(), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        self.log.close()


class HAProxy:
    """HAProxy from the shipped file: compose's service names become this machine's ports.
    `per_second` is its limit per client address (API_RATE_LIMIT_PER_SECOND)."""

    def __init__(self, directory, nodes, apis, per_second):
        self.pg_port, self.http_port, self.monitoring_port = free_port(), free_port(), free_port()
        text = HAPROXY_CONFIG.read_text()
        text = text.replace("bind :5000", f"bind 127.0.0.1:{self.pg_port}")
        text = text.replace("bind :8888", f"bind 127.0.0.1:{self.http_port}")
        text = text.replace("bind :8404", f"bind 127.0.0.1:{self.monitoring_port}")
        for index, node in enumerate(nodes, start=1):
            text = text.replace(f"server pg{index} pg{index}:5432 check port 8008",
                                f"server pg{index} 127.0.0.1:{node.pg_port} check port {node.api_port}")
        for index, port in enumerate(apis, start=1):
            text = text.replace(f"server api{index} api{index}:8888", f"server api{index} 127.0.0.1:{port}")
        assert not re.search(r"server \w+ (pg|api)\d:", text), "a server address was not rewritten"
        self.config = directory / f"haproxy-{self.http_port}.cfg"
        self.config.write_text(text)
        checked = subprocess.run(["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.log = open(directory / f"haproxy-{self.http_port}.log", "w")
        env = dict(os.environ, API_RATE_LIMIT_PER_SECOND=str(per_second))
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(self.config)], stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        wait_for("haproxy", lambda: self._metrics_text() is not None)

    def _metrics_text(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitoring_port}/metrics", timeout=2) as response:
                return response.read().decode()
        except OSError:
            return None

    def metrics(self):
        return self._metrics_text() or ""

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


class Cluster:
    """etcd, two Patroni nodes and HAProxy; the bank's database is reached through HAProxy."""

    def __init__(self, api_ports):
        self.directory = work_directory()
        self.etcd = Etcd(self.directory)
        self.nodes = [PatroniNode("pg1", self.etcd, self.directory)]
        wait_for("a first leader", lambda: self.nodes[0].role() == "primary", seconds=90)
        self.nodes.append(PatroniNode("pg2", self.etcd, self.directory))
        self.api_ports = api_ports
        # The suites' load comes from one address, far past one client's share.
        self.haproxy = HAProxy(self.directory, self.nodes, api_ports, per_second=1_000_000)
        self.wait_until_synchronous()

    @property
    def database_url(self):
        password = PASSWORDS["BANK_DB_PASSWORD"]
        return f"postgres://bank:{password}@127.0.0.1:{self.haproxy.pg_port}/bank?sslmode=disable"

    def superuser_url(self, node):
        password = PASSWORDS["PATRONI_SUPERUSER_PASSWORD"]
        return f"postgres://postgres:{password}@127.0.0.1:{node.pg_port}/bank?sslmode=disable"

    def leader(self):
        return next((node for node in self.nodes if node.role() == "primary"), None)

    def wait_until_synchronous(self, seconds=90):
        """A leader, and every other node streaming from it as the synchronous standby."""
        def ready():
            leader = self.leader()
            others = [node for node in self.nodes if node is not leader]
            return leader is not None and all(node.role() == "replica" and node.is_sync_standby() for node in others)
        wait_for("a leader with a synchronous standby", ready, seconds=seconds)

    def stop(self):
        for part in [self.haproxy, *self.nodes, self.etcd]:
            try:
                part.stop()
            except Exception:  # noqa: BLE001 - the others must still stop
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def exporter_command(port):
    return ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{port}",
            f"--extend.query-path={ROOT / 'docker' / 'postgres-exporter' / 'queries.yaml'}"]


def exporter_environment(node):
    """As compose's pgN-exporter: the node itself, as the monitoring role post_bootstrap.sh made."""
    return dict(os.environ, DATA_SOURCE_URI=f"127.0.0.1:{node.pg_port}/bank?sslmode=disable",
                DATA_SOURCE_USER="postgres_exporter", DATA_SOURCE_PASS=PASSWORDS["POSTGRES_EXPORTER_PASSWORD"])


def prometheus_config(shipped, addresses):
    """The shipped prometheus.yml with each compose name found by DNS (`dns_sd_configs`) turned
    into this machine's address for it, labelled as the job's relabelling would label it; static
    targets and Alertmanager, which the `ha` processes here do not include, are left out."""
    jobs = []
    for job in shipped["scrape_configs"]:
        targets = []
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                labels = {}
                for rule in job.get("relabel_configs", []):
                    match = re.fullmatch(rule.get("regex", "(.*)"), name)
                    if rule["source_labels"] == ["__meta_dns_name"] and match:
                        labels[rule["target_label"]] = match.expand(rule.get("replacement", r"\1"))
                targets.append({"targets": [addresses[name]], "labels": labels})
        if targets:
            kept = {key: value for key, value in job.items()
                    if key not in ("dns_sd_configs", "static_configs", "relabel_configs")}
            jobs.append({**kept, "static_configs": targets})
    config = {key: value for key, value in shipped.items() if key not in ("alerting", "scrape_configs")}
    config["rule_files"] = [str(ROOT / "prometheus" / rule) for rule in shipped["rule_files"]]
    config["scrape_configs"] = jobs
    return config
