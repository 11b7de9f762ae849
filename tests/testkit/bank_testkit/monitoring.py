"""Prometheus and Alertmanager from their Debian packages, started the testkit's way: a log per
program in the test's directory, all stopped together at the end."""

from bank_testkit.processes import Processes


class Stack(Processes):
    def alertmanager(self, config, port):
        """The real Alertmanager on `config`, alone (no cluster), once it is ready."""
        return self.start("alertmanager", [
            "prometheus-alertmanager", f"--config.file={config}", f"--storage.path={self.directory / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ], ready_url=f"http://127.0.0.1:{port}/-/ready")

    def prometheus(self, config, port, *flags):
        """The real Prometheus on `config`, with extra command-line `flags`, once it is ready."""
        return self.start("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", *flags,
        ], ready_url=f"http://127.0.0.1:{port}/-/ready")
