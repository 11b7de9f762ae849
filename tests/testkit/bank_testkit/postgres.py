"""Postgres for the suites: psql, a fresh database per test on TEST_DATABASE_URL's server, and
a private server of a test's own."""

import glob
import os
import subprocess
import uuid

from bank_testkit.processes import free_port


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


def as_postgres_user(command):
    """initdb and pg_ctl refuse to run as root: use the postgres account when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A Postgres server of this process's own (its own data directory and port), so the machine's
    shared server is never touched; `settings` are `-c` options it starts with. With `tls`, it
    also offers TLS, under a certificate for 127.0.0.1 that `authority` (a CA certificate of its
    own) signed; clients choose by `sslmode`."""

    def __init__(self, directory, tls=False, **settings):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        assert bins, "PostgreSQL server binaries are not installed"
        self.bin = bins[-1]
        self.data = directory / "pgdata"
        self.data.mkdir()
        self.authority = None
        if tls:
            self.authority, served = certificates(directory)
            settings.update(served)
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


def certificate_authority(directory):
    """A CA of its own in `directory`: its key and its certificate."""
    key, certificate = directory / "ca.key", directory / "ca.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bank test CA",
             "-keyout", key, "-out", certificate)
    return key, certificate


def certificates(directory):
    """A CA's certificate and, signed by it, a key and a certificate for 127.0.0.1 (its address,
    which `sslmode=verify-full` checks), all in `directory`; the CA's certificate and the settings
    that serve the others."""
    authority_key, authority = certificate_authority(directory)
    key, asked, certificate, names = (directory / name for name in ("server.key", "server.csr", "server.crt", "san"))
    names.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", asked)
    _openssl("x509", "-req", "-in", asked, "-CA", authority, "-CAkey", authority_key, "-CAcreateserial", "-days", "2",
             "-extfile", names, "-out", certificate)
    key.chmod(0o600)  # Postgres refuses a key that others can read
    return authority, {"ssl": "on", "ssl_cert_file": f"'{certificate}'", "ssl_key_file": f"'{key}'"}


def _openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
