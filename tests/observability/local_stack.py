"""The processes the observability tests run, started the same way in each: every one logs to
`<name>.log` in the test's directory, and all are stopped together at the end."""

import subprocess

from support import wait_until_ok


class Processes:
    def __init__(self, directory):
        self.directory = directory
        self.started = []

    def start(self, name, command, env=None):
        log = open(self.directory / f"{name}.log", "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        self.started.append(process)
        return process

    def alertmanager(self, config, port):
        """The real Alertmanager on `config`, alone (no cluster), once it is ready."""
        process = self.start("alertmanager", [
            "prometheus-alertmanager", f"--config.file={config}", f"--storage.path={self.directory / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ])
        wait_until_ok(f"http://127.0.0.1:{port}/-/ready", process)
        return process

    def prometheus(self, config, port, *flags):
        """The real Prometheus on `config`, with extra command-line `flags`, once it is ready."""
        process = self.start("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", *flags,
        ])
        wait_until_ok(f"http://127.0.0.1:{port}/-/ready", process)
        return process

    def stop_all(self):
        for process in self.started:
            process.terminate()
            process.wait(timeout=30)
