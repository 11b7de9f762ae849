"""Measures bank-api against Postgres itself and against the Python original, in one run, and
writes bench/RESULTS.md (and, for the full run, the README's performance summary).

Everything runs on a Postgres of the benchmark's own (its own data directory, port and log). Each
main route is loaded with wrk at a fixed concurrency; right before, a short burst of the same
requests with Postgres's statement log on gives the statements this build sends, which pgbench
then runs (statements.py), so every route gets a ratio to the database's ceiling that cannot
drift from the code. The Python original's reference (python_original/) runs on a database of
its own in the same Postgres. Latency is measured open loop with oha, at fixed shares of each
route's most. CPU is read per process group from /proc around every run. Run through
bench/run.sh, which installs the tools and builds the release binary."""

import argparse
import concurrent.futures
import datetime
import json
import pathlib
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import profiles

import load
import original
import report
import routes
import statements
from bank_testkit.http import log_in, request
from bank_testkit.otlp import Receiver
from bank_testkit.postgres import PrivatePostgres, psql
from bank_testkit.processes import OPERATOR, ROOT, Api
from bank_testkit.pyroscope import PushSink

GROWTH = 1_000_000  # ledger rows added before the reads run again
LONG_HISTORY = GROWTH // 2  # of which one account holds every other row
CAPTURED = 15  # requests whose statements are logged, per route
SHARES = (0.25, 0.5, 0.75)  # of a route's closed-loop rate, for the open-loop latency runs
PROFILED = (routes.ACCOUNT, routes.POSTING, routes.TRANSFER, routes.BATCH)  # routes whose CPU profile is taken
WRITES = (routes.POSTING, routes.TRANSFER, routes.BATCH)  # routes whose Postgres CPU profile is taken


def slug(route):
    """`route`'s name as a file name's part."""
    return re.sub(r"[^a-z]+", "-", route.name.lower()).strip("-")


def written_since(path, offset):
    """The lines a log gained after it was `offset` bytes long."""
    with open(path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


class Cost:
    """A feature's cost on one route: rounds of (req/s, server CPU µs per request), on and off."""

    def __init__(self, rounds):
        self.rounds = rounds

    def rates(self, state):
        return [rate for rate, _ in self.rounds[state]]

    def rate(self, state):
        return statistics.median(self.rates(state))

    def cpu(self, state):
        return statistics.median(cpu for _, cpu in self.rounds[state])


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="bank-bench-"))
        # Connections: two API pools, pgbench's clients, the original's pool, and spare. Not under
        # `work`, which is private to root: the server runs as postgres.
        self.postgres_dir = pathlib.Path(tempfile.mkdtemp(prefix="bank-bench-postgres-"))
        # It offers TLS, as most servers do, so that what TLS costs is measured ("what features cost").
        self.postgres = PrivatePostgres(self.postgres_dir, tls=True, log_line_prefix="'%m [%p] '",
                                        max_connections=300)
        self.server = f"postgres://postgres@127.0.0.1:{self.postgres.port}"
        # Plain TCP on the loopback for everyone, as on a private network (libpq and sqlx would
        # both negotiate TLS by default, at unequal cost).
        self.db_url = f"{self.server}/bank_bench?sslmode=disable"
        self.original_url = f"{self.server}/original_bench?sslmode=disable"
        self.rows = []  # (section, route, result, ceiling or None)
        self.scripts = {}  # route -> the pgbench script run for it
        self.latency = []  # (route, open-loop result)
        self.costs = {}  # feature -> {route: (median on, median off)}
        self.profiles = {}  # route -> (flame graph file name, profiles.summary)
        self.postgres_profiles = {}  # route -> (flame graph file name, profiles.postgres)
        self.notes = {}
        self.failures = []  # failed requests: the run then measures nothing and exits 1
        self.token = None
        # What the API was doing -> its peak resident memory meanwhile (kB): the Python
        # original's, measured in the same sections, is never among them.
        self.peaks = {}
        self.resident_kb = 0
        self.processes = []
        # What the report says the run was.
        self.accounts, self.growth_rows, self.captured, self.shares = routes.ACCOUNTS, GROWTH, CAPTURED, SHARES

    # ---- processes ---------------------------------------------------------------------------

    def start_api(self, **settings):
        log = self.work / f"api-{len(self.processes)}.log"
        process = Api.for_bench(self.args.binary, self.db_url, log, **settings)
        self.processes.append(process)
        return process

    def cpu_seconds(self, server=None):
        """CPU time so far of a server under test, of this benchmark's Postgres (exited backends
        count in the postmaster's children's time) and of our finished children (wrk, pgbench,
        oha)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"server": load.cpu_seconds(server.pid) if server else 0,
                "postgres": load.postgres_cpu_seconds(self.postgres.pid()), "load": usage.ru_utime + usage.ru_stime}

    def backends(self):
        """How many processes the benchmark's postmaster has now."""
        postmaster = str(self.postgres.pid())
        count = 0
        for path in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                count += path.read_text().rsplit(")", 1)[1].split()[1] == postmaster
            except OSError:
                continue
        return count

    def wait_for_backends(self, count, seconds=10):
        """Until pgbench's backends have exited and been reaped: only then is their CPU in the
        postmaster's children's time, where `cpu_seconds` reads it."""
        deadline = time.monotonic() + seconds
        while self.backends() > count and time.monotonic() < deadline:
            time.sleep(0.05)

    def rss_kb(self, process, now=False):
        """The process's peak resident memory so far (VmHWM), or with `now` its current (VmRSS)."""
        status = pathlib.Path(f"/proc/{process.pid}/status").read_text()
        return int(re.search(rf"{'VmRSS' if now else 'VmHWM'}:\s+(\d+) kB", status).group(1))

    def note_peak(self, api, doing):
        """The API's peak resident memory since the last note, kept as what it was `doing`; the
        kernel's peak is then reset to what it holds now (clear_refs 5), so each note holds the
        peak of its own phase and the run's peak names the phase that reached it."""
        self.peaks[doing] = self.rss_kb(api)
        pathlib.Path(f"/proc/{api.pid}/clear_refs").write_text("5")

    def peak(self):
        """The API's highest peak in the run and what it was doing then."""
        doing = max(self.peaks, key=self.peaks.get)
        return self.peaks[doing], doing

    def close(self):
        """Stops every server and removes the scratch directory: the access logs of a full run
        take most of a gigabyte."""
        for process in self.processes:
            process.stop(timeout=60)
        try:
            self.postgres.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.postgres_dir, ignore_errors=True)

    # ---- measuring ---------------------------------------------------------------------------

    def wrk(self, server, route, seconds=None, token=True):
        logs = {path: path.stat().st_size for path in (server.log_path, self.postgres.log)}
        result = load.wrk(server.url, "/", route.lua, seconds or self.args.seconds, self.args.connections,
                          self.token if token else None)
        if result["errors"]:
            # The logs are deleted with the run's directory: keep what explains the failures.
            said = [line for path, offset in logs.items() for line in written_since(path, offset)
                    if re.search(r"\b(ERROR|WARN|FATAL|PANIC)\b|checkpoint complete", line)]
            self.failures.append(f"{route.name}: {result['errors']} requests failed (non-2xx or socket errors), "
                                 f"at {result['rps']:,.0f} req/s; the server's and Postgres's logs meanwhile: "
                                 + ("\n  ".join(["", *said[:5]]) if said else "nothing above INFO"))
        return result

    def capture(self, server, route, count=CAPTURED):
        """The pgbench script of what `route` sends to Postgres, from a burst of `count`
        requests, one at a time, with the statement log on only for them."""
        self.sql("ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()", database="postgres")
        time.sleep(0.2)
        offset = self.postgres.log.stat().st_size
        rng, windows = random.Random(len(self.scripts)), []
        for _ in range(count):
            path, body = route.sample(rng)
            started = time.time()
            status, answer = request(route.method, server.url + path, body, headers={"Authorization": f"Bearer {self.token}"})
            windows.append((started, time.time()))
            if not 200 <= status < 300:
                self.failures.append(f"{route.name}: a captured request failed: {status} {answer}")
            time.sleep(0.01)  # so no statement can belong to two requests
        self.sql("ALTER SYSTEM RESET log_statement", "SELECT pg_reload_conf()", database="postgres")
        with open(self.postgres.log) as log:
            log.seek(offset)
            script, sent_by = statements.script(log.read(), windows)
        self.scripts[route.name] = (script, sent_by, count)
        return script

    def measure(self, section, route, server, ceiling=True, token=True):
        print(f"  {section}: {route.name} ...", flush=True)
        script = self.capture(server, route, 3 if "skip" in route.name else CAPTURED) if ceiling else None
        before = self.cpu_seconds(server)
        result = self.wrk(server, route, token=token)
        result["cpu"] = self.per_request(before, self.cpu_seconds(server), result["rps"] * self.args.seconds)
        if isinstance(server, Api):
            self.note_peak(server, f"{route.name} ({section})")
        measured_ceiling = None
        if script:
            backends = self.backends()
            before = self.cpu_seconds()
            tps = load.pgbench(script, self.args.seconds, self.args.connections, self.db_url)
            self.wait_for_backends(backends)
            measured_ceiling = {"tps": tps, "cpu": self.per_request(before, self.cpu_seconds(), tps * self.args.seconds)}
        self.rows.append((section, route.name, result, measured_ceiling))
        return result

    @staticmethod
    def per_request(before, after, count):
        """Microseconds of CPU per request (or per pgbench transaction), by process group."""
        return {key: (after[key] - before[key]) / count * 1e6 for key in before}

    def open_loop(self, server, route, most):
        """Latency at fixed shares of `most` requests per second, sent whatever the answers, and
        pgbench's at the same rate running the statements the route sends (captured before its
        closed-loop run)."""
        # oha draws each URL from a regular expression (its dots are literal) and each body from
        # a list: random accounts, as wrk's script does.
        rng = random.Random(0)
        path, body = route.sample(rng)
        ids = f"[1-9][0-9]{{0,{len(str(routes.ACCOUNTS)) - 2}}}"
        url = server.url + re.sub(r"/accounts/\d+", f"/accounts/{ids}", path)
        bodies = [json.dumps(route.sample(rng)[1]) for _ in range(routes.ACCOUNTS)] if body else None
        script = self.scripts[route.name][0]
        for share in SHARES:
            rate = max(1, int(most * share))
            print(f"  open loop: {route.name} at {share:.0%} ({rate:,}/s) ...", flush=True)
            before = self.cpu_seconds(server)
            started = time.monotonic()
            result = load.oha(url, rate, self.args.seconds, self.token, route.method, bodies)
            elapsed = time.monotonic() - started
            # Cores busy meanwhile, by process group: how much of the machine that rate took.
            result["cores"] = {key: (spent - before[key]) / elapsed for key, spent in self.cpu_seconds(server).items()}
            result["share"] = share
            result["pgbench"] = load.pgbench_at(script, rate, self.args.seconds, self.args.connections, self.db_url)
            self.note_peak(server, f"{route.name} at {share:.0%} of the most, open loop")
            if result["errors"]:
                self.failures.append(f"{route.name} at {rate}/s: {result['errors']} requests failed")
            self.latency.append((route.name, result))

    def cost_of(self, feature, switched_off, measured, on=None):
        """Two servers, one with `feature` switched off by the `switched_off` settings (or on only
        with the `on` settings), loaded in turn so drift hits both alike; medians kept per route,
        of the rate and of the server's own CPU per request (which shared cores disturb less)."""
        servers = {"on": self.start_api(**(on or {})), "off": self.start_api(**switched_off)}
        self.costs[feature] = {}
        for route in measured:
            rounds = {"on": [], "off": []}
            for _ in range(self.args.rounds):
                for state, api in servers.items():
                    rounds[state].append(self.loaded(api, route))
            self.costs[feature][route.name] = Cost(rounds)
        for api in servers.values():
            api.stop(timeout=60)

    def loaded(self, server, route):
        """One round of a cost's load: the rate, and the server's CPU per request meanwhile."""
        result, cost = load.cpu_per_request(server.pid, lambda: self.wrk(server, route, seconds=self.args.seconds // 2 or 1))
        return result["rps"], cost

    def profile(self, server, route):
        """The server's CPU profile and flame graph under `route`'s closed-loop load, each taken
        by the server itself (`GET /debug/pprof/profile`) while wrk runs a little longer."""
        seconds = max(1, self.args.seconds // 2)
        taken = {}
        for kind in ("pprof", "svg"):
            url = f"{server.url}/debug/pprof/profile?seconds={seconds}&format={kind}"
            asked = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                answer = pool.submit(lambda asked=asked: urllib.request.urlopen(asked, timeout=seconds + 60).read())
                self.wrk(server, route, seconds=seconds + 1)
                taken[kind] = answer.result()
        self.args.charts.mkdir(parents=True, exist_ok=True)
        (self.args.charts / f"flame-{slug(route)}.svg").write_bytes(taken["svg"])
        self.profiles[route.name] = (f"flame-{slug(route)}.svg", profiles.summary(taken["pprof"]))

    def postgres_profile(self, server, route):
        """Postgres's CPU under `route`'s closed-loop load: every process of this benchmark's
        Postgres sampled by perf with its call stacks (unwound from the stack copied at each sample
        and Postgres's unwind tables: Debian builds it without frame pointers), folded and drawn by
        inferno."""
        seconds = max(1, self.args.seconds // 2)
        samples = self.work / "postgres.perf"
        processes = ",".join(map(str, load.postgres_processes(self.postgres.pid())))
        # cpu-clock: its samples weigh nanoseconds on every machine (the default, cycles, needs
        # hardware counters, which virtual machines often lack, and weighs cycles).
        perf = subprocess.Popen(["perf", "record", "--quiet", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,32768",
                                 "-p", processes, "-o", str(samples), "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.wrk(server, route, seconds=seconds + 1)
        if perf.wait(timeout=60) != 0:
            raise RuntimeError(f"perf record: {perf.stderr.read()}")
        script = subprocess.run(["perf", "script", "-i", str(samples)], capture_output=True, check=True).stdout
        folded = subprocess.run(["inferno-collapse-perf"], input=script, capture_output=True, check=True).stdout
        svg = subprocess.run(["inferno-flamegraph", "--minwidth", "0.5", "--title", f"Postgres under {route.name}"], input=folded,
                             capture_output=True, check=True).stdout
        samples.unlink()
        name = f"flame-postgres-{slug(route)}.svg"
        (self.args.charts / name).write_bytes(svg)
        self.postgres_profiles[route.name] = (name, profiles.postgres(folded.decode()))

    def profiling_cost(self, server, route):
        """What a profile being taken costs: the same server loaded in turn with and without one
        running (sampling starts when it is asked for and stops when it is answered)."""
        seconds = self.args.seconds // 2 or 1
        url = f"{server.url}/debug/pprof/profile?seconds={seconds + 1}"
        asked = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        rounds = {"on": [], "off": []}
        for _ in range(self.args.rounds):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                answer = pool.submit(lambda: urllib.request.urlopen(asked, timeout=seconds + 60).read())
                time.sleep(0.2)  # sampling has started
                rounds["on"].append(self.loaded(server, route))
                answer.result()
            rounds["off"].append(self.loaded(server, route))
        self.costs["a CPU profile being taken (99 Hz)"] = {route.name: Cost(rounds)}

    # ---- data --------------------------------------------------------------------------------

    def sql(self, *statements_, database="bank_bench"):
        result = psql(f"{self.server}/{database}?sslmode=disable", *[arg for s in statements_ for arg in ("-c", s)])
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout.strip()

    def seed_accounts(self):
        """Accounts funded by one opening credit each, so ledger and balances agree."""
        self.sql(f"""INSERT INTO accounts (first_name, last_name, address, balance, created_at)
                       SELECT 'Bench', 'Account ' || g, g || ' Load Street', 1000000000, now()
                       FROM generate_series(1, {routes.ACCOUNTS}) g""",
                 "INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at) "
                 "SELECT id, balance, 0, balance, now() FROM accounts", "ANALYZE")

    def seed_history(self):
        """A million ledger rows as busy accounts make them, interleaved: every other one belongs
        to one long-history account, the rest are spread over all the others. Balances and each
        row's balance_after stay consistent with the ledger."""
        account = int(self.sql("INSERT INTO accounts (first_name, last_name, address, balance, created_at) "
                               "VALUES ('Long', 'History', '1 Ledger Lane', 0, now()) RETURNING id").split()[0])
        first_new_row = int(self.sql("SELECT coalesce(max(id), 0) + 1 FROM transactions").split()[0])
        self.sql(f"""INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at)
              SELECT s.acc_id, 1, 0, a.balance + s.n, now()
              FROM (SELECT g, CASE WHEN g % 2 = 0 THEN {account} ELSE 1 + (g / 2) % {routes.ACCOUNTS} END AS acc_id,
                              CASE WHEN g % 2 = 0 THEN g / 2 ELSE (g / 2) / {routes.ACCOUNTS} + 1 END AS n
                    FROM generate_series(1, {GROWTH}) g) s
              JOIN accounts a ON a.id = s.acc_id ORDER BY s.g""",
                 f"""UPDATE accounts a SET balance = a.balance + added.n
              FROM (SELECT acc_id, count(*) AS n FROM transactions WHERE id >= {first_new_row} GROUP BY acc_id) added
              WHERE a.id = added.acc_id""", "VACUUM ANALYZE")
        return account

    def ledger_rows(self):
        return int(self.sql("SELECT count(*) FROM transactions").split()[0])

    # ---- the run -----------------------------------------------------------------------------

    def run(self):
        self.sql("CREATE DATABASE bank_bench", "CREATE DATABASE original_bench", database="postgres")
        first = self.start_api()  # runs the migrations on an empty database
        self.notes["start to ready, empty database (migrations run)"] = f"{first.ready_after * 1000:.0f} ms"
        first.stop(timeout=60)
        api = self.start_api()
        self.notes["start to ready, migrated database"] = f"{api.ready_after * 1000:.0f} ms"
        self.note_peak(api, report.STARTING)
        self.token = log_in(api.url, *OPERATOR)
        self.note_peak(api, report.LOGIN)
        self.seed_accounts()

        print("reads, writes", flush=True)
        small = f"{self.ledger_rows():,} ledger rows"
        self.reads = {route.name: self.measure(small, route, api) for route in (routes.ACCOUNT, routes.BALANCE)}
        self.measure("operations", routes.METRICS, api, ceiling=False)
        self.writes = {route.name: self.measure("writes", route, api) for route in (routes.POSTING, routes.TRANSFER)}
        self.batch = self.measure("writes", routes.BATCH, api)
        self.hot = {route.name: self.measure("hot accounts", route, api)
                    for route in (routes.HOT_POSTING, routes.HOT_TRANSFER)}

        print("latency, open loop", flush=True)
        self.open_loop(api, routes.ACCOUNT, self.reads[routes.ACCOUNT.name]["rps"])
        self.open_loop(api, routes.POSTING, self.writes[routes.POSTING.name]["rps"])

        print("the Python original", flush=True)
        original.install()
        python = original.start(self.original_url, self.work / "original.log")
        self.processes.append(python)
        original.seed(self.original_url, routes.ACCOUNTS)
        self.original = {
            "read": self.measure("the Python original", routes.ACCOUNT, python, ceiling=False, token=False),
            "write": self.measure("the Python original", routes.ORIGINAL_POSTING, python, ceiling=False, token=False),
        }
        python.stop(timeout=60)

        print("growth", flush=True)
        long_account = self.seed_history()
        big = f"{self.ledger_rows():,} ledger rows"
        grown = {route.name: self.measure(big, route, api) for route in (routes.ACCOUNT, routes.BALANCE)}
        self.growth = {name: grown[name]["rps"] / self.reads[name]["rps"] for name in grown}
        self.measure(big, routes.page("GET /accounts/{id}/transactions (first 100)", long_account, "limit=100"), api)
        self.measure(big, routes.page(f"GET /accounts/{{id}}/transactions (skip {LONG_HISTORY - 100:,})", long_account,
                                      f"skip={LONG_HISTORY - 100}&limit=100"), api)
        # The same page reached by cursor: the id of the row just before it.
        after = self.sql(f"SELECT id FROM transactions WHERE acc_id = {long_account} ORDER BY id "
                         f"OFFSET {LONG_HISTORY - 101} LIMIT 1")
        self.measure(big, routes.page(f"GET /accounts/{{id}}/transactions (after_id, {LONG_HISTORY - 100:,} deep)",
                                      long_account, f"after_id={after}&limit=100"), api)
        self.resident_kb = self.rss_kb(api, now=True)
        api.stop(timeout=60)

        print("where the server's CPU goes: its own CPU profiles", flush=True)
        profiled = self.start_api(PROFILING="true")
        for route in PROFILED:
            self.profile(profiled, route)
        print("where Postgres's CPU goes: perf's samples of its processes", flush=True)
        for route in WRITES:
            self.postgres_profile(profiled, route)
        self.profiling_cost(profiled, routes.ACCOUNT)
        profiled.stop(timeout=60)

        print("what features cost: write grouping, TLS to Postgres, the request metrics, the access log, access "
              "control, the request limit, fault flags, pushed profiles, tracing", flush=True)
        self.cost_of("write grouping", {"GROUP_WRITES": "false"}, [routes.POSTING, routes.TRANSFER])
        # Encrypted to the database, as across any network but a private one; a group's statement
        # spans many TLS records, where a driver that leaves Nagle's algorithm on stalls.
        self.cost_of("TLS to Postgres", {}, [routes.ACCOUNT, routes.POSTING, routes.BATCH],
                     on={"DATABASE_URL": self.db_url.replace("sslmode=disable", "sslmode=require")})
        self.cost_of("the request metrics", {"HTTP_METRICS": "false"}, [routes.ACCOUNT, routes.Route("GET /ping", "")])
        # The default filter but for `access=info`: a 5xx's cause is still logged, at error.
        self.cost_of("the access log", {"RUST_LOG": "warn,actix_web_prom=error,bank_api=info,migration=info"},
                     [routes.ACCOUNT])
        self.cost_of("access control", {"AUTH_REQUIRED": "false"}, [routes.ACCOUNT, routes.POSTING])
        # Counted for every request (the load never reaches it), against not counted at all.
        self.cost_of("the request limit", {"RATE_LIMIT_PER_SECOND": "0"}, [routes.ACCOUNT, routes.POSTING])
        # The shipped flags file, every flag off, evaluated every second, against no file at all.
        self.cost_of("fault flags, all off", {}, [routes.ACCOUNT, routes.POSTING],
                     on={"FAULT_FLAGS": str(ROOT / "flagd" / "faults.flagd.json")})
        # Sampled all the time and pushed every 10 s, as compose runs it, against no profiler.
        sink = PushSink()
        self.cost_of("CPU profiles pushed to Pyroscope (99 Hz)", {}, [routes.ACCOUNT, routes.POSTING],
                     on={"PYROSCOPE_SERVER_ADDRESS": sink.url})
        self.notes["profiles pushed to the Pyroscope push endpoint"] = f"{sink.pushes:,} ({sink.bytes / 1024:,.0f} KiB)"
        sink.stop()
        receiver = Receiver()
        traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        measured = [routes.ACCOUNT, routes.POSTING]
        self.cost_of("tracing at 100%", {}, measured, on={**traced, "OTEL_TRACES_SAMPLER": "always_on"})
        self.cost_of("tracing at 10%", {}, measured,
                     on={**traced, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"})
        self.cost_of("tracing, unsampled", {}, [routes.ACCOUNT], on={**traced, "OTEL_TRACES_SAMPLER": "always_off"})
        self.notes["spans received by the OTLP receiver"] = f"{len(receiver.snapshot()):,}"
        receiver.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", type=pathlib.Path, default=ROOT / "target" / "release" / "bank-api")
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
    results = report.Report(bench)
    report.draw_charts(bench, args.charts)
    args.output.write_text(results.markdown(datetime.date.today().isoformat()))
    # The README's summary is this run's, whenever the run writes the results of record.
    if args.output.resolve() == (ROOT / "bench" / "RESULTS.md").resolve():
        report.write_readme_summary(ROOT / "README.md", results.summary())
    print(results.console())
    # Timings are reported, never judged (shared machines are too noisy); failed requests are
    # judged, because a rate of errors measures nothing.
    for failure in bench.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
