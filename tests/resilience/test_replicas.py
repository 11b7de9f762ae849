"""What must hold across API replicas, tried with two server processes on one Postgres database:
the users each remembers, and the login limits they share.

Each replica remembers the users its tokens name, so that a request costs no read of the user's
row; Postgres notifies every replica of each deleted user and changed role as it commits. The
bound promised: a deleted user's token is refused, and a changed role applies, on every replica
within the delivery of that notification. A replica that loses its notification channel forgets
every user until it hears the channel again, so the bound holds then too."""

import time

import pytest

from bank_testkit.http import bearer, request, try_log_in
from bank_testkit.postgres import drop_postgres_database, new_postgres_database, psql
from bank_testkit.processes import Api

HEARD_WITHIN = 2.0  # seconds: far above a notification's delivery, below anything a user sees


@pytest.fixture()
def replicas(tmp_path):
    database = new_postgres_database("bank_test_replicas")
    servers = [Api.for_tests(database, tmp_path / f"api{i}.log") for i in range(2)]
    servers[0].database = database
    yield servers
    for server in servers:
        server.stop()
    drop_postgres_database(database)


def until(answer, expected, within=HEARD_WITHIN):
    """Seconds until `answer()` gives `expected`; fails after `within`."""
    started = time.monotonic()
    while (got := answer()) != expected:
        assert time.monotonic() - started < within, f"still {got} after {within} s"
        time.sleep(0.005)
    return time.monotonic() - started


def listeners(database):
    """How many sessions listen for user changes."""
    listed = psql(database, "-c", "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
    assert listed.returncode == 0, listed.stderr
    return int(listed.stdout)


def status(server, token, path="/accounts"):
    return request("GET", f"{server.url}{path}", headers=bearer(token))[0]


def test_a_deleted_users_token_and_a_changed_role_reach_every_replica(replicas):
    database = replicas[0].database
    ada = replicas[0].customer_token("ada")
    grace = replicas[0].customer_token("grace")
    status_code, opened = request("POST", f"{replicas[0].url}/accounts", {"first_name": "G", "last_name": "H",
                                                                          "address": "x"}, headers=bearer(grace))
    assert status_code == 201
    for server in replicas:  # each replica now remembers both users
        assert status(server, ada) == 200 and status(server, grace) == 200

    promoted = psql(database, "-c", "UPDATE users SET role = 'operator' WHERE username = 'ada'")
    assert promoted.returncode == 0, promoted.stderr
    graces_account = f"/accounts/{opened['id']}"
    took = [until(lambda s=server: status(s, ada, graces_account), 200) for server in replicas]
    print(f"\na changed role applied on the replicas after {', '.join(f'{t * 1000:.0f} ms' for t in took)}")

    deleted = psql(database, "-c", "DELETE FROM users WHERE username = 'ada'")
    assert deleted.returncode == 0, deleted.stderr
    took = [until(lambda s=server: status(s, ada), 401) for server in replicas]
    print(f"a deleted user's token was refused by the replicas after {', '.join(f'{t * 1000:.0f} ms' for t in took)}")


def test_a_replica_that_stops_hearing_changes_forgets_every_user(replicas):
    database = replicas[0].database
    ada = replicas[0].customer_token("ada")
    for server in replicas:
        assert status(server, ada) == 200
    # Every replica's notification channel is cut; they must stop trusting what they remember.
    assert listeners(database) == 2
    cut = psql(database, "-c", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")
    assert cut.returncode == 0 and cut.stdout.split() == ["t", "t"], cut.stdout + cut.stderr

    deleted = psql(database, "-c", "DELETE FROM users WHERE username = 'ada'")
    assert deleted.returncode == 0, deleted.stderr
    # Sooner than a replica tries to listen again (once a second): it forgot when the channel went.
    for server in replicas:
        until(lambda s=server: status(s, ada), 401, within=0.5)
    # And they listen again; a user remembered from then on is forgotten on the next change.
    deadline = time.monotonic() + 10
    while listeners(database) < 2:
        assert time.monotonic() < deadline, "the replicas never listened again"
        time.sleep(0.1)
    grace = replicas[0].customer_token("grace")
    for server in replicas:
        assert status(server, grace) == 200
    psql(database, "-c", "DELETE FROM users WHERE username = 'grace'")
    for server in replicas:
        until(lambda s=server: status(s, grace), 401)


def log_in(server, username, password, forwarded_for=None):
    """The status of a login through `server`, as sent by `forwarded_for`."""
    return try_log_in(server.url, username, password, forwarded_for)[0]


def test_failed_logins_are_counted_once_for_every_replica(tmp_path):
    """Guesses spread over two replicas add up to one limit (5 per username and address); behind
    a trusted proxy each client address has its own, so the user still logs in from elsewhere."""
    database = new_postgres_database("bank_test_replicas")
    servers = [Api.for_tests(database, tmp_path / f"api{i}.log", TRUSTED_PROXIES="127.0.0.1/32") for i in range(2)]
    try:
        servers[0].customer_token("ada")
        attacker, ada = "198.51.100.7", "203.0.113.20"
        answers = [log_in(servers[i % 2], "ada", "a wrong guess", attacker) for i in range(5)]
        assert answers == [401] * 5, answers
        for server in servers:
            assert log_in(server, "ada", "ada password", attacker) == 429, "the sixth guess, on either replica"
        assert log_in(servers[1], "ada", "ada password", ada) == 200, "ada, from her own address"
    finally:
        for server in servers:
            server.stop()
        drop_postgres_database(database)
