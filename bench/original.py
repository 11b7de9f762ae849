"""The Python original's reference (bench/python_original/) as the benchmark runs it: its pinned
stack in a virtualenv of its own, one uvicorn worker, on a database of its own in the same
Postgres as bank-api, so both are measured in one run on the same machine."""

import os
import subprocess
import sys

from bank_testkit.postgres import psql
from bank_testkit.processes import ROOT, Process, free_port

SOURCE = ROOT / "bench" / "python_original"
VENV = ROOT / "target" / "bench-python-original"


def install():
    """Its pinned requirements, in a virtualenv of its own (they would clash with the suites')."""
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r",
                    str(SOURCE / "requirements.txt")], check=True)


def start(database_url, log_path):
    """The original on a free port, its tables created by itself, as it does at start-up."""
    port = free_port()
    env = dict(os.environ, DB_URI=database_url.replace("postgres://", "postgresql://", 1), HOST="127.0.0.1",
               PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    process = Process([str(VENV / "bin" / "python"), "main.py"], log_path, env=env, cwd=SOURCE,
                      ready_url=f"{url}/ping")
    process.url = url
    return process


def seed(database_url, accounts):
    """The same number of accounts as bank-api's run, each with an opening credit."""
    result = psql(database_url, "-c", f"""
        INSERT INTO accounts (first_name, last_name, address)
          SELECT 'Bench', 'Account ' || g, g || ' Load Street' FROM generate_series(1, {accounts}) g;
        INSERT INTO transactions (acc_id, credit, debit) SELECT id, 1000000000, 0 FROM accounts;
        ANALYZE;""")
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
