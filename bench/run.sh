#!/usr/bin/env bash
# The benchmark from a fresh clone: installs wrk and Postgres when missing, builds the release
# binary, then bench/bench.py loads every main route and pgbench runs the same SQL, and writes
# bench/RESULTS.md with its charts (bench/charts/). Extra arguments go to bench.py (--seconds, --connections, --rounds, --postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

step "tools: wrk, pgbench, Postgres"
apt_install wrk postgresql postgresql-client
[ -n "${BENCH_POSTGRES:-}" ] || start_postgres

step "release build"
cargo build --release --bin bank-api

step "chart tools"
python_venv bench/requirements.txt

step "benchmark"
"$VENV/bin/python" bench/bench.py "$@"
