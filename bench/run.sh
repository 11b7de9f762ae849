#!/usr/bin/env bash
# The benchmark from a fresh clone: installs wrk, oha, perf, inferno and Postgres's server and
# client when missing, builds the release binary, then bench/bench.py measures it (on a Postgres
# of its own, beside the Python original's reference) and writes bench/RESULTS.md, its charts
# (bench/charts/) and the README's performance summary. Extra arguments go to bench.py
# (--seconds, --connections, --rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

step "tools: wrk, oha, perf, inferno, pgbench, Postgres"
apt_install wrk postgresql postgresql-client linux-perf
install_bench_tools

step "release build"
cargo build --release --bin bank-api

step "chart tools"
python_venv bench/requirements.txt

step "benchmark"
"$VENV/bin/python" bench/bench.py "$@"
