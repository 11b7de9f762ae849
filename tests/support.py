"""Helpers shared by the Python test suites: the binaries, free ports, processes, databases."""

import glob
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
BANK_API = os.environ.get("BANK_API_BIN", str(ROOT / "target" / "debug" / "bank-api"))
SIMULATOR = os.environ.get("BANK_SIMULATE_BIN", str(ROOT / "target" / "debug" / "bank-simulate"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ok(url, process=None, seconds=60, interval=0.2):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered 200")
        time.sleep(interval)


def psql(url, *args):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-tA", *args], capture_output=True, text=True)


def new_postgres_database(prefix):
    """A fresh database on TEST_DATABASE_URL's server (required: these suites never skip)."""
    server = os.environ["TEST_DATABASE_URL"]
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    created = psql(server, "-c", f"CREATE DATABASE {name}")
    assert created.returncode == 0, created.stderr
    return f"{server.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(url):
    server = os.environ["TEST_DATABASE_URL"]
    psql(server, "-c", f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


# Every test server has this operator, and signs tokens with this key, so that several server
# processes on one database accept each other's tokens.
OPERATOR = ("operator", "operator password for tests")
JWT_SECRET = "a test signing key that is long enough"
# What a test server is started with for that.
AUTH_ENV = {"OPERATOR_USERNAME": OPERATOR[0], "OPERATOR_PASSWORD": OPERATOR[1], "JWT_SECRET": JWT_SECRET}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def log_in(base_url, username, password):
    """A bearer token for this user, from POST /token."""
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    req = urllib.request.Request(f"{base_url}/token", data=data, method="POST")
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())["access_token"]


class Api:
    """One bank-api server process on a free port, with access control on."""

    def __init__(self, database_url, log_path, port=None, **settings):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", DATABASE_URL=database_url, LOG_FORMAT="json",
                   **AUTH_ENV)
        env.update({key: str(value) for key, value in settings.items()})
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([BANK_API], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_ok(f"{self.url}/health", self.process)

    def log_in(self, username, password):
        return log_in(self.url, username, password)

    def operator_token(self):
        return self.log_in(*OPERATOR)

    def customer_token(self, username):
        """Signs `username` up as a customer and returns their token."""
        password = f"{username} password"
        status, body = request("POST", f"{self.url}/users", {"username": username, "password": password})
        assert status == 201, body
        return self.log_in(username, password)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=40)
        self.log.close()


def request(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or text) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def as_postgres_user(command):
    """initdb and pg_ctl refuse to run as root: use the postgres account when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A Postgres server of this process's own (its own data directory and port), so the machine's
    shared server is never touched; `settings` are `-c` options it starts with."""

    def __init__(self, directory, **settings):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        assert bins, "PostgreSQL server binaries are not installed"
        self.bin = bins[-1]
        self.data = directory / "pgdata"
        self.data.mkdir()
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(directory)], check=True)
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(as_postgres_user([f"{self.bin}/initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust"]),
                       check=True, capture_output=True)
        self.settings = settings
        self.log = self.data / "server.log"
        self.start()

    def pg_ctl(self, *args):
        subprocess.run(as_postgres_user([f"{self.bin}/pg_ctl", "-D", str(self.data), *args]), check=True, capture_output=True)

    def start(self):
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self.pg_ctl("-o", options, "-l", str(self.log), "-w", "start")

    def stop(self):
        self.pg_ctl("-m", "immediate", "-w", "stop")

    def pid(self):
        """The postmaster's process id."""
        return int((self.data / "postmaster.pid").read_text().split()[0])
