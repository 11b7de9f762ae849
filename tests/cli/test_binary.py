"""What the README promises about the binary itself, run as a user would run it: a `.env` file in the
working directory is read, SIGINT stops the server cleanly, the cause of a 5xx is logged under the
request's id (and never sent), and the migration commands `cargo run -p migration -- up/status/down`
work on a real database."""

import json
import os
import re
import signal
import subprocess

from bank_testkit.http import bearer, request
from bank_testkit.postgres import drop_postgres_database, new_postgres_database, psql
from bank_testkit.processes import BANK_API, OPERATOR, ROOT, Api, Process, free_port


def test_a_dot_env_file_in_the_working_directory_is_read(tmp_path):
    port = free_port()
    (tmp_path / ".env").write_text(f"PORT={port}\nDATABASE_URL=sqlite://from-dotenv.db?mode=rwc\n")
    # Not `Api`, which sets PORT: here it must come from .env alone.
    server = Process([BANK_API], tmp_path / "bank-api.log", env={"PATH": os.environ["PATH"]}, cwd=tmp_path,
                     ready_url=f"http://127.0.0.1:{port}/ready")
    try:
        assert (tmp_path / "from-dotenv.db").exists(), "DATABASE_URL came from .env"
    finally:
        server.stop()


def test_sigint_stops_the_server_with_exit_code_0(tmp_path):
    server = Api.as_newcomer(tmp_path)

    server.process.send_signal(signal.SIGINT)

    assert server.stop() == 0


def test_the_cause_of_a_5xx_is_logged_under_the_request_id_and_never_sent(tmp_path):
    server = Api.as_newcomer(tmp_path, LOG_FORMAT="json", DIAGNOSTICS_ROUTES="true", OPERATOR_USERNAME=OPERATOR[0],
                             OPERATOR_PASSWORD=OPERATOR[1])
    try:
        token = server.operator_token()
        status, body = request("GET", f"{server.url}/500", headers={"X-Request-Id": "trace-me-42", **bearer(token)})
        assert status == 500
        assert body == {"detail": "Intentional error from the diagnostics route"}
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.logged().splitlines() if "trace-me-42" in line]
    assert any(line["level"] == "ERROR" and line.get("cause") == "the diagnostics route failed on purpose" for line in lines), lines
    assert any(line.get("status") == 500 and line.get("route") == "/500" for line in lines), lines


def migrate(url, *command):
    result = subprocess.run(["cargo", "run", "-q", "-p", "migration", "--", *command], cwd=ROOT,
                            env=dict(os.environ, DATABASE_URL=url), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def tables(url):
    listed = psql(url, "-c", "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def columns(url, table):
    listed = psql(url, "-c", f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def triggers(url):
    listed = psql(url, "-c", "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def outbox_skips_without_endpoints(url):
    """Whether the outbox's statement trigger returns at once when there is no webhook endpoint."""
    listed = psql(url, "-c", "SELECT prosrc FROM pg_proc WHERE proname = 'bank_outbox_writes'")
    assert listed.returncode == 0, listed.stderr
    return "IF NOT EXISTS (SELECT FROM webhook_endpoints)" in listed.stdout


def test_the_readmes_migration_commands_apply_list_and_roll_back(tmp_path):
    url = new_postgres_database("bank_test_cli")
    try:
        migrate(url, "up")
        assert {"accounts", "transactions", "idempotency_keys", "ledger_writes", "seaql_migrations"} <= set(tables(url))

        status = migrate(url, "status")
        names = sorted(path.stem for path in (ROOT / "migration" / "src").glob("m2*.rs"))
        for name in names:
            assert name in status, status

        outbox = ["holds_outbox_created", "holds_outbox_resolved", "ledger_writes_outbox_each_statement",
                  "ledger_writes_outbox_trace"]
        assert triggers(url) == [*outbox, "users_changed", "users_emptied"]
        assert {"holds", "outbox", "webhook_endpoints", "refresh_tokens"} <= set(tables(url))
        assert "username_key" in columns(url, "users")
        assert outbox_skips_without_endpoints(url)
        migrate(url, "down")
        assert triggers(url) == [*outbox, "users_changed", "users_emptied"], names[-1]
        assert not outbox_skips_without_endpoints(url), f"down rolls back the newest migration, {names[-1]}"
        migrate(url, "down")
        row_outbox = ["holds_outbox_created", "holds_outbox_resolved", "ledger_writes_outbox", "ledger_writes_outbox_trace"]
        assert triggers(url) == [*row_outbox, "users_changed", "users_emptied"], names[-2]
        assert "refresh_tokens" in tables(url), "and only that one"
        migrate(url, "down")
        assert "refresh_tokens" not in tables(url), names[-3]
        assert "outbox" in tables(url), "and only that one"
        migrate(url, "down")
        assert triggers(url) == ["users_changed", "users_emptied"], names[-4]
        assert not {"outbox", "webhook_endpoints"} & set(tables(url)), names[-4]
        assert "username_key" in columns(url, "users"), "and only that one"
        migrate(url, "up")
        assert {"outbox", "refresh_tokens"} <= set(tables(url))
        assert triggers(url) == [*outbox, "users_changed", "users_emptied"]
        assert outbox_skips_without_endpoints(url)
    finally:
        drop_postgres_database(url)


def test_the_curl_walkthrough_of_the_access_control_page_works_as_written(tmp_path):
    """docs/access-control.md's "With curl" block, run by bash against the binary started with no
    configuration (only the port moves): sign up, log in, open an account, list it, exchange a
    refresh token, log out."""
    page = (ROOT / "docs" / "access-control.md").read_text()
    block = re.search(r"## With curl\n\n```sh\n(.*?)```", page, re.S).group(1)
    server = Api.as_newcomer(tmp_path)
    try:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace("http://127.0.0.1:8888", server.url)],
                             capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    # curl prints each answer without a newline: the output is JSON documents in a row.
    answers, at, decoder = [], 0, json.JSONDecoder()
    while at < len(run.stdout.strip()):
        answer, at = decoder.raw_decode(run.stdout, at)
        answers.append(answer)
    user, account, listed, renewed, revoked = answers
    assert user["username"] == "ada" and user["role"] == "customer", run.stdout
    assert account["first_name"] == "Ada" and account["balance"] == 0, run.stdout
    assert listed == [account], run.stdout
    assert renewed["token_type"] == "bearer" and len(renewed["refresh_token"]) == 64, run.stdout
    assert revoked == {"status": "revoked"}, run.stdout
