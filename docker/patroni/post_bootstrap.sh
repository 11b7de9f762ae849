#!/bin/sh
# Run once by Patroni on the first primary, after initdb, with a superuser connection URL as $1:
# the bank's database and owner (the API's DATABASE_URL user), Grafana's read-only role and the
# postgres exporter's monitoring role, as docker/postgres/initdb does for the single node.
# Replicas copy them with everything else.
set -eu
psql "$1" -v ON_ERROR_STOP=1 \
  -v owner="${BANK_DB_USER:-bank}" -v owner_password="$BANK_DB_PASSWORD" \
  -v reader="${GRAFANA_DB_USER:-grafana_reader}" -v reader_password="$GRAFANA_DB_PASSWORD" \
  -v monitor="${POSTGRES_EXPORTER_USER:-postgres_exporter}" -v monitor_password="$POSTGRES_EXPORTER_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE DATABASE bank OWNER :"owner";
CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE bank TO :"reader";
CREATE ROLE :"monitor" LOGIN PASSWORD :'monitor_password' IN ROLE pg_monitor;
GRANT CONNECT ON DATABASE bank TO :"monitor";
\connect bank
GRANT USAGE ON SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
