"""Test harness for salesd: real Postgres and ClickHouse servers (and a chdb
backed stand-in for a current ClickHouse) started in temp dirs on loopback
ports, for the integration tests, the demo and the benchmark."""
