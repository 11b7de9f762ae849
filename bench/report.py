"""RESULTS.md's tables and charts, written from the measurements of one bench.py run."""

import os
import pathlib
import platform
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYTHON_ORIGINAL = {"read": 250, "write": 206}  # requests/s on this kind of machine (issue 5)


def sections(bench):
    """RESULTS.md's tables from one run, and how many of its targets were met."""
    lines = ["| Section | Route | req/s | p50 ms | p99 ms | errors | pgbench tps, same SQL | API / pgbench |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    profile = ["| Route | API | Postgres | wrk | total | pgbench run: Postgres | pgbench | total |",
               "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for section, name, result, ceiling in bench.rows:
        ratio = f"{result['rps'] / ceiling['tps']:.0%}" if ceiling else ""
        tps = f"{ceiling['tps']:,.0f}" if ceiling else ""
        lines.append(f"| {section} | `{name}` | {result['rps']:,.0f} | {result['p50']:.2f} | {result['p99']:.2f} | "
                     f"{result['errors']} | {tps} | {ratio} |")
        api = result["cpu"]
        row = f"| `{name}` ({section}) | {api['api']:.0f} | {api['postgres']:.0f} | {api['load']:.0f} | {sum(api.values()):.0f} |"
        if ceiling:
            db = ceiling["cpu"]
            row += f" {db['postgres']:.0f} | {db['load']:.0f} | {sum(db.values()):.0f} |"
        else:
            row += " | | |"
        profile.append(row)
    reads = [(r, c) for s, n, r, c in bench.rows if n in ("GET /accounts/{id}", "GET /accounts/{id}/balance")]
    writes = [(r, c) for s, n, r, c in bench.rows if s == "writes"]
    read_ratio = min(r["rps"] / c["tps"] for r, c in reads)
    write_ratio = min(r["rps"] / c["tps"] for r, c in writes)
    slowest_read = min(r["rps"] for r, _ in reads)
    slowest_write = min(r["rps"] for r, _ in writes)
    rss_mb = bench.peak_rss_kb / 1024
    targets = [
        ("Reads >= 50% of pgbench's read ceiling", f"lowest {read_ratio:.0%}", read_ratio >= 0.5),
        ("Writes >= 80% of pgbench's write ceiling", f"lowest {write_ratio:.0%}", write_ratio >= 0.8),
        ("Reads >= 40x the Python original (10,000 req/s)", f"slowest {slowest_read:,.0f} req/s = "
         f"{slowest_read / PYTHON_ORIGINAL['read']:.0f}x", slowest_read >= 40 * PYTHON_ORIGINAL["read"]),
        ("Writes >= 10x the Python original (2,060 req/s)", f"slowest {slowest_write:,.0f} req/s = "
         f"{slowest_write / PYTHON_ORIGINAL['write']:.0f}x", slowest_write >= 10 * PYTHON_ORIGINAL["write"]),
        *((f"Metrics middleware overhead <= 3%, `{route}`", f"{cost:.1%}", cost <= 0.03)
          for route, cost in bench.overhead.items()),
        ("Reads flat (within 20%) from 1,000 to 1M+ ledger rows",
         f"account {bench.growth['account']:.0%}, balance {bench.growth['balance']:.0%} of the small-ledger rate",
         min(bench.growth.values()) >= 0.8),
        ("RSS under load <= 64 MB", f"peak {rss_mb:.1f} MB", rss_mb <= 64),
    ]
    target_lines = ["| Target | Measured | Met |", "| --- | --- | --- |"]
    target_lines += [f"| {name} | {value} | {'yes' if met else '**no**'} |" for name, value, met in targets]
    note_lines = ["| Measurement | Value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in bench.notes.items()]
    note_lines.append(f"| Peak RSS of the API (VmHWM) | {rss_mb:.1f} MB |")
    sections = {"table": "\n".join(lines), "profile": "\n".join(profile), "targets": "\n".join(target_lines),
                "notes": "\n".join(note_lines)}
    return sections, sum(met for _, _, met in targets), len(targets)


def draw_charts(bench, directory):
    """The tables as pictures: each route against pgbench running its SQL, and reads as the ledger
    grows. Drawn from the same measurements as RESULTS.md, never by hand."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    directory.mkdir(parents=True, exist_ok=True)
    compared = [(section, name, result, ceiling) for section, name, result, ceiling in bench.rows if ceiling]
    labels = [f"{name}\n({section})" for section, name, _, _ in compared]
    figure, axes = pyplot.subplots(figsize=(11, 0.55 * len(compared) + 1.5))
    positions = range(len(compared))
    axes.barh([p + 0.2 for p in positions], [c["tps"] for _, _, _, c in compared], 0.4,
              label="pgbench, the same SQL (the database's ceiling)", color="#bbbbbb")
    axes.barh([p - 0.2 for p in positions], [r["rps"] for _, _, r, _ in compared], 0.4,
              label="bank-api over HTTP", color="#2b6cb0")
    for position, (_, _, result, ceiling) in zip(positions, compared, strict=True):
        axes.text(result["rps"], position - 0.2, f" {result['rps']:,.0f} ({result['rps'] / ceiling['tps']:.0%})",
                  va="center", fontsize=8)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("requests (or pgbench transactions) per second")
    axes.set_title(f"bank-api vs pgbench, {bench.args.connections} connections, {bench.args.seconds} s per route")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "api-vs-pgbench.png", dpi=110)
    pyplot.close(figure)

    figure, axes = pyplot.subplots(figsize=(8, 4))
    for route in ("GET /accounts/{id}", "GET /accounts/{id}/balance"):
        points = [(int(section.split()[0].replace(",", "")), result["rps"])
                  for section, name, result, _ in bench.rows if name == route and section.endswith("ledger rows")]
        axes.plot([rows for rows, _ in points], [rps for _, rps in points], marker="o", label=route)
    axes.set_xscale("log")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("ledger rows (log scale)")
    axes.set_ylabel("requests per second")
    axes.set_title("Reads as the ledger grows")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "reads-vs-ledger-size.png", dpi=110)
    pyplot.close(figure)


def machine():
    def first(command):
        try:
            return subprocess.run(command, capture_output=True, text=True, shell=True).stdout.strip().splitlines()[0]
        except (IndexError, OSError):
            return "unknown"
    memory = int(re.search(r"MemTotal:\s+(\d+)", pathlib.Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
    cpu = first("lscpu | sed -n 's/^Model name: *//p'")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; {memory} GiB RAM",
        f"- OS: {platform.platform()}",
        f"- {first('rustc --version')}; {first('psql --version')}; {first('wrk -v 2>&1')}",
        f"- bank-api commit {first('git -C ' + str(ROOT) + ' rev-parse --short HEAD')}, release profile",
    ]
