"""Faults: the database disappears under load and comes back; the API is stopped under load.

The database is a private Postgres this test starts itself (own data directory and port), so the
machine's shared server is never touched."""

import glob
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from support import Api, free_port, request

OUTAGE_SECONDS = 6
LOAD_CLIENTS = 8
ACQUIRE_TIMEOUT = 2


def as_postgres_user(command):
    """initdb and pg_ctl refuse to run as root: use the postgres account when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    def __init__(self, directory):
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
        self.start()

    def pg_ctl(self, *args):
        subprocess.run(as_postgres_user([f"{self.bin}/pg_ctl", "-D", str(self.data), *args]), check=True, capture_output=True)

    def start(self):
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self.pg_ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self):
        self.pg_ctl("-m", "immediate", "-w", "stop")


@pytest.fixture()
def database():
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="bank-pg-"))
    postgres = PrivatePostgres(directory)
    yield postgres
    try:
        postgres.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(directory, ignore_errors=True)


class Load(threading.Thread):
    """One client crediting an account as fast as it can, recording every answer and its latency."""

    def __init__(self, api, account):
        super().__init__(daemon=True)
        self.api, self.account = api, account
        self.running = True
        self.results = []  # (started at, seconds taken, status, body)

    def run(self):
        while self.running:
            started = time.monotonic()
            status, body = request("POST", f"{self.api.url}/transactions", {"acc_id": self.account, "credit": 1},
                                   headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=30)
            self.results.append((started, time.monotonic() - started, status, body))


def test_a_database_outage_fails_fast_and_heals_without_losing_acknowledged_writes(database, tmp_path):
    api = Api(database.url, tmp_path / "api.log", DB_ACQUIRE_TIMEOUT_SECS=ACQUIRE_TIMEOUT)
    try:
        status, account = request("POST", f"{api.url}/accounts", {"first_name": "F", "last_name": "T", "address": "A"})
        assert status == 201
        loads = [Load(api, account["id"]) for _ in range(LOAD_CLIENTS)]
        for load in loads:
            load.start()
        time.sleep(2)

        database.stop()
        outage_started = time.monotonic()
        time.sleep(OUTAGE_SECONDS / 2)
        health = request("GET", f"{api.url}/health")
        ready = request("GET", f"{api.url}/ready")
        metrics = request("GET", f"{api.url}/metrics")
        time.sleep(OUTAGE_SECONDS / 2)
        database.start()
        restarted = time.monotonic()
        while request("GET", f"{api.url}/ready", timeout=10)[0] != 200:
            assert time.monotonic() - restarted < 30, "the service did not recover"
            time.sleep(0.2)
        recovered_after = time.monotonic() - restarted
        time.sleep(2)
        for load in loads:
            load.running = False
        for load in loads:
            load.join(timeout=40)

        results = [result for load in loads for result in load.results]
        during = [r for r in results if outage_started + 0.5 < r[0] < restarted - 0.5]
        after = [r for r in results if r[0] > restarted + recovered_after]
        acknowledged = [body["id"] for _, _, status, body in results if status == 201]
        slowest = max(seconds for _, seconds, _, _ in during)
        print(f"\noutage {OUTAGE_SECONDS} s: {len(during)} requests during it, statuses "
              f"{sorted({r[2] for r in during})}, slowest {slowest:.2f} s; recovered {recovered_after:.2f} s after "
              f"restart; {len(acknowledged)} writes acknowledged in {len(results)} requests from {LOAD_CLIENTS} clients")

        assert during, "requests were made during the outage"
        assert {r[2] for r in during} == {503}
        assert all(r[3] == {"detail": "Service temporarily unavailable"} for r in during)
        assert slowest < ACQUIRE_TIMEOUT + 3, "a request hung"
        assert health == (200, {"status": "ok"})
        assert ready[0] == 503
        assert metrics[0] == 200 and 'status="503"' in metrics[1]
        assert recovered_after < 15
        assert after and all(r[2] == 201 for r in after), "writes succeed again"
        for transaction_id in acknowledged:
            status, _ = request("GET", f"{api.url}/transactions/{transaction_id}")
            assert status == 200, f"acknowledged write {transaction_id} is missing"
        balance = request("GET", f"{api.url}/accounts/{account['id']}/balance")[1]["balance"]
        assert balance >= len(acknowledged), "every acknowledged credit is in the balance"
    finally:
        api.stop()


def slow_post(port, body, results, index):
    """POST /accounts, sending the body in two halves a second apart."""
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"POST /accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Connection: close\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n")
        connection.sendall(payload[:10])
        time.sleep(1.5)
        connection.sendall(payload[10:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    results[index] = answer.split(b"\r\n", 1)[0].decode()


def test_sigterm_lets_in_flight_requests_finish_refuses_new_ones_and_exits_0(tmp_path):
    api = Api(f"sqlite://{tmp_path / 'bank.db'}?mode=rwc", tmp_path / "api.log")
    clients = 16
    results = [None] * clients
    threads = [threading.Thread(target=slow_post, args=(api.port, {"first_name": f"S{i}", "last_name": "T", "address": "A"}, results, i))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)

    api.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", api.port), timeout=2).close()
    for thread in threads:
        thread.join(timeout=30)
    exit_code = api.process.wait(timeout=40)
    api.log.close()

    print(f"\nSIGTERM with {clients} requests in flight: {results.count('HTTP/1.1 201 Created')} completed, exit code {exit_code}")
    assert results == ["HTTP/1.1 201 Created"] * clients
    assert exit_code == 0
