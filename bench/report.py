"""RESULTS.md, its charts and the README's performance summary, written from one bench.py run:
every figure in them is a measurement of that run, and the template holds none."""

import os
import pathlib
import platform
import re
import subprocess

import routes

# The API's phases whose memory peak the report names, as bench.py notes them.
STARTING = "starting, until ready"
LOGIN = "the operator's login"

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUMMARY = ("<!-- performance summary: written by bench/bench.py from bench/RESULTS.md -->",
           "<!-- end of performance summary -->")
CORES = os.cpu_count()
READS = ("GET /accounts/{id}", "GET /accounts/{id}/balance")


def table(header, rows, text_columns=1):
    """A Markdown table; the first `text_columns` columns are left-aligned, the figures right."""
    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def ratio_note(share, floor):
    """A share of a reference, said honestly: above 100% is noise, not a gain."""
    return f"{share:.0%}" + (" (above 100%: within noise, no measurable cost)" if share > floor else "")


class Report:
    def __init__(self, bench):
        self.bench = bench
        # Each route's first measurement (on the small ledger), with the pgbench run after it.
        self.rows = {}
        for section, name, result, ceiling in bench.rows:
            self.rows.setdefault(name, (section, result, ceiling))
        self.first = bench.reads
        self.writes = bench.writes
        self.original = bench.original
        self.targets = self._targets()

    # ---- the figures --------------------------------------------------------------------------

    def _access_control(self, route):
        cost = self.bench.costs["access control"][route]
        return cost.rate("on") / cost.rate("off")

    def _postgres_per_read(self):
        """Postgres's CPU per API read against per pgbench read of the same statements, worst read."""
        worst = None
        for name in READS:
            result, ceiling = self.bench.reads[name], self._ceiling(name)
            share = result["cpu"]["postgres"] / ceiling["cpu"]["postgres"]
            if worst is None or share > worst[0]:
                worst = (share, name, result["cpu"]["postgres"], ceiling["cpu"]["postgres"])
        return worst

    def _ceiling(self, name):
        return self.rows[name][2]

    def _at_half(self, route):
        """The open-loop run of `route` at half its most requests per second."""
        return next(result for name, result in self.bench.latency if name == route and result["share"] == 0.5)

    def _targets(self):
        """(target, what was measured, met, the measured floor when not met)."""
        bench, targets = self.bench, []
        for route, floor in (("GET /accounts/{id}", 0.85), ("POST /transactions", 0.90)):
            share = self._access_control(route)
            targets.append((f"Access control on keeps >= {floor:.0%} of `{route}` with it off",
                            ratio_note(share, 1.0), share >= floor, self._floor(route)))
        share, name, api, pgbench = self._postgres_per_read()
        targets.append(("Postgres CPU per API read <= 1.5x per pgbench read of the same statements",
                        f"{share:.2f}x (`{name}`: {api:.0f} µs against {pgbench:.0f} µs)", share <= 1.5,
                        "Postgres answers each query, then sqlx's ping of the connection as it goes back to its "
                        "pool (a lone `Sync`), which pgbench does not send." if share > 1.5 else None))
        for route, at_least in (("GET /accounts/{id}", 0.6), ("POST /transactions", 1.0), ("POST /transfers", 1.0)):
            _, result, ceiling = self.rows[route]
            share = result["rps"] / ceiling["tps"]
            targets.append((f"`{route}` >= {at_least:.0%} of pgbench running the statements it sends, one request "
                            "per transaction", f"{result['rps']:,.0f} against {ceiling['tps']:,.0f} = {share:.0%}",
                            share >= at_least, self._floor(route)))
        batch, posting = self.bench.batch, self.writes["POST /transactions"]
        per_second = batch["rps"] * routes.BATCH_ITEMS
        targets.append(("Postings through `POST /batches` >= 10x `POST /transactions` one at a time",
                        f"{per_second:,.0f} against {posting['rps']:,.0f} postings/s = {per_second / posting['rps']:.1f}x",
                        per_second >= 10 * posting["rps"], self._floor(routes.BATCH.name)))
        for route, at_most in (("GET /accounts/{id}", 30), ("POST /transactions", 80)):
            server = self.rows[route][1]["cpu"]["server"]
            targets.append((f"API CPU per request <= {at_most} µs (`{route}`)", f"{server:.0f} µs", server <= at_most,
                            self._where_the_cpu_goes(route, server, at_most)))
        for kind, route, at_least in (("read", "GET /accounts/{id}", 40), ("write", "POST /transactions", 30)):
            ours = self.first[route]["rps"] if kind == "read" else self.writes[route]["rps"]
            theirs = self.original[kind]["rps"]
            targets.append((f"{kind.capitalize()}s >= {at_least}x the Python original, access control on (`{route}`)",
                            f"{ours:,.0f} against {theirs:,.0f} req/s = {ours / theirs:.1f}x", ours >= at_least * theirs,
                            self._floor(route, against_original=True)))
        for route in dict(self.bench.latency):
            half = self._at_half(route)
            ratio = half["p99"] / half["pgbench"]["p99"]
            targets.append((f"`{route}` p99 <= 2x pgbench's at 50% of the most, the same rate and statements "
                            "(open loop)", f"{half['p99']:.2f} ms against {half['pgbench']['p99']:.2f} ms = "
                            f"{ratio:.1f}x", ratio <= 2, self._queueing_at_half(route)))
        for name, growth in bench.growth.items():
            targets.append((f"`{name}` flat (within ±20%) as the ledger grows", f"{growth:.0%} of the small ledger's rate",
                            0.8 <= growth <= 1.2, self._growth_of_pgbench(name)))
        for feature, route in (("the request metrics", "GET /accounts/{id}"),
                               ("tracing, unsampled", "GET /accounts/{id}")):
            cost = bench.costs[feature][route]
            # The server's own CPU: what the feature adds to a request wherever the cores go.
            added = cost.cpu("on") - cost.cpu("off")
            said = (f"{added:.1f} µs of server CPU" + (" (below zero: noise, no measurable cost)" if added < 0 else "")
                    + f"; {(1 / cost.rate('on') - 1 / cost.rate('off')) * 1e6:.1f} µs by the rate")
            targets.append((f"{feature.capitalize()} cost <= 3 µs per request (`{route}`)", said, added <= 3,
                            self._recording_cost(route, added) if feature == "the request metrics" else None))
        for feature in ("a CPU profile being taken (99 Hz)", "CPU profiles pushed to Pyroscope (99 Hz)"):
            cost = bench.costs[feature]["GET /accounts/{id}"]
            kept = cost.rate("on") / cost.rate("off")
            cpu = cost.cpu("on") / cost.cpu("off") - 1
            targets.append((f"{feature[0].upper()}{feature[1:]}: >= 97% of `GET /accounts/{{id}}` kept",
                            f"{ratio_note(kept, 1.0)}; server CPU per request {cpu:+.1%}", kept >= 0.97,
                            f"The server's CPU per read: {cost.cpu('on'):.1f} µs with profiles, {cost.cpu('off'):.1f} "
                            f"µs without ({cpu:+.1%}), medians of the same rounds."))
        peak, doing = bench.peak()
        rss = peak / 1024
        targets.append(("RSS under load <= 64 MB", f"peak {rss:.1f} MB ({doing})", rss <= 64,
                        f"The server held {bench.peaks[STARTING] / 1024:.1f} MB at most until ready; the operator's "
                        f"login that followed took it to {bench.peaks[LOGIN] / 1024:.1f} MB (argon2id works in "
                        f"19 MiB, OWASP's minimum, given back when the hash is done); after every route's load it "
                        f"held {bench.resident_kb / 1024:.1f} MB, and its peak over the run was {rss:.1f} MB, "
                        f"reached during {doing}."))
        return targets

    def _where_the_cpu_goes(self, route, server, at_most):
        """The server's own profile under `route`, in microseconds of its CPU per request."""
        if route not in self.bench.profiles:
            return self._floor(route)
        _, summary = self.bench.profiles[route]
        parts = "; ".join(f"{name}: {share:.0%}, about {share * server:.0f} µs" for name, share in summary["ours"][:6])
        return (f"The server's profile under this route's load ({summary['samples']:,} samples), each sample given to "
                f"the innermost function of this project on its stack: {parts}. Reaching {at_most} µs takes "
                f"{server - at_most:.0f} µs less per request.")

    def _queueing_at_half(self, route):
        """How busy the cores were at half the route's most requests per second."""
        result = self._at_half(route)
        cores = result["cores"]
        parts = ", ".join(f"{name} {used:.2f}" for name, used in (("API", cores["server"]),
                          ("Postgres", cores["postgres"]), ("oha", cores["load"])))
        return (f"At {result['achieved']:,.0f} req/s the three processes kept {sum(cores.values()):.2f} of {CORES} "
                f"cores busy ({parts}); p50 was {result['p50']:.2f} ms, so the tail is requests waiting for a core "
                "that another of the three holds. Meeting it takes the load generator and Postgres off the API's "
                "cores, which this machine does not have.")

    def _growth_of_pgbench(self, name):
        """Whether pgbench, running the same statements, slowed as much as the route did."""
        before = self._ceiling(name)
        after = next(ceiling for section, route, _, ceiling in self.bench.rows[::-1] if route == name and ceiling)
        if after is before:
            return None
        return (f"pgbench running the same statements went from {before['tps']:,.0f} to {after['tps']:,.0f} tps "
                f"({after['tps'] / before['tps']:.0%}) over the same growth: the slowdown is in Postgres's answer "
                "to the statement, not in the API.")

    def _postgres_floor(self, route, total):
        """What the foreign key and the indexes cost Postgres per request, by its perf profile."""
        if route not in self.bench.postgres_profiles:
            return ""
        spent = self.rows[route][1]["cpu"]["postgres"]
        share = {function: share for function, _, share in self.bench.postgres_profiles[route][1]["work"]}
        checks, indexes = share["SPI_execute_snapshot"], share["btinsert"]
        return (f" By perf's samples of Postgres under this route, its ledger rows' foreign-key checks took "
                f"{checks:.0%} of its CPU (about {checks * spent:.0f} µs a request) and index entries {indexes:.0%} "
                f"(about {indexes * spent:.0f} µs): without the foreign key, a request would still cost about "
                f"{total - checks * spent:,.0f} µs in all.")

    def _recording_cost(self, route, added):
        """The recording's cost in CPU terms: what it adds to a request."""
        server = next((result["cpu"]["server"] for _, name, result, _ in self.bench.rows if name == route), None)
        against = f", against the {server:.0f} µs of server CPU the whole request takes" if server else ""
        return (f"Recording `http_requests_*` (a counter and a histogram with route, method and status labels) "
                f"added {added:.1f} µs per request{against}. On a request this cheap, even a few microseconds is "
                "more than 3%.")

    def _floor(self, route, against_original=False):
        """What 2 shared cores allow: the most requests per second this route's CPU per request
        (the API's, Postgres's and the load generator's together) leaves room for."""
        _, result, _ = self.rows[route]
        total = sum(result["cpu"].values())
        said = (f"Each `{route}` cost {total:.0f} µs of CPU in all (API {result['cpu']['server']:.0f}, Postgres "
                f"{result['cpu']['postgres']:.0f}, load generator {result['cpu']['load']:.0f}): {CORES} cores allow "
                f"at most {CORES * 1e6 / total:,.0f} req/s, and it served {result['rps']:,.0f}.")
        ceiling = self._ceiling(route)
        if ceiling:
            said += (f" Postgres spent {result['cpu']['postgres']:.0f} µs on each, against "
                     f"{ceiling['cpu']['postgres']:.0f} µs per pgbench run of the same statements.")
        if ceiling and route == routes.BATCH.name:
            posting = self.writes["POST /transactions"]["rps"]
            postings = ceiling["tps"] * routes.BATCH_ITEMS
            said += (f" pgbench running one batch's statement per transaction ({routes.BATCH_ITEMS} postings in one call "
                     f"and one commit) made {ceiling['tps']:,.0f} tps, {postings:,.0f} postings/s: "
                     f"{postings / posting:.1f}x the API's single postings. 10x is {10 * posting:,.0f} postings/s, "
                     f"{10 * posting / routes.BATCH_ITEMS:,.0f} batches/s, so a whole batch may cost at most "
                     f"{CORES * 1e6 * routes.BATCH_ITEMS / (10 * posting):,.0f} µs.")
            said += self._postgres_floor(route, total)
        if against_original and route == "POST /transactions":
            needed = 30 * self.original["write"]["rps"]
            said += (f" 30x the original is {needed:,.0f} req/s, so the whole request may cost at most "
                     f"{CORES * 1e6 / needed:.0f} µs.")
        return said

    # ---- the tables ---------------------------------------------------------------------------

    def routes_table(self):
        rows = []
        for section, name, result, ceiling in self.bench.rows:
            rows.append([section, f"`{name}`", f"{result['rps']:,.0f}", f"{result['p50']:.2f}", f"{result['p99']:.2f}",
                         result["errors"], f"{ceiling['tps']:,.0f}" if ceiling else "",
                         f"{result['rps'] / ceiling['tps']:.0%}" if ceiling else ""])
        return table(["Section", "Route", "req/s", "p50 ms", "p99 ms", "errors", "pgbench tps, same SQL",
                      "API / pgbench"], rows, text_columns=2)

    def profile_table(self):
        rows = []
        for section, name, result, ceiling in self.bench.rows:
            cpu, db = result["cpu"], (ceiling or {}).get("cpu")
            rows.append([f"`{name}` ({section})", *(f"{cpu[key]:.0f}" for key in ("server", "postgres", "load")),
                         f"{sum(cpu.values()):.0f}",
                         *((f"{db['postgres']:.0f}", f"{db['load']:.0f}", f"{sum(db.values()):.0f}") if db else ("",) * 3)])
        return table(["Route", "server", "Postgres", "load", "total", "pgbench run: Postgres", "pgbench", "total"], rows)

    def latency_table(self):
        rows = [[f"`{route}`", f"{result['share']:.0%}", f"{result['rate']:,}", f"{result['achieved']:,.0f}",
                 f"{result['p50']:.2f}", f"{result['p99']:.2f}", f"{result['p99.9']:.2f}", result["errors"],
                 f"{result['pgbench']['achieved']:,.0f}", f"{result['pgbench']['p50']:.2f}",
                 f"{result['pgbench']['p99']:.2f}", f"{result['p99'] / result['pgbench']['p99']:.1f}x"]
                for route, result in self.bench.latency]
        return table(["Route", "share of the most", "rate asked", "rate served", "p50 ms", "p99 ms", "p99.9 ms",
                      "errors", "pgbench: tps", "pgbench: p50 ms", "pgbench: p99 ms", "p99 / pgbench's"], rows)

    def flames(self):
        """Per profiled route: its flame graph, the crates whose own code the samples landed in,
        and this project's functions most often on the stack."""
        parts = []
        for route, (svg, summary) in self.bench.profiles.items():
            crates = table(["Crate (own code, the sampled frame)", "share of samples"],
                           [[f"`{name}`", f"{share:.1%}"] for name, share in summary["crates"]])
            ours = table(["Innermost function of this project on the stack", "share of samples"],
                         [[f"`{name}`", f"{share:.1%}"] for name, share in summary["ours"]])
            parts.append(f"### `{route}`\n\n{summary['samples']:,} samples. [Flame graph](charts/{svg}) "
                         f"(SVG: open it in a browser to zoom and search).\n\n{crates}\n\n{ours}")
        return "\n\n".join(parts)

    def postgres_flames(self):
        """Per write route: Postgres's flame graph, and what its CPU went to, as shares of its
        samples and in microseconds of the Postgres CPU a request cost in the route's own run."""
        parts = []
        for route, (svg, summary) in self.bench.postgres_profiles.items():
            spent = self.rows[route][1]["cpu"]["postgres"]
            work = table(["Postgres's function on the stack", "what it does here", "share of samples",
                          f"of the {spent:.0f} µs a request"],
                         [[f"`{function}`", doing, f"{share:.1%}", f"{share * spent:.1f} µs"]
                          for function, doing, share in summary["work"]], text_columns=2)
            parts.append(f"### `{route}`\n\n{summary['cpu_ms']:,.0f} ms of Postgres's CPU sampled. "
                         f"[Flame graph](charts/{svg}) (SVG: open it in a browser to zoom and search).\n\n{work}")
        return "\n\n".join(parts)

    def costs_table(self):
        rows = []
        for feature, measured in self.bench.costs.items():
            for route, cost in measured.items():
                on, off = cost.rate("on"), cost.rate("off")
                rounds = {state: ", ".join(f"{rate:,.0f}" for rate in cost.rates(state)) for state in ("on", "off")}
                rows.append([feature, f"`{route}`", f"{on:,.0f} ({rounds['on']})", f"{off:,.0f} ({rounds['off']})",
                             f"{on / off:.0%}", f"{(1 / on - 1 / off) * 1e6:.1f} µs",
                             f"{cost.cpu('on'):.1f} / {cost.cpu('off'):.1f} µs",
                             f"{cost.cpu('on') - cost.cpu('off'):.1f} µs"])
        return table(["Feature", "Route", "on: median req/s (rounds)", "off: median req/s (rounds)", "kept",
                      "cost per request, by the rate", "server CPU per request, on / off", "server CPU added"], rows,
                     text_columns=2)

    def targets_table(self):
        rows = [[name, value, "yes" if met else "**no**"] for name, value, met, _ in self.targets]
        return table(["Target", "Measured", "Met"], rows, text_columns=3)

    def floors(self):
        unmet = [(name, floor) for name, _, met, floor in self.targets if not met]
        if not unmet:
            return "Every target was met in this run."
        return "\n\n".join(f"**{name}.** {floor or 'Not explained by this run.'}" for name, floor in unmet)

    def notes_table(self):
        rows = [[key, value] for key, value in self.bench.notes.items()]
        peak, doing = self.bench.peak()
        rows.append(["Peak RSS of the API (VmHWM)", f"{peak / 1024:.1f} MB, during {doing}"])
        return table(["Measurement", "Value"], rows, text_columns=2)

    def scripts(self):
        parts = []
        for route, (script, sent_by, captured) in self.bench.scripts.items():
            parts.append(f"`{route}` ({sent_by} of {captured} captured requests sent exactly this):\n\n```\n{script}```")
        return "\n\n".join(parts)

    # ---- the documents ------------------------------------------------------------------------

    def summary(self):
        read, write = self.first["GET /accounts/{id}"], self.writes["POST /transactions"]
        transfer = self.writes["POST /transfers"]
        batched = self.bench.batch["rps"] * routes.BATCH_ITEMS
        posting_ceiling = self._ceiling("POST /transactions")["tps"]
        growth = min(self.bench.growth.values()), max(self.bench.growth.values())
        met = sum(met for _, _, met, _ in self.targets)
        return (f"On {CORES} cores, with access control on ({self.bench.args.connections} connections): "
                f"{read['rps']:,.0f} reads/s (`GET /accounts/{{id}}`), {write['rps']:,.0f} postings/s "
                f"({write['rps'] / posting_ceiling:.0%} of pgbench running the same statement one per transaction) "
                f"and {transfer['rps']:,.0f} transfers/s, and {batched:,.0f} postings/s in batches of "
                f"{routes.BATCH_ITEMS}; the Python original, measured in the same run, served "
                f"{self.original['read']['rps']:,.0f} reads/s and {self.original['write']['rps']:,.0f} postings/s "
                f"({read['rps'] / self.original['read']['rps']:.0f}x and "
                f"{write['rps'] / self.original['write']['rps']:.0f}x). Access control keeps "
                f"{self._access_control('GET /accounts/{id}'):.0%} of a read's rate and "
                f"{self._access_control('POST /transactions'):.0%} of a write's. Reads stay within "
                f"{growth[0]:.0%}-{growth[1]:.0%} of their rate as the ledger grows past a million rows; at half the "
                f"most per second, p99 latency is {self._at_half('GET /accounts/{id}')['p99']:.2f} ms for reads and "
                f"{self._at_half('POST /transactions')['p99']:.2f} ms for postings "
                f"({self._at_half('GET /accounts/{id}')['p99'] / self._at_half('GET /accounts/{id}')['pgbench']['p99']:.1f}x "
                f"and {self._at_half('POST /transactions')['p99'] / self._at_half('POST /transactions')['pgbench']['p99']:.1f}x "
                f"pgbench's at the same rate). {met} of {len(self.targets)} targets met.")

    def markdown(self, date):
        template = (ROOT / "bench" / "RESULTS.template.md").read_text()
        args = self.bench.args
        shares = ", ".join(f"{share:.0%}" for share in self.bench.shares)
        return template.format(
            date=date, machine="\n".join(machine()), connections=args.connections, seconds=args.seconds,
            rounds=args.rounds, accounts=f"{self.bench.accounts:,}", growth=f"{self.bench.growth_rows:,}",
            captured=self.bench.captured, shares=shares,
            summary="\n".join((SUMMARY[0], self.summary(), SUMMARY[1])), table=self.routes_table(),
            profile=self.profile_table(), latency=self.latency_table(), costs=self.costs_table(), flames=self.flames(),
            postgres_flames=self.postgres_flames(),
            targets=self.targets_table(), floors=self.floors(), notes=self.notes_table(), scripts=self.scripts())

    def console(self):
        return "\n\n".join([self.routes_table(), self.latency_table(), self.costs_table(), self.targets_table()])


def write_readme_summary(readme, summary):
    """Puts this run's summary between the README's markers."""
    text = readme.read_text()
    start, end = text.index(SUMMARY[0]), text.index(SUMMARY[1])
    readme.write_text(text[:start] + SUMMARY[0] + "\n" + summary + "\n" + text[end:])


def draw_charts(bench, directory):
    """The tables as pictures: each route against pgbench, reads as the ledger grows, and latency
    against load. Drawn from the same measurements as RESULTS.md, never by hand."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    directory.mkdir(parents=True, exist_ok=True)
    compared = [(section, name, result, ceiling) for section, name, result, ceiling in bench.rows if ceiling]
    figure, axes = pyplot.subplots(figsize=(11, 0.55 * len(compared) + 1.5))
    positions = range(len(compared))
    axes.barh([p + 0.2 for p in positions], [c["tps"] for _, _, _, c in compared], 0.4,
              label="pgbench, the same SQL (the database's ceiling)", color="#bbbbbb")
    axes.barh([p - 0.2 for p in positions], [r["rps"] for _, _, r, _ in compared], 0.4,
              label="bank-api over HTTP", color="#2b6cb0")
    for position, (_, _, result, ceiling) in zip(positions, compared, strict=True):
        axes.text(result["rps"], position - 0.2, f" {result['rps']:,.0f} ({result['rps'] / ceiling['tps']:.0%})",
                  va="center", fontsize=8)
    axes.set_yticks(list(positions), [f"{name}\n({section})" for section, name, _, _ in compared], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("requests (or pgbench transactions) per second")
    axes.set_title(f"bank-api vs pgbench, {bench.args.connections} connections, {bench.args.seconds} s per route")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "api-vs-pgbench.png", dpi=110)
    pyplot.close(figure)

    figure, axes = pyplot.subplots(figsize=(8, 4))
    for route in READS:
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

    measured = list(dict(bench.latency))
    figure, all_axes = pyplot.subplots(1, len(measured), figsize=(6 * len(measured), 4), squeeze=False)
    for axes, route in zip(all_axes[0], measured, strict=True):
        results = [result for name, result in bench.latency if name == route]
        rates = [r["rate"] for r in results]
        for percentile in ("p50", "p99"):
            axes.plot(rates, [r[percentile] for r in results], marker="o", label=f"bank-api {percentile}")
            axes.plot(rates, [r["pgbench"][percentile] for r in results], marker="s", linestyle="--",
                      label=f"pgbench {percentile}, same statements")
        axes.set_xlabel("requests (or transactions) per second asked, open loop")
        axes.set_ylabel("latency, ms (from when each was due)")
        axes.set_title(f"`{route}`")
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "latency-vs-load.png", dpi=110)
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
        f"- CPU: {cpu}, {CORES} cores; {memory} GiB RAM",
        f"- OS: {platform.platform()}",
        f"- {first('rustc --version')}; {first('psql --version')}; {first('wrk -v 2>&1')}; {first('oha --version')}",
        f"- bank-api commit {first('git -C ' + str(ROOT) + ' rev-parse --short HEAD')}, release profile",
    ]
