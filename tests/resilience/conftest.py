"""What several resilience suites share."""

import pathlib
import shutil
import subprocess
import tempfile

import pytest

from bank_testkit.postgres import PrivatePostgres


@pytest.fixture()
def database():
    """A Postgres server of the test's own, which it may stop and start."""
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="bank-pg-"))
    postgres = PrivatePostgres(directory)
    yield postgres
    try:
        postgres.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(directory, ignore_errors=True)
