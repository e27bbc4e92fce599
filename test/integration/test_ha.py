"""High availability through the Postgres advisory lock (SPEC §4.1): while
another session holds postgres.lock_key a run is skipped — recorded, logged,
counted — and /healthz says standby; two daemons never compute at once."""

import signal

import requests

from harness.servers import free_port, wait_until
from test_daemon import TableLock, daemon_config, seed

LOCK_KEY = 7345001


def hold_lock(pg_db):
    conn = pg_db.connect()
    assert conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
    return conn


def test_once_is_skipped_while_another_instance_holds_the_lock(salesd, pg_db, ch_db):
    seed(pg_db)
    cfg = salesd.write_config(pg_db, ch_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    holder = hold_lock(pg_db)
    try:
        r = salesd.run("once", config=cfg)
        b = salesd.run("backfill", "--from", "2026-01-01", "--to", "2026-01-02", config=cfg)
    finally:
        holder.close()
    assert r.returncode == 75, r.stderr  # SPEC §5: EX_TEMPFAIL, nothing computed
    assert b.returncode == 75, b.stderr
    assert "skipped: another instance holds the postgres advisory lock 7345001" in r.stderr
    rows = ch_db.rows("SELECT status, trigger, days_recomputed, days_written, error FROM salesd_runs FORMAT TabSeparated")
    assert rows == [["skipped", "cli", "0", "0", "another instance holds the postgres advisory lock 7345001 (postgres.lock_key)"]] * 2
    assert ch_db.rows("SELECT count() FROM daily_sales_stats FORMAT TabSeparated") == [["0"]]
    # with the lock free again, the next run computes
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    assert ch_db.rows("SELECT count() FROM daily_sales_stats FINAL FORMAT TabSeparated") == [["2"]]


def test_daemon_reports_standby_while_skipped(salesd, pg_db, ch18_db):
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db, port=port))
    proc.wait_for("ready")
    holder = hold_lock(pg_db)
    try:
        proc.send_signal(signal.SIGUSR1)
        proc.wait_for(r"\(trigger signal\): skipped")
        r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert r.status_code == 200
        assert r.json()["status"] == "standby"
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'salesd_runs_total{status="skipped"} 1' in metrics
        assert 'salesd_health_state{state="standby"} 1' in metrics
        # a skipped run reaches no stage
        assert 'salesd_stage_duration_seconds_count{stage="postgres"} 0' in metrics
        assert 'salesd_stage_duration_seconds_count{stage="clickhouse"} 0' in metrics
        wait_until(
            lambda: ch18_db.rows("SELECT state FROM salesd_heartbeat FINAL FORMAT TabSeparated") == [["standby"]],
            what="a standby heartbeat",
        )
    finally:
        holder.close()
    proc.send_signal(signal.SIGUSR1)
    proc.wait_for(r"\(trigger signal\): success")
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'salesd_health_state{state="standby"} 0' in metrics
    assert 'salesd_stage_duration_seconds_count{stage="postgres"} 1' in metrics
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_two_daemons_never_compute_at_once(salesd, pg_db, ch18_db):
    seed(pg_db)
    port_a, port_b = free_port(), free_port()
    cfg_a = daemon_config(salesd, pg_db, ch18_db, port=port_a, instance="host-a")
    proc_a = salesd.start("run", config=cfg_a)
    cfg_b = salesd.write_config(
        pg_db,
        ch18_db,
        {
            "instance": "host-b",
            "run_on_start": False,
            "schedule": "0 0 1 1 *",
            "heartbeat_interval": "1s",
            "http.listen": f"127.0.0.1:{port_b}",
        },
        filename="b.yaml",
    )
    proc_b = salesd.start("run", config=cfg_b)
    proc_a.wait_for("ready")
    proc_b.wait_for("ready")
    lock = TableLock(pg_db)
    try:
        proc_a.send_signal(signal.SIGUSR1)
        wait_until(lambda: lock.waiters() == 1, what="host-a's run to hold the advisory lock and block")
        proc_b.send_signal(signal.SIGUSR1)
        proc_b.wait_for(r"\(trigger signal\): skipped")
    finally:
        lock.release()
    proc_a.wait_for(r"\(trigger signal\): success")
    rows = ch18_db.rows("SELECT instance, status FROM salesd_runs ORDER BY instance FORMAT TabSeparated")
    assert rows == [["host-a", "success"], ["host-b", "skipped"]]
    assert requests.get(f"http://127.0.0.1:{port_b}/healthz", timeout=5).json()["status"] == "standby"
    # each instance keeps its own heartbeat row
    wait_until(
        lambda: sorted(r[0] for r in ch18_db.rows("SELECT instance FROM salesd_heartbeat FINAL FORMAT TabSeparated"))
        == ["host-a", "host-b"],
        what="both heartbeats",
    )
    assert proc_a.stop() == 0, proc_a.stderr[-3000:]
    assert proc_b.stop() == 0, proc_b.stderr[-3000:]
