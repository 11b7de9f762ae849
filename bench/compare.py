"""Did a change make bank-api slower? Two builds of the server, each on a database of its own in
one Postgres of this tool's own, loaded in turn with the benchmark's routes so drift hits both
alike; prints a table of median requests per second, and of the CPU each server process and
Postgres spent per request (read from /proc), which shared cores disturb less than throughput.

    python3 bench/compare.py --before path/to/old/bank-api --after target/release/bank-api
"""

import argparse
import functools
import pathlib
import shutil
import statistics
import sys
import tempfile

import load
import routes
from bank_testkit.http import log_in
from bank_testkit.postgres import PrivatePostgres, psql
from bank_testkit.processes import OPERATOR, Api

MEASURED = (routes.ACCOUNT, routes.BALANCE, routes.POSTING, routes.TRANSFER)


def seed(database_url):
    result = psql(database_url, "-c", f"""
        INSERT INTO accounts (first_name, last_name, address, balance, created_at)
          SELECT 'Bench', 'Account ' || g, g || ' Load Street', 1000000000, now() FROM generate_series(1, {routes.ACCOUNTS}) g;
        INSERT INTO transactions (acc_id, credit, debit, balance_after, created_at)
          SELECT id, balance, 0, balance, now() FROM accounts;
        ANALYZE;""")
    if result.returncode != 0:
        raise RuntimeError(result.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=pathlib.Path, required=True)
    parser.add_argument("--after", type=pathlib.Path, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    directory = pathlib.Path(tempfile.mkdtemp(prefix="bank-compare-"))
    postgres = PrivatePostgres(directory, max_connections=100)
    servers, failed = {}, []
    try:
        for name, binary in (("before", args.before), ("after", args.after)):
            url = f"postgres://postgres@127.0.0.1:{postgres.port}/{name}?sslmode=disable"
            assert psql(f"postgres://postgres@127.0.0.1:{postgres.port}/postgres", "-c", f"CREATE DATABASE {name}").returncode == 0
            first = Api.for_bench(binary, url, directory / f"{name}.log")  # migrates
            seed(url)
            servers[name] = first
        tokens = {name: log_in(server.url, *OPERATOR) for name, server in servers.items()}
        print("| Route | before: median req/s | after: median req/s | after / before "
              "| server CPU µs/request, before / after | Postgres CPU µs/request, before / after |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: |")
        for route in MEASURED:
            rates, costs, database = ({name: [] for name in servers} for _ in range(3))
            for _ in range(args.rounds):
                for name, server in servers.items():
                    run = functools.partial(load.wrk, server.url, "/", route.lua, args.seconds, args.connections,
                                            tokens[name])
                    spent = load.postgres_cpu_seconds(postgres.pid())
                    result, cost = load.cpu_per_request(server.pid, run)
                    spent = load.postgres_cpu_seconds(postgres.pid()) - spent
                    costs[name].append(cost)
                    database[name].append(spent / max(result["requests"], 1) * 1e6)
                    if result["errors"]:
                        failed.append(f"{name} {route.name}: {result['errors']} failed")
                    rates[name].append(result["rps"])
            before, after = (statistics.median(rates[name]) for name in ("before", "after"))
            cost = " / ".join(f"{statistics.median(costs[name]):.0f}" for name in ("before", "after"))
            spent = " / ".join(f"{statistics.median(database[name]):.0f}" for name in ("before", "after"))
            print(f"| `{route.name}` | {before:,.0f} | {after:,.0f} | {after / before:.0%} | {cost} | {spent} |",
                  flush=True)
    finally:
        for server in servers.values():
            server.stop(timeout=60)
        postgres.stop()
        shutil.rmtree(directory, ignore_errors=True)
    for failure in failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
