#!/usr/bin/env bash
# Runs once, when the Postgres volume is first created: the postgres exporter's role. pg_monitor
# lets it read the statistics views (activity, locks, replication, sizes) and nothing else: it
# cannot read or write the bank's tables.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v monitor="$POSTGRES_EXPORTER_USER" -v password="$POSTGRES_EXPORTER_PASSWORD" \
  -v database="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"monitor" LOGIN PASSWORD :'password' IN ROLE pg_monitor;
GRANT CONNECT ON DATABASE :"database" TO :"monitor";
SQL
