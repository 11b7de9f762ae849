"""bank-api on a Postgres reached over TLS with its certificate checked (`sslmode=verify-full`
and the CA in `sslrootcert`, as docs/configuration.md says): money moves as over plain TCP, every
connection the server keeps is encrypted (Postgres's own `pg_stat_ssl` says so), and each sends
its messages at once (TCP_NODELAY). Under a CA that did not sign the server's certificate, the
server refuses to start.

With Nagle's algorithm on (sqlx 0.9.0), the last TLS record of a statement longer than one (a
group's arrays) waited for Postgres's delayed ACK, about 40 ms: `POST /batches` over TLS ran at
less than half its rate without (docs/resilience.md). That stall is a timing, so the benchmark
measures what TLS costs ("TLS to Postgres" in bench/RESULTS.md); the socket option behind it is
read here from the server's own sockets (`pidfd_getfd`, Linux 5.6 and later: the test started
the server, so it may), where nothing else can see it."""

import ctypes
import os
import socket
import subprocess

from bank_testkit.http import request
from bank_testkit.postgres import certificate_authority, psql
from bank_testkit.processes import AUTH_ENV, BANK_API, Api

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # x86_64
POSTINGS = 300


def sockets_to(pid, port):
    """Copies of the TCP sockets that process `pid` holds to `port` on the loopback."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    found = []
    try:
        for entry in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{entry}").startswith("socket:"):
                    continue
            except FileNotFoundError:
                continue
            copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(entry), 0)
            assert copy >= 0, os.strerror(ctypes.get_errno())
            held = socket.socket(fileno=copy)
            if held.family == socket.AF_INET and held.type == socket.SOCK_STREAM and _peer_port(held) == port:
                found.append(held)
            else:
                held.close()
    finally:
        os.close(pidfd)
    return found


def _peer_port(held):
    try:
        return held.getpeername()[1]
    except OSError:  # a listening socket has no peer
        return None


def verified(database, authority):
    return f"postgres://postgres@127.0.0.1:{database.port}/bank?sslmode=verify-full&sslrootcert={authority}"


def test_the_ledger_over_tls_sends_each_message_at_once(tls_database, tmp_path):
    assert psql(f"{tls_database.url}?sslmode=disable", "-c", "CREATE DATABASE bank").returncode == 0
    api = Api.for_tests(verified(tls_database, tls_database.authority), tmp_path / "api.log", AUTH_REQUIRED="false")
    try:
        status, account = request("POST", f"{api.url}/accounts",
                                  {"first_name": "Tls", "last_name": "Client", "address": "1 Record Lane"})
        assert status == 201, account
        # Long enough that the group's statement spans several TLS records.
        items = [{"kind": "posting", "acc_id": account["id"], "credit": 1} for _ in range(POSTINGS)]
        status, batch = request("POST", f"{api.url}/batches", {"items": items})
        assert status == 200, batch
        assert [result["status"] for result in batch["results"]] == [201] * POSTINGS
        status, balance = request("GET", f"{api.url}/accounts/{account['id']}/balance")
        assert (status, balance["balance"]) == (200, POSTINGS)

        held = sockets_to(api.pid, tls_database.port)
        try:
            assert held, "the server holds no connection to Postgres"
            nodelay = {connection.getsockname()[1]: connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                       for connection in held}
        finally:
            for connection in held:
                connection.close()
        assert all(nodelay.values()), f"connections that wait to fill a segment (Nagle's algorithm): {nodelay}"
        encrypted = psql(f"{tls_database.url}?sslmode=disable", "-c",
                         "SELECT a.client_port, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                         f"WHERE a.client_port IN ({', '.join(map(str, nodelay))}) ORDER BY 1")
        assert encrypted.returncode == 0, encrypted.stderr
        assert encrypted.stdout.split() == [f"{port}|t" for port in sorted(nodelay)]
    finally:
        api.stop()


def test_a_server_certificate_that_the_given_ca_did_not_sign_is_refused(tls_database, tmp_path):
    assert psql(f"{tls_database.url}?sslmode=disable", "-c", "CREATE DATABASE bank").returncode == 0
    _, stranger = certificate_authority(tmp_path)
    started = subprocess.run([BANK_API], env=dict(os.environ, **AUTH_ENV, DATABASE_URL=verified(tls_database, stranger),
                                                  PORT="0"), capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "invalid peer certificate" in started.stderr, started.stderr
