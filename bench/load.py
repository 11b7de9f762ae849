"""The load generators: wrk (closed loop, for the most a route can serve), oha (open loop at a
fixed rate, for the latency users feel: it measures from when each request was due, so queueing
is not hidden) and pgbench (the database's own ceiling on the same statements)."""

import json
import os
import pathlib
import re
import subprocess
import tempfile


class Failed(Exception):
    """Some requests failed: a rate of errors measures nothing."""


def wrk(url, path, script, seconds, connections, token=None):
    """Requests per second and latency percentiles of a closed loop of `connections` clients."""
    lua = script or ""
    if token:
        lua = f'wrk.headers["Authorization"] = "Bearer {token}"\n' + lua
    # Each of wrk's threads loads the script itself: it must be a file, not a pipe.
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(lua)
        file.flush()
        command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s",
                   "-s", file.name, url + path]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "errors": errors,
    }


def cpu_seconds(pid):
    """The CPU time, user and system, process `pid` has spent so far (its children's not)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(postmaster):
    """(pid, `/proc` stat fields) of each process the postmaster `postmaster` started: its
    backends and its background workers."""
    for path in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            yield int(path.parent.name), fields


def postgres_processes(postmaster):
    """The pids of the Postgres whose postmaster is `postmaster`: its own and its children's."""
    return [postmaster, *(pid for pid, _ in _children(postmaster))]


def postgres_cpu_seconds(postmaster):
    """The CPU time so far of the Postgres whose postmaster is `postmaster`: its own, its
    backends', and that of backends that have exited (in the postmaster's children's time)."""
    stat = pathlib.Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in stat[11:15])
    ticks += sum(int(value) for _, fields in _children(postmaster) for value in fields[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_per_request(pid, run):
    """Runs `run`, a load that counts its `requests`, and returns its result and the CPU process
    `pid` (the server under it) spent per request meanwhile, in µs."""
    spent = cpu_seconds(pid)
    result = run()
    return result, (cpu_seconds(pid) - spent) / max(result["requests"], 1) * 1e6


def _ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def oha(url, rate, seconds, token=None, method="GET", bodies=None):
    """Latency percentiles (ms) of requests sent at `rate` per second whatever the answers, each
    measured from when it was due (`--latency-correction`), and the rate achieved. `url` is a
    regular expression each request's URL is drawn from; each request's JSON body, if any, is one
    of `bodies` drawn at random."""
    command = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-q", str(rate),
               "--latency-correction", "-c", "64", "-m", method, "--rand-regex-url"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as lines:
        if bodies:
            lines.write("\n".join(bodies) + "\n")
            lines.flush()
            command += ["-H", "Content-Type: application/json", "-Z", lines.name]
        output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    report = json.loads(output)
    percentiles = report["latencyPercentiles"]
    statuses = report.get("statusCodeDistribution", {})
    failed = sum(count for status, count in statuses.items() if not status.startswith("2"))
    # Requests still in flight when the time is up are cut off by oha itself, not failed.
    failed += sum(count for error, count in report.get("errorDistribution", {}).items()
                  if error != "aborted due to deadline")
    return {
        "rate": rate,
        "achieved": report["summary"]["requestsPerSec"],
        "p50": percentiles["p50"] * 1000,
        "p99": percentiles["p99"] * 1000,
        "p99.9": percentiles["p99.9"] * 1000,
        "errors": failed,
    }


def pgbench(script, seconds, connections, database_url):
    """Transactions per second of `connections` pgbench clients running `script`, prepared."""
    return float(re.search(r"tps = ([\d.]+)", _pgbench(script, seconds, connections, database_url)).group(1))


def pgbench_at(script, rate, seconds, connections, database_url):
    """Latency percentiles (ms) of pgbench running `script` at `rate` transactions per second
    whatever the answers (`--rate`), each from when it was due, as oha measures the API's: its
    per-transaction log counts a transaction's time from its scheduled start."""
    with tempfile.TemporaryDirectory() as logs:
        output = _pgbench(script, seconds, connections, database_url,
                          "--rate", str(rate), "--log", "--log-prefix", f"{logs}/transactions")
        # Each line: client, transaction, time (µs), script, epoch, µs, schedule lag.
        times = sorted(int(line.split()[2]) for path in pathlib.Path(logs).iterdir()
                       for line in path.read_text().splitlines())
    def percentile(share):
        return times[min(len(times) - 1, int(share * len(times)))] / 1000
    return {
        "rate": rate,
        "achieved": float(re.search(r"tps = ([\d.]+)", output).group(1)),
        "p50": percentile(0.5),
        "p99": percentile(0.99),
        "p99.9": percentile(0.999),
    }


def _pgbench(script, seconds, connections, database_url, *options):
    command = ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "2", "-T", str(seconds),
               *options, "-f", "/dev/stdin", database_url]
    result = subprocess.run(command, input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise Failed(f"pgbench: {result.stderr.strip()[-2000:]}\n{script}")
    return result.stdout
