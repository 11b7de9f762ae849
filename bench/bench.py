"""Measures bank-api on Postgres against Postgres itself, in one run, and writes bench/RESULTS.md.

Each route is loaded with wrk at a fixed concurrency, then pgbench runs the SQL that route sends
(the same statements, prepared, at the same concurrency), so every route gets a ratio to the
database's ceiling measured minutes apart on the same machine. Run through bench/run.sh, which
installs the tools and builds the release binary."""

import argparse
import datetime
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "observability"))
import report  # noqa: E402

from otlp_receiver import Receiver  # noqa: E402
from support import AUTH_ENV, OPERATOR, free_port, log_in, psql, wait_until_ok  # noqa: E402

ACCOUNTS = 1000
GROWTH = 1_000_000  # ledger rows added before the reads run again
LONG_HISTORY = GROWTH // 2  # of which one account holds every other row

ACCOUNT_COLUMNS = '"id", "first_name", "last_name", "address", "balance", "created_at"'
LEDGER_COLUMNS = '"id", "acc_id", "credit", "debit", "balance_after", "created_at"'
LEDGER_ROW = "id, acc_id, credit, debit, balance_after, created_at"
POSTING = ("WITH changed AS (UPDATE accounts SET balance = balance + 1 WHERE id = :id "
           "AND (balance + 1 >= 0 OR 1 >= 0) AND balance + 1 <= 1000000000000000 RETURNING id, balance), "
           "posted AS (INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at) "
           f"SELECT id, 1, 0, balance, now() FROM changed RETURNING {LEDGER_ROW}), "
           "remembered AS (INSERT INTO ledger_writes (write_id, first_transaction_id, created_at) "
           f"SELECT gen_random_uuid(), id, now() FROM posted) SELECT {LEDGER_ROW} FROM posted;")
DEBIT_BALANCE = (f'UPDATE "accounts" SET "balance" = "balance" + -1 WHERE "accounts"."id" = :a '
                 f'AND "balance" + -1 <= 1000000000000000 AND "balance" + -1 >= 0 RETURNING {ACCOUNT_COLUMNS};')
CREDIT_BALANCE = (f'UPDATE "accounts" SET "balance" = "balance" + 1 WHERE "accounts"."id" = :b '
                  f'AND "balance" + 1 <= 1000000000000000 RETURNING {ACCOUNT_COLUMNS};')
RECORD = (f'INSERT INTO "transactions" ("acc_id", "credit", "debit", "balance_after", "created_at") '
          f'VALUES ({{id}}, {{credit}}, {{debit}}, 0, now()) RETURNING {LEDGER_COLUMNS};')
REMEMBER = ('INSERT INTO "ledger_writes" ("write_id", "first_transaction_id", "second_transaction_id", "created_at") '
            "VALUES (gen_random_uuid(), currval('transactions_id_seq') - 1, currval('transactions_id_seq'), now());")

# An authenticated request first reads its user's row (the operator's, id 1, in the benchmark).
USER = ('SELECT "users"."id", "users"."username", "users"."password_hash", "users"."role", "users"."created_at" '
        'FROM "users" WHERE "users"."id" = 1 LIMIT 1;\n')

# What each route sends to Postgres, as pgbench scripts (statements copied from Postgres's log).
SQL = {
    "account": f'\\set id random(1, {ACCOUNTS})\n'
               + USER + f'SELECT {ACCOUNT_COLUMNS} FROM "accounts" WHERE "accounts"."id" = :id LIMIT 1;\n',
    "balance": f'\\set id random(1, {ACCOUNTS})\n'
               + USER + 'SELECT "accounts"."balance" FROM "accounts" WHERE "accounts"."id" = :id LIMIT 1;\n',
    "page": USER + f'SELECT {LEDGER_COLUMNS} FROM "transactions" WHERE "transactions"."acc_id" >= :long AND "transactions"."acc_id" <= :long '
            f'ORDER BY "transactions"."acc_id" ASC, "transactions"."id" ASC LIMIT 101 OFFSET 0;\n',
    "deep page": USER + f'SELECT {LEDGER_COLUMNS} FROM "transactions" WHERE "transactions"."acc_id" >= :long AND "transactions"."acc_id" <= :long '
                 f'ORDER BY "transactions"."acc_id" ASC, "transactions"."id" ASC LIMIT 101 OFFSET {LONG_HISTORY - 100};\n',
    "deep page by after_id": USER + f'SELECT {LEDGER_COLUMNS} FROM "transactions" '
                             'WHERE "transactions"."acc_id" >= :long AND "transactions"."acc_id" <= :long '
                             f'AND "transactions"."id" > :after ORDER BY "transactions"."acc_id" ASC, "transactions"."id" ASC LIMIT 101 OFFSET 0;\n',
    "posting": f'\\set id random(1, {ACCOUNTS})\n' + USER + f'{POSTING}\n',
    "transfer": f'\\set a random(1, {ACCOUNTS // 2})\n\\set b random({ACCOUNTS // 2 + 1}, {ACCOUNTS})\n' + USER + 'BEGIN;\n'
                + DEBIT_BALANCE + "\n" + CREDIT_BALANCE + "\n"
                + RECORD.format(id=":a", credit=0, debit=1) + "\n" + RECORD.format(id=":b", credit=1, debit=0)
                + "\n" + REMEMBER + "\nCOMMIT;\n",
}

# wrk scripts: random accounts, like the pgbench scripts.
LUA = {
    "account": f'request = function() return wrk.format("GET", "/accounts/" .. math.random(1, {ACCOUNTS})) end',
    "balance": f'request = function() return wrk.format("GET", "/accounts/" .. math.random(1, {ACCOUNTS}) .. "/balance") end',
    "posting": 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
               f'request = function() return wrk.format(nil, "/transactions", nil, '
               f'\'{{"acc_id": \' .. math.random(1, {ACCOUNTS}) .. \', "credit": 1}}\') end',
    "transfer": 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'request = function() return wrk.format(nil, "/transfers", nil, '
                f'\'{{"from_acc_id": \' .. math.random(1, {ACCOUNTS // 2}) .. \', "to_acc_id": \' '
                f'.. math.random({ACCOUNTS // 2 + 1}, {ACCOUNTS}) .. \', "amount": 1}}\') end',
}


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="bank-bench-"))
        self.server_url = args.postgres.rstrip("/")
        # The API and pgbench reach Postgres the same way: plain TCP on the loopback, as on a
        # private network (libpq and sqlx would both negotiate TLS by default, at unequal cost).
        self.db_url = f"{self.server_url}/bank_bench?sslmode=disable"
        self.rows = []  # (section, name, req/s, p50 ms, p99 ms, pgbench tps, ratio, errors)
        self.notes = {}
        self.failures = []  # routes where requests failed: the run is then worthless and exits 1
        self.token = None  # the operator's, once the first server is up
        self.peak_rss_kb = 0
        self.processes = []

    # ---- processes ---------------------------------------------------------------------------

    def start_api(self, **settings):
        port = free_port()
        env = dict(os.environ, DATABASE_URL=self.db_url, PORT=str(port), HOST="127.0.0.1", TOKEN_TTL_SECS="86400",
                   **AUTH_ENV)
        env.pop("RUST_LOG", None)  # the default configuration, access log included
        env.update({key: str(value) for key, value in settings.items()})
        log = open(self.work / f"api-{port}.log", "w")
        started = time.monotonic()
        process = subprocess.Popen([str(self.args.binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        # Polled every 2 ms: start-to-ready is one of the measurements.
        wait_until_ok(f"http://127.0.0.1:{port}/ready", process, interval=0.002)
        process.url, process.ready_after = f"http://127.0.0.1:{port}", time.monotonic() - started
        return process

    @staticmethod
    def cpu_seconds(api=None):
        """CPU time used so far by the API, by Postgres (exited backends are counted in the
        postmaster's children's time) and by our children (wrk, pgbench)."""
        def ticks(stat, children):
            fields = stat.rsplit(")", 1)[1].split()
            return sum(int(value) for value in fields[11:15 if children else 13])
        postgres = 0
        for path in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                stat = path.read_text()
            except OSError:
                continue
            if "(postgres)" in stat:
                postgres += ticks(stat, children=True)
        tick = os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        api_ticks = ticks(pathlib.Path(f"/proc/{api.pid}/stat").read_text(), children=False) if api else 0
        return {"api": api_ticks / tick, "postgres": postgres / tick, "load": usage.ru_utime + usage.ru_stime}

    def rss_kb(self, process):
        status = pathlib.Path(f"/proc/{process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))

    @staticmethod
    def stop(process):
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)

    def close(self):
        """Stops every server and removes the scratch directory: the access logs of a full run
        take most of a gigabyte."""
        for process in self.processes:
            self.stop(process)
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- load --------------------------------------------------------------------------------

    def wrk(self, url, path="/", script=None, seconds=None):
        command = ["wrk", "-t", "2", "-c", str(self.args.connections), "-d", f"{seconds or self.args.seconds}s",
                   "--latency", "--timeout", "10s"]
        # Every request carries the operator's token, as a real client's would.
        lua = self.work / "script.lua"
        lua.write_text(f'wrk.headers["Authorization"] = "Bearer {self.token}"\n' + (script or ""))
        command += ["-s", str(lua)]
        output = subprocess.run(command + [url + path], capture_output=True, text=True, check=True).stdout
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
        errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
        if errors:
            self.failures.append(f"{path}: {errors} requests failed (non-2xx or socket errors)")
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": self.ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
            "p99": self.ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
            "errors": errors,
        }

    @staticmethod
    def ms(text):
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]

    def pgbench(self, name, variables):
        script = self.work / f"{name.replace(' ', '_')}.sql"
        script.write_text(SQL[name])
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(self.args.connections), "-j", "2",
                   "-T", str(self.args.seconds), "-f", str(script)]
        for variable, value in variables.items():
            command += ["-D", f"{variable}={value}"]
        output = subprocess.run(command + [self.db_url], capture_output=True, text=True, check=True).stdout
        return float(re.search(r"tps = ([\d.]+)", output).group(1))

    def measure(self, section, name, api, path=None, script=None, sql=None, variables=None):
        print(f"  {section}: {name} ...", flush=True)
        before = self.cpu_seconds(api)
        result = self.wrk(api.url, path or "/", script)
        result["cpu"] = self.per_request(before, self.cpu_seconds(api), result["rps"] * self.args.seconds)
        self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb(api))
        ceiling = None
        if sql:
            before = self.cpu_seconds()
            ceiling = {"tps": self.pgbench(sql, variables or {})}
            ceiling["cpu"] = self.per_request(before, self.cpu_seconds(), ceiling["tps"] * self.args.seconds)
        self.rows.append((section, name, result, ceiling))
        return result, ceiling

    @staticmethod
    def per_request(before, after, count):
        """Microseconds of CPU per request (or per pgbench transaction), by process group."""
        return {key: (after[key] - before[key]) / count * 1e6 for key in before}

    # ---- data --------------------------------------------------------------------------------

    def sql(self, statement, url=None):
        result = psql(url or self.db_url, "-c", statement)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout.strip()

    def fresh_database(self):
        self.sql("DROP DATABASE IF EXISTS bank_bench WITH (FORCE)", f"{self.server_url}/postgres?sslmode=disable")
        self.sql("CREATE DATABASE bank_bench", f"{self.server_url}/postgres?sslmode=disable")

    def seed_accounts(self):
        """Accounts funded by one opening credit each, so ledger and balances agree."""
        self.sql(f"""
            INSERT INTO accounts (first_name, last_name, address, balance, created_at)
              SELECT 'Bench', 'Account ' || g, g || ' Load Street', 1000000000, now() FROM generate_series(1, {ACCOUNTS}) g;
            INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at)
              SELECT id, balance, 0, balance, now() FROM accounts;
            ANALYZE;""")

    def seed_history(self):
        """A million ledger rows as busy accounts make them, interleaved: every other one belongs
        to one long-history account, the rest are spread over all the others. Balances and each
        row's balance_after stay consistent with the ledger."""
        account = self.sql("""INSERT INTO accounts (first_name, last_name, address, balance, created_at)
                              VALUES ('Long', 'History', '1 Ledger Lane', 0, now()) RETURNING id""")
        account = int(account.split()[0])
        first_new_row = int(self.sql("SELECT coalesce(max(id), 0) + 1 FROM transactions").split()[0])
        self.sql(f"""
            INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at)
              SELECT s.acc_id, 1, 0, a.balance + s.n, now()
              FROM (SELECT g,
                           CASE WHEN g % 2 = 0 THEN {account} ELSE 1 + (g / 2) % {ACCOUNTS} END AS acc_id,
                           CASE WHEN g % 2 = 0 THEN g / 2 ELSE (g / 2) / {ACCOUNTS} + 1 END AS n
                    FROM generate_series(1, {GROWTH}) g) s
              JOIN accounts a ON a.id = s.acc_id
              ORDER BY s.g""")
        self.sql(f"""
            UPDATE accounts a SET balance = a.balance + added.n
              FROM (SELECT acc_id, count(*) AS n FROM transactions WHERE id >= {first_new_row} GROUP BY acc_id) added
              WHERE a.id = added.acc_id""")
        self.sql("VACUUM ANALYZE")
        return account

    def ledger_rows(self):
        return int(self.sql("SELECT count(*) FROM transactions").split()[0])

    # ---- the run -----------------------------------------------------------------------------

    def run(self):
        self.fresh_database()
        first = self.start_api()  # runs the migrations on an empty database
        self.notes["start to ready, empty database (migrations run)"] = f"{first.ready_after * 1000:.0f} ms"
        self.stop(first)
        api = self.start_api()
        self.notes["start to ready, migrated database"] = f"{api.ready_after * 1000:.0f} ms"
        self.token = log_in(api.url, *OPERATOR)
        self.seed_accounts()

        print("reads", flush=True)
        small = self.ledger_rows()
        account, _ = self.measure(f"{small:,} ledger rows", "GET /accounts/{id}", api, script=LUA["account"], sql="account")
        balance, _ = self.measure(f"{small:,} ledger rows", "GET /accounts/{id}/balance", api, script=LUA["balance"], sql="balance")
        self.measure("operations", "GET /metrics", api, path="/metrics")

        print("writes", flush=True)
        self.measure("writes", "POST /transactions", api, script=LUA["posting"], sql="posting")
        self.measure("writes", "POST /transfers", api, script=LUA["transfer"], sql="transfer")

        print("growth", flush=True)
        long_account = self.seed_history()
        big = self.ledger_rows()
        account_big, _ = self.measure(f"{big:,} ledger rows", "GET /accounts/{id}", api, script=LUA["account"], sql="account")
        balance_big, _ = self.measure(f"{big:,} ledger rows", "GET /accounts/{id}/balance", api, script=LUA["balance"], sql="balance")
        self.measure(f"{big:,} ledger rows", "GET /accounts/{id}/transactions (first 100)", api,
                     path=f"/accounts/{long_account}/transactions?limit=100", sql="page", variables={"long": long_account})
        self.measure(f"{big:,} ledger rows", f"GET /accounts/{{id}}/transactions (skip {LONG_HISTORY - 100:,})", api,
                     path=f"/accounts/{long_account}/transactions?skip={LONG_HISTORY - 100}&limit=100",
                     sql="deep page", variables={"long": long_account})
        # The same page reached by cursor: the id of the row just before it.
        after = self.sql(f"SELECT id FROM transactions WHERE acc_id = {long_account} ORDER BY id OFFSET {LONG_HISTORY - 101} LIMIT 1")
        self.measure(f"{big:,} ledger rows", f"GET /accounts/{{id}}/transactions (after_id, {LONG_HISTORY - 100:,} deep)", api,
                     path=f"/accounts/{long_account}/transactions?after_id={after}&limit=100",
                     sql="deep page by after_id", variables={"long": long_account, "after": after})
        self.growth = {"account": account_big["rps"] / account["rps"], "balance": balance_big["rps"] / balance["rps"]}
        self.stop(api)

        print("metrics middleware on and off", flush=True)
        # On the main read route and on the most trivial one, where the cost shows most.
        self.overhead = self.cost_of("the request metrics", {"HTTP_METRICS": "false"},
                                     {"GET /accounts/{id}": ("/", LUA["account"]), "GET /ping": ("/ping", None)})
        print("authentication on and off", flush=True)
        # The token check (signature, expiry, the user's row) on a read and on a write.
        self.auth_cost = self.cost_of("authentication", {"AUTH_REQUIRED": "false"},
                                      {"GET /accounts/{id}": ("/", LUA["account"]),
                                       "POST /transactions": ("/", LUA["posting"])})
        print("tracing: exported at 100% and 10%, and off", flush=True)
        # Spans go to a real OTLP/gRPC receiver in this process, as they would to Tempo.
        receiver = Receiver()
        traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        routes = {"GET /accounts/{id}": ("/", LUA["account"]), "POST /transactions": ("/", LUA["posting"])}
        self.cost_of("tracing at 100%", {}, routes, on={**traced, "OTEL_TRACES_SAMPLER": "always_on"})
        self.cost_of("tracing at 10%", {}, routes,
                     on={**traced, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"})
        self.notes["spans received by the OTLP receiver"] = f"{len(receiver.snapshot()):,}"
        receiver.stop()

    def cost_of(self, feature, switched_off, routes, on=None):
        """Two servers, one with `feature` switched off by the `switched_off` settings (or on only
        with the `on` settings), loaded in turn so drift hits both alike. Returns the share of
        throughput the feature costs, per route, and notes its cost per request."""
        servers = {"on": self.start_api(**(on or {})), "off": self.start_api(**switched_off)}
        overhead = {}
        for route, (path, script) in routes.items():
            rates = {"on": [], "off": []}
            for _ in range(self.args.rounds):
                for state, api in servers.items():
                    seconds = self.args.seconds // 2 or 1
                    rates[state].append(self.wrk(api.url, path, script, seconds=seconds)["rps"])
            on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
            for state, median in (("on", on), ("off", off)):
                rounds = ", ".join(f"{rate:,.0f}" for rate in rates[state])
                self.notes[f"`{route}`, {feature} {state}: median ({rounds})"] = f"{median:,.0f} req/s"
            overhead[route] = 1 - on / off
            self.notes[f"`{route}`: cost of {feature} per request"] = f"{(1 / on - 1 / off) * 1e6:.2f} µs ({overhead[route]:.1%})"
        for api in servers.values():
            self.stop(api)
        return overhead


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", type=pathlib.Path, default=ROOT / "target" / "release" / "bank-api")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--charts", type=pathlib.Path, default=ROOT / "bench" / "charts",
                        help="where the charts RESULTS.md shows are drawn")
    args = parser.parse_args()

    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.close()
    sections, met, total = report.sections(bench)
    report.draw_charts(bench, args.charts)
    print("\n\n".join(sections.values()))
    template = (ROOT / "bench" / "RESULTS.template.md").read_text()
    args.output.write_text(template.format(
        date=datetime.date.today().isoformat(), machine="\n".join(report.machine()), connections=args.connections,
        seconds=args.seconds, rounds=args.rounds, **sections,
    ))
    # Timings are reported, never judged (shared machines are too noisy); failed requests are
    # judged, because a rate of errors measures nothing.
    print(f"\n{met} of {total} targets met; written to {args.output}")
    for failure in bench.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
