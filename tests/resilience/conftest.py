"""What several resilience suites share."""

import contextlib
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from bank_testkit.postgres import PrivatePostgres


@contextlib.contextmanager
def private_postgres(**options):
    """A Postgres server of the caller's own (`PrivatePostgres`), removed afterwards."""
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="bank-pg-"))
    postgres = PrivatePostgres(directory, **options)
    try:
        yield postgres
    finally:
        try:
            postgres.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def database():
    """A Postgres server of the test's own, which it may stop and start."""
    with private_postgres() as postgres:
        yield postgres


@pytest.fixture()
def tls_database():
    """A Postgres server of the test's own that offers TLS, under a certificate its `authority` signed."""
    with private_postgres(tls=True) as postgres:
        yield postgres
