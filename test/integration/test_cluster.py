"""salesd on a replicated ClickHouse cluster (SPEC §9): ZooKeeper and two
ClickHouse 18.16 replicas of one shard (cluster `sales`), started once per
session (conftest.py's `ch_cluster`).

salesd gets both replicas' URLs and `clickhouse.cluster: sales`; the tables
are created ON CLUSTER with Replicated engines.  Expectations come from
test/harness/oracle.py, read on the replica salesd did not write through.
A test that kills or stops a replica brings it back, writable, before it
ends, so the next test finds the cluster whole.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request

import pytest
from conftest import ChDb, free_port

from harness import oracle
from harness.relay import FORWARD, FORWARD_THEN_DROP, Answer, Relay
from harness.servers import wait_until

# The pipeline's correctness scenarios, collected again in this module where
# `ch_db` is the cluster (see the fixture below).
from test_pipeline import (  # noqa: F401
    Source,
    assert_matches_oracle,
    load_tricky,
    run_ok,
    test_changes_touch_exactly_the_right_days,
    test_first_run_fills_history_exactly,
    test_rerun_without_change_writes_nothing,
    tricky,
    write_config,
)

TABLES = {
    "daily_sales_stats": "ReplicatedReplacingMergeTree",
    "salesd_runs": "ReplicatedMergeTree",
    "salesd_heartbeat": "ReplicatedReplacingMergeTree",
    "salesd_state": "ReplicatedReplacingMergeTree",
    "daily_sales_stats_latest": "View",
}


@pytest.fixture
def ch_db(cluster_db):
    """For the pipeline scenarios imported above: salesd writes through the
    first replica with `insert_quorum: 2`, so the second, which the oracle
    reads, has every row once salesd returns."""
    cluster_db.salesd_settings["insert_quorum"] = 2
    return cluster_db


@pytest.fixture
def whole_cluster(ch_cluster):
    """Restores any replica a test killed or stopped, and waits until it
    takes writes again."""
    yield ch_cluster
    for i, replica in enumerate(ch_cluster.replicas):
        if not replica.running:
            ch_cluster.restart(i)
        ch_cluster.wait_writable(i)


def stored_versions(db: ChDb):
    """Every stored (date, version) row, FINAL or not: what replication
    must make equal on both replicas."""
    return sorted(tuple(r) for r in db.rows("SELECT toString(date), version FROM daily_sales_stats ORDER BY 1, 2"))


def duplicate_versions(db: ChDb):
    return db.rows(
        "SELECT toString(date), version, count() FROM daily_sales_stats GROUP BY date, version HAVING count() > 1"
    )


def wait_replicated(cluster_db, timeout=60):
    """Polls until both replicas hold the same daily_sales_stats rows."""
    r1, r2 = cluster_db.on
    wait_until(
        lambda: stored_versions(r1) == stored_versions(r2),
        timeout=timeout,
        interval=0.2,
        what="daily_sales_stats to be the same on both replicas",
    )


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read().decode()


# ---------------------------------------------------------------- schema


def test_init_schema_creates_and_verifies_on_every_replica(cluster_db, pg_db, salesd):
    cfg = salesd.write_config(pg_db, cluster_db)
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode == 0, r.stderr
    for i, db in enumerate(cluster_db.on):
        engines = dict(
            db.rows(
                f"SELECT name, engine FROM system.tables WHERE database = '{cluster_db.database}' FORMAT TabSeparated"
            )
        )
        assert engines == TABLES, f"replica {i + 1}"
        paths = dict(
            db.rows(
                "SELECT table, zookeeper_path FROM system.replicas "
                f"WHERE database = '{cluster_db.database}' FORMAT TabSeparated"
            )
        )
        # the default zookeeper_path, {database} expanded by salesd, {shard} by the server
        assert paths == {t: f"/clickhouse/tables/01/{cluster_db.database}/{t}" for t in TABLES if t != "daily_sales_stats_latest"}
    # idempotent: a second init-schema (everything in place) changes nothing
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode == 0, r.stderr


def test_replica_missing_a_table_is_named(cluster_db, pg_db, salesd):
    cfg = salesd.write_config(pg_db, cluster_db)
    run_ok(salesd, cfg, "init-schema")
    r2 = cluster_db.on[1]
    r2.query(f"DROP TABLE `{cluster_db.database}`.salesd_state")
    r = salesd.run("once", config=cfg)
    assert r.returncode != 0
    assert f"clickhouse replica {r2.url} of cluster 'sales'" in r.stderr, r.stderr
    assert "004_salesd_state.sql" in r.stderr and "salesd_state` does not exist" in r.stderr, r.stderr
    assert cluster_db.on[0].url not in r.stderr.replace(r2.url, ""), r.stderr
    # init-schema recreates it (ON CLUSTER, IF NOT EXISTS) where it is missing
    run_ok(salesd, cfg, "init-schema")
    assert r2.rows(f"EXISTS TABLE `{cluster_db.database}`.salesd_state") == [["1"]]
    run_ok(salesd, cfg, "once")


def test_replica_with_a_wrong_type_is_named(cluster_db, pg_db, salesd):
    cfg = salesd.write_config(pg_db, cluster_db)
    run_ok(salesd, cfg, "init-schema")
    r1 = cluster_db.on[0]
    # a local ALTER on one replica: 18.16 replicates ALTERs of Replicated
    # tables, so change a plain table instead: recreate salesd_runs there
    r1.query(f"DROP TABLE `{cluster_db.database}`.salesd_runs")
    r1.query(
        f"CREATE TABLE `{cluster_db.database}`.salesd_runs (run_id String, instance String, trigger String, "
        "started_at DateTime('UTC'), finished_at DateTime('UTC'), status String, days_recomputed UInt64, "
        "days_written UInt32, error String) ENGINE = ReplicatedMergeTree("
        f"'/clickhouse/tables/01/{cluster_db.database}/salesd_runs_other', '{{replica}}') ORDER BY started_at"
    )
    r = salesd.run("once", config=cfg)
    assert r.returncode != 0
    assert f"clickhouse replica {r1.url} of cluster 'sales'" in r.stderr, r.stderr
    assert "column 'days_recomputed' has type 'UInt64', expected 'UInt32'" in r.stderr, r.stderr


def test_a_list_of_urls_needs_a_cluster(cluster_db, pg_db, salesd):
    cfg = salesd.write_config(pg_db, cluster_db, {"clickhouse.cluster": ""})
    r = salesd.run("check-config", config=cfg)
    assert r.returncode == 78
    assert "key 'clickhouse.url': a list of urls needs clickhouse.cluster" in r.stderr, r.stderr


# ------------------------------------------------------------ replication


def test_run_through_replica_1_is_read_on_replica_2(cluster_db, pg_db, salesd):
    src = Source(pg_db)
    load_tricky(src)
    cfg = write_config(salesd, pg_db, cluster_db)
    run_ok(salesd, cfg, "init-schema")
    run_ok(salesd, cfg, "once")
    r1, r2 = cluster_db.on
    # no quorum: the second replica fetches the parts in the background
    wait_replicated(cluster_db)
    got = assert_matches_oracle(r2, pg_db)
    assert got == oracle.ch_metrics(r1)
    assert oracle.ch_watermark(r2) == oracle.ch_watermark(r1)
    assert duplicate_versions(r1) == [] and duplicate_versions(r2) == []


# --------------------------------------------------------------- failover


def test_failover_keeps_the_order_with_a_dead_first_url(cluster_db, pg_db, salesd):
    """The first URL answers nothing: requests go to the next in list order
    (replica 1, not replica 2), and /healthz and /metrics say which."""
    src = Source(pg_db)
    load_tricky(src)
    dead = f"http://127.0.0.1:{free_port()}"
    r1, r2 = cluster_db.on
    port = free_port()
    cfg = write_config(
        salesd,
        pg_db,
        cluster_db,
        **{
            "clickhouse.url": [dead, r1.url, r2.url],
            "http.listen": f"127.0.0.1:{port}",
            "schedule": "0 0 1 1 *",
        },
    )
    run_ok(salesd, cfg, "init-schema")
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success", timeout=60)
    status, body = http_get(port, "/healthz")
    assert json.loads(body)["clickhouse"] == {"endpoint": r1.url}
    _, metrics = http_get(port, "/metrics")
    assert f'salesd_clickhouse_endpoint_info{{url="{r1.url}"}} 1' in metrics
    assert dead not in metrics
    # what was written went to the replicas, once
    wait_replicated(cluster_db)
    assert_matches_oracle(r2, pg_db)
    r = salesd.run("status", config=cfg)
    assert f"clickhouse:    {r1.url}" in r.stdout, r.stdout
    proc.stop()


def test_daemon_fails_over_when_its_replica_stops(cluster_db, pg_db, salesd, whole_cluster):
    """A running daemon whose current replica goes away moves to the next
    one on the next request and stays there; /healthz and /metrics follow."""
    src = Source(pg_db)
    load_tricky(src)
    r1, r2 = cluster_db.on
    port = free_port()
    cfg = write_config(
        salesd, pg_db, cluster_db, **{"http.listen": f"127.0.0.1:{port}", "schedule": "0 0 1 1 *"}
    )
    run_ok(salesd, cfg, "init-schema")
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success", timeout=60)
    assert json.loads(http_get(port, "/healthz")[1])["clickhouse"]["endpoint"] == r1.url
    cluster_db.cluster.replicas[0].halt()
    src.order("2024-06-01 12:00:00+00", items=[(2, "10.00", "4.00")])
    proc.send_signal(signal.SIGUSR1)
    proc.wait_for(r"\(trigger signal\): success", timeout=60)
    assert json.loads(http_get(port, "/healthz")[1])["clickhouse"]["endpoint"] == r2.url
    assert f"clickhouse: requests now go to {r2.url} (failed over from {r1.url})" in proc.stderr
    _, metrics = http_get(port, "/metrics")
    assert f'salesd_clickhouse_endpoint_info{{url="{r2.url}"}} 1' in metrics
    assert_matches_oracle(r2, pg_db)
    proc.stop()


def test_a_reload_with_a_new_url_list_starts_at_its_first_url(cluster_db, pg_db, salesd):
    src = Source(pg_db)
    load_tricky(src)
    r1, r2 = cluster_db.on
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    settings = {"http.listen": f"127.0.0.1:{port}", "schedule": "0 0 1 1 *"}
    cfg = write_config(salesd, pg_db, cluster_db, **{"clickhouse.url": [dead, r1.url]}, **settings)
    run_ok(salesd, cfg, "init-schema")
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success", timeout=60)
    assert json.loads(http_get(port, "/healthz")[1])["clickhouse"]["endpoint"] == r1.url  # the second of two
    write_config(salesd, pg_db, cluster_db, **{"clickhouse.url": [r2.url, r1.url]}, **settings)
    proc.send_signal(signal.SIGHUP)
    proc.wait_for("reload: configuration .* loaded", timeout=60)
    # not "the second URL of the new list" (r1): a new list starts at its first
    assert json.loads(http_get(port, "/healthz")[1])["clickhouse"]["endpoint"] == r2.url
    proc.send_signal(signal.SIGUSR1)
    proc.wait_for(r"\(trigger signal\): success", timeout=60)
    assert json.loads(http_get(port, "/healthz")[1])["clickhouse"]["endpoint"] == r2.url
    proc.stop()


class KillOnInsert(Relay):
    """In front of replica 1: the first INSERT into daily_sales_stats
    reaches the replica (its rows land there), then the replica is killed
    with SIGKILL before salesd hears the answer, which is cut.  The kill
    falls exactly between the run's reads and its inserts."""

    def __init__(self, cluster):
        self.killed = False

        def on_answer(body):
            cluster.replicas[0].kill()
            self.killed = True
            return Answer(200, b"", cut=True)

        def decide(path, body):
            if "INSERT%20INTO%20daily_sales_stats" in path and not self.killed:
                return on_answer
            return FORWARD

        super().__init__(cluster.replicas[0].url, decide)


def test_replica_killed_between_reads_and_inserts(cluster_db, pg_db, salesd, whole_cluster):
    src = Source(pg_db)
    load_tricky(src)
    cluster = cluster_db.cluster
    r1, r2 = cluster_db.on
    relay = KillOnInsert(cluster)
    try:
        cfg = write_config(salesd, pg_db, cluster_db, **{"clickhouse.url": [relay.url, r2.url]})
        run_ok(salesd, cfg, "init-schema")
        r = salesd.run("once", config=cfg)
        assert relay.killed
    finally:
        relay.close()
    # The insert's outcome was unknown: the run failed over to replica 2,
    # re-read there and wrote what was missing with a greater version
    # (SPEC §4), and finished there.  Replica 2 holds no second copy of a
    # version, whatever replica 1 had stored before it died.
    assert r.returncode == 0, r.stderr
    assert_matches_oracle(r2, pg_db)
    assert duplicate_versions(r2) == []
    assert oracle.ch_watermark(r2)

    t0 = time.monotonic()
    cluster.restart(0)
    writable = cluster.wait_writable(0)
    wait_replicated(cluster_db)
    caught_up = time.monotonic() - t0
    print(f"replica 1: writable {writable:.1f}s after restart, caught up after {caught_up:.1f}s")
    for db in (r1, r2):
        assert duplicate_versions(db) == []

    cfg = write_config(salesd, pg_db, cluster_db)
    run_ok(salesd, cfg, "once")
    wait_replicated(cluster_db)
    for db in (r1, r2):
        assert_matches_oracle(db, pg_db)
        assert duplicate_versions(db) == []
    # and a rerun writes nothing
    before = stored_versions(r1)
    run_ok(salesd, cfg, "once")
    assert stored_versions(r1) == before


def _quorum_of_two(cluster_db, pg_db, salesd):
    """The tricky shop, a config with insert_quorum 2, the schema on both
    replicas; returns the cluster, both replicas' databases and the config."""
    src = Source(pg_db)
    load_tricky(src)
    cluster = cluster_db.cluster
    r1, r2 = cluster_db.on
    cfg = write_config(salesd, pg_db, cluster_db, **{"clickhouse.insert_quorum": 2})
    run_ok(salesd, cfg, "init-schema")
    return cluster, r1, r2, cfg


def test_quorum_refused_with_a_replica_down_writes_nothing(cluster_db, pg_db, salesd, whole_cluster):
    cluster, r1, r2, cfg = _quorum_of_two(cluster_db, pg_db, salesd)
    cluster.replicas[1].halt()  # a clean stop: its ZooKeeper session ends now
    r = salesd.run("once", config=cfg)
    assert r.returncode == 1, r.stderr
    assert re.search(r"Code: 285.*Number of alive replicas \(1\) is less than requested quorum \(2\)", r.stderr), r.stderr
    assert "clickhouse.insert_quorum" in r.stderr
    # nothing partial: no day, no watermark on the replica that was up
    assert oracle.ch_count(r1) == 0
    assert oracle.ch_watermark(r1) in (None, "")

    cluster.restart(1)
    cluster.wait_writable(1)
    run_ok(salesd, cfg, "once")
    for db in (r1, r2):  # the quorum: both have every row when salesd returns
        assert_matches_oracle(db, pg_db)
        assert duplicate_versions(db) == []


def test_quorum_with_a_replica_killed_times_out_on_the_server(cluster_db, pg_db, salesd, whole_cluster):
    """A replica killed with SIGKILL still counts as alive (its ZooKeeper
    session lives on), so a quorum insert waits for it: the server's
    insert_quorum_timeout, below clickhouse.timeout, ends the wait with the
    server's quorum error, not the client's timeout.  After the replica is
    back the quorum completes and the next run is exact."""
    cluster, r1, r2, cfg = _quorum_of_two(cluster_db, pg_db, salesd)
    cluster.replicas[1].kill()
    r = salesd.run("once", config=cfg)
    assert r.returncode == 1, r.stderr
    assert "quorum" in r.stderr.lower(), r.stderr
    assert "Timeout was reached" not in r.stderr and "Operation timed out" not in r.stderr, r.stderr
    assert oracle.ch_watermark(r1) in (None, "")

    cluster.restart(1)
    cluster.wait_writable(1)
    run_ok(salesd, cfg, "once")
    wait_replicated(cluster_db)
    for db in (r1, r2):
        assert_matches_oracle(db, pg_db)
        assert duplicate_versions(db) == []


def duplicated_blocks(db: ChDb) -> int:
    rows = db.rows("SELECT value FROM system.events WHERE event = 'DuplicatedInsertedBlocks'")
    return int(rows[0][0]) if rows else 0


def test_a_retried_watermark_block_is_deduplicated_on_the_other_replica(cluster_db, pg_db, salesd):
    """The watermark insert lands on replica 1 and its answer is lost: the
    client fails over and resends the same bytes to replica 2, whose
    replicated table recognises the block and drops it (SPEC §9: a retried
    block of the other tables is byte-identical)."""
    src = Source(pg_db)
    load_tricky(src)
    r1, r2 = cluster_db.on
    lost = []

    def decide(path, body):
        if "INSERT%20INTO%20salesd_state" in path and not lost:
            lost.append(path)
            return FORWARD_THEN_DROP
        return FORWARD

    relay = Relay(r1.url, decide)
    try:
        cfg = write_config(salesd, pg_db, cluster_db, **{"clickhouse.url": [relay.url, r2.url]})
        run_ok(salesd, cfg, "init-schema")
        before = duplicated_blocks(r2)
        run_ok(salesd, cfg, "once")
    finally:
        relay.close()
    assert len(lost) == 1
    assert duplicated_blocks(r2) > before
    state = cluster_db.on[0].rows("SELECT count() FROM salesd_state")
    assert state == [["1"]], state
    wait_until(lambda: r2.rows("SELECT count() FROM salesd_state") == [["1"]], timeout=30, what="replication")
