"""Prometheus, Alertmanager and the postgres exporter from their Debian packages, started the
testkit's way: a log per program in the test's directory, all stopped together at the end."""

import os
import subprocess
import urllib.parse
import uuid

from bank_testkit.postgres import psql
from bank_testkit.processes import ROOT, Processes


class Stack(Processes):
    def __init__(self, directory):
        super().__init__(directory)
        self.monitoring_roles = []

    def stop_all(self):
        """Stops every program, then drops the monitoring roles the exporters logged in as."""
        super().stop_all()
        for database_url, role in self.monitoring_roles:
            psql(database_url, "-c", f"DROP OWNED BY {role}", "-c", f"DROP ROLE IF EXISTS {role}")

    def alertmanager(self, config, port):
        """The real Alertmanager on `config`, alone (no cluster), once it is ready."""
        return self.start("alertmanager", [
            "prometheus-alertmanager", f"--config.file={config}", f"--storage.path={self.directory / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ], ready_url=f"http://127.0.0.1:{port}/-/ready")

    def alertmanager_posting_to(self, webhook_url, port, **waits):
        """Alertmanager with the shipped routing and messages, every receiver posting to
        `webhook_url` through the secret file the shipped configuration reads; groups are sent
        after a second, and `waits` (e.g. `repeat_interval`) override each severity's route."""
        import yaml

        (self.directory / "webhook_url").write_text(webhook_url)
        config = yaml.safe_load((ROOT / "prometheus/alertmanager/alertmanager.yml").read_text())
        for receiver in config["receivers"]:
            for slack in receiver["slack_configs"]:
                slack["api_url_file"] = str(self.directory / "webhook_url")
        config["route"].update(group_wait="1s", group_interval="2s")
        for route in config["route"]["routes"]:
            route.update(group_wait="1s", **waits)
        (self.directory / "alertmanager.yml").write_text(yaml.safe_dump(config))
        return self.alertmanager(self.directory / "alertmanager.yml", port)

    def prometheus(self, config, port, *flags):
        """The real Prometheus on `config`, with extra command-line `flags`, once it is ready."""
        return self.start("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", *flags,
        ], ready_url=f"http://127.0.0.1:{port}/-/ready")

    def postgres_exporter(self, database_url, port):
        """The postgres exporter with the shipped extra queries on `database_url`, as the
        monitoring role the shipped init script creates (read-only: statistics views, no table
        data); `stop_all` drops that role."""
        monitor = f"postgres_exporter_{uuid.uuid4().hex[:8]}"
        url = urllib.parse.urlparse(database_url)
        init = subprocess.run(
            ["bash", str(ROOT / "docker/postgres/initdb/02-postgres-exporter.sh")], capture_output=True, text=True,
            env=dict(os.environ, POSTGRES_USER=url.username or "postgres", POSTGRES_DB=url.path[1:],
                     PGHOST=url.hostname, POSTGRES_EXPORTER_USER=monitor, POSTGRES_EXPORTER_PASSWORD="e2e"))
        assert init.returncode == 0, init.stderr
        self.start("postgres-exporter", [
            "prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{port}",
            f"--extend.query-path={ROOT / 'docker/postgres-exporter/queries.yaml'}",
        ], dict(os.environ, DATA_SOURCE_URI=f"{url.hostname}:{url.port or 5432}{url.path}?sslmode=disable",
                DATA_SOURCE_USER=monitor, DATA_SOURCE_PASS="e2e"))
        self.monitoring_roles.append((database_url, monitor))
