"""What bank-api's Python suites (tests/) and its benchmark (bench/) share, installed into their
virtualenvs as a package (`pip install -e ./tests/testkit`, which every requirements file does):

- `processes`: the repository's binaries, free ports, waiting, and the one way to start a program
  (`Process`), of which `Api` starts bank-api;
- `http`: requests that never raise on an HTTP error, bearer headers, logging in;
- `postgres`: psql, a fresh database per test, a private Postgres server;
- `prometheus`: instant queries;
- `ledger`: an account's ledger, walked page by page;
- `otlp`: a real OTLP/gRPC trace receiver (needs grpcio and opentelemetry-proto);
- `dashboards`: the shipped dashboards' and rules' queries, for running them against the real
  parts (needs PyYAML);
- `monitoring`: the real Prometheus and Alertmanager;
- `webhooks`: an endpoint that keeps what it is sent, and what each message tells of;
- `cluster`: the compose profile `ha` as processes (etcd, Patroni, HAProxy), for the failover
  suite and the configuration checks.
"""
