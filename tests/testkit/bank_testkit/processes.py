"""The repository's binaries, free ports, waiting for a condition, and the one way the suites
start a program: `Process`, of which `Api` starts bank-api."""

import functools
import http.server
import os
import pathlib
import socket
import subprocess
import threading
import time
import urllib.request

# The package is installed editable, from the repository's tests/testkit.
ROOT = pathlib.Path(__file__).resolve().parents[3]
BANK_API = os.environ.get("BANK_API_BIN", str(ROOT / "target" / "debug" / "bank-api"))
SIMULATOR = os.environ.get("BANK_SIMULATE_BIN", str(ROOT / "target" / "debug" / "bank-simulate"))

# Every test server has this operator and signs tokens with this key, so that several server
# processes on one database accept each other's tokens.
OPERATOR = ("operator", "operator password for tests")
JWT_SECRET = "a test signing key that is long enough"
AUTH_ENV = {"OPERATOR_USERNAME": OPERATOR[0], "OPERATOR_PASSWORD": OPERATOR[1], "JWT_SECRET": JWT_SECRET}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what, check, seconds=60, interval=0.2):
    """Calls `check` until it is true; fails naming `what` after `seconds`. `what` may be a
    callable, asked at the failure, when the message names what is still missing."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what() if callable(what) else what}: not after {seconds} s"
        time.sleep(interval)


def answers_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until_ok(url, process=None, seconds=60, interval=0.2):
    """Until `url` answers 200; fails at once if `process` exits first."""
    def ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} never answered 200: the process exited with {process.returncode}")
        return answers_ok(url)
    wait_for(f"{url} answering 200", ready, seconds, interval)


class Process:
    """A program started with its output in `log_path`, ready once `ready_url` answers 200 (when
    given), stopped with SIGTERM."""

    def __init__(self, command, log_path, env=None, cwd=None, ready_url=None, seconds=60, interval=0.2):
        self.log_path = pathlib.Path(log_path)
        self.log = open(self.log_path, "w+")
        started = time.monotonic()
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        if ready_url:
            wait_until_ok(ready_url, self.process, seconds, interval)
        self.ready_after = time.monotonic() - started

    @property
    def pid(self):
        return self.process.pid

    def poll(self):
        return self.process.poll()

    def logged(self):
        """Everything the program has written, running or stopped."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self, timeout=40):
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=timeout)
        self.log.close()
        return code


class Api(Process):
    """bank-api on a free port of 127.0.0.1, ready once `/health` (or `ready`) answers.

    `Api.for_tests(...)` is the suites' usual server; `Api.as_newcomer(...)` runs it as a newcomer
    does, in a directory of its own with nothing set but what is given."""

    def __init__(self, env, log_path, port=None, cwd=None, binary=BANK_API, ready="/health", **wait):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "PORT": str(self.port)}
        super().__init__([str(binary)], log_path, env=env, cwd=cwd, ready_url=f"{self.url}{ready}", **wait)

    @classmethod
    def for_tests(cls, database_url, log_path, port=None, **settings):
        """On `database_url`, with this environment, JSON logs and the test operator and key, and no
        request limit: the suites load one server from one address as one operator, far past what a
        client may send (`tests/cli/test_rate_limits.py` tries the shipped limit)."""
        env = dict(os.environ, HOST="127.0.0.1", DATABASE_URL=database_url, LOG_FORMAT="json", **AUTH_ENV,
                   RATE_LIMIT_PER_SECOND="0")
        env.update({key: str(value) for key, value in settings.items()})
        return cls(env, log_path, port=port)

    @classmethod
    def for_bench(cls, binary, database_url, log_path, **settings):
        """The shipped defaults (access log included), tokens that outlast a run, a request limit
        that is counted but never reached (the load comes from one address), ready once `/ready`
        answers; polled every 2 ms, since start-to-ready is measured."""
        env = dict(os.environ, HOST="127.0.0.1", DATABASE_URL=database_url, TOKEN_TTL_SECS="86400", **AUTH_ENV,
                   RATE_LIMIT_PER_SECOND="1000000")
        env.pop("RUST_LOG", None)
        env.update({key: str(value) for key, value in settings.items()})
        return cls(env, log_path, binary=binary, ready="/ready", interval=0.002)

    @classmethod
    def as_newcomer(cls, workdir, **settings):
        """In `workdir` (so on a fresh SQLite file there), with only PATH, HOME and `settings`."""
        env = {"PATH": os.environ["PATH"], "HOME": str(workdir)}
        env.update({key: str(value) for key, value in settings.items()})
        return cls(env, workdir / "bank-api.log", cwd=workdir)

    def log_in(self, username, password):
        from bank_testkit.http import log_in
        return log_in(self.url, username, password)

    def operator_token(self):
        return self.log_in(*OPERATOR)

    def customer_token(self, username):
        """Signs `username` up as a customer and returns their token."""
        from bank_testkit.http import sign_up
        return sign_up(self.url, username)


class Processes:
    """Programs started together, each logging to `<name>.log` in `directory`, stopped together."""

    def __init__(self, directory):
        self.directory = directory
        self.started = []

    def start(self, name, command, env=None, ready_url=None):
        process = Process(command, self.directory / f"{name}.log", env=env, cwd=self.directory, ready_url=ready_url)
        self.started.append(process)
        return process

    def stop_all(self):
        for process in self.started:
            process.stop(timeout=30)


class StaticSite:
    """A static file server of `directory` on 127.0.0.1 at a port of its own: a web origin of its
    own, for pages that call or frame the API from elsewhere."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
