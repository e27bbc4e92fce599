"""`salesd verify` and `--repair` (SPEC §10) on both ClickHouse backends:
the stored table is compared with the source as values, hand-made drift
is named day by day and column by column, and the repair writes exactly
the differing days, as a run under the advisory lock."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from harness import oracle
from harness.servers import wait_until

from test_pipeline import Source, assert_matches_oracle, load_tricky, run_ok, write_config

LOCK_KEY = 7345001
RANGE = ["--from", "2024-03-01", "--to", "2024-07-31"]
D = dt.date.fromisoformat


def _setup(pg_db, ch_db, salesd):
    load_tricky(Source(pg_db))
    cfg = write_config(salesd, pg_db, ch_db)
    run_ok(salesd, cfg, "init-schema")
    run_ok(salesd, cfg, "once")
    return cfg


def _corrupt(ch_db, day: str, delta: str = "0.01"):
    """A wrong row by hand: total_revenue off by delta, with a higher version."""
    ch_db.query(
        "INSERT INTO daily_sales_stats SELECT date, total_orders, total_items_sold, "
        f"toDecimal64(total_revenue, 2) + toDecimal64('{delta}', 2), total_cost, total_profit, "
        "average_order_value, computed_at, version + 1 "
        f"FROM daily_sales_stats FINAL WHERE date = toDate('{day}')"
    )


def _delete(ch_db, day: str):
    ch_db.query(f"ALTER TABLE daily_sales_stats DELETE WHERE date = toDate('{day}')")
    wait_until(
        lambda: ch_db.rows(f"SELECT count() FROM daily_sales_stats WHERE date = toDate('{day}') FORMAT TabSeparated")
        == [["0"]],
        what=f"the rows of {day} to be deleted",
    )


def _verify(salesd, cfg, *args):
    return salesd.run("verify", *RANGE, *args, config=cfg)


def test_matching_table_exits_0(pg_db, ch_db, salesd):
    cfg = _setup(pg_db, ch_db, salesd)
    r = _verify(salesd, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verify: 153 days checked, 0 differ" in r.stdout
    # the default range: the last 31 days, all without sales here
    r = salesd.run("verify", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verify: 31 days checked, 0 differ" in r.stdout


def test_drift_is_named_and_repaired(pg_db, ch_db, salesd):
    cfg = _setup(pg_db, ch_db, salesd)
    _corrupt(ch_db, "2024-03-11")  # stored 3.10 (18.16) / 3.1 (current): the corrupt row says 3.11
    _delete(ch_db, "2024-05-02")
    before = oracle.ch_versions(ch_db)
    watermark = oracle.ch_watermark(ch_db)

    r = _verify(salesd, cfg)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2024-03-11 total_revenue: stored 3.11, recomputed 3.10" in r.stdout
    assert "2024-03-11 total_profit" not in r.stdout  # only the one column is off
    assert "2024-05-02: missing in clickhouse" in r.stdout
    assert "verify: 153 days checked, 2 differ (1 missing in clickhouse)" in r.stdout
    assert oracle.ch_versions(ch_db) == {d: v for d, v in before.items()}, "verify wrote something"

    r = _verify(salesd, cfg, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["days_checked"] == 153 and doc["days_differ"] == 2 and doc["days_missing"] == 1
    by_day = {d["day"]: d for d in doc["differences"]}
    assert by_day["2024-03-11"]["columns"] == [{"column": "total_revenue", "stored": "3.11", "recomputed": "3.10"}]
    assert by_day["2024-05-02"]["missing"] is True

    r = _verify(salesd, cfg, "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repair: wrote 2 of 2 days: 2024-03-11, 2024-05-02" in r.stdout
    after = oracle.ch_versions(ch_db)
    changed = {d for d in after if before.get(d) != after[d]}
    assert changed == {D("2024-03-11"), D("2024-05-02")}
    assert after[D("2024-03-11")] > before[D("2024-03-11")]
    assert oracle.ch_watermark(ch_db) == watermark, "a repair never moves the watermark"
    assert_matches_oracle(ch_db, pg_db)
    runs = oracle.ch_runs(ch_db)
    assert runs[-1]["status"] == "success" and runs[-1]["trigger"] == "cli"

    r = _verify(salesd, cfg)
    assert r.returncode == 0, r.stdout + r.stderr


def test_repair_while_the_lock_is_held_exits_75_and_writes_nothing(pg_db, ch_db, salesd):
    cfg = _setup(pg_db, ch_db, salesd)
    _corrupt(ch_db, "2024-11-03")
    before = sorted(oracle.ch_all_versions(ch_db))
    conn = pg_db.connect()
    try:
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
        r = salesd.run("verify", "--from", "2024-11-01", "--to", "2024-11-30", "--repair", config=cfg)
        assert r.returncode == 75, r.stdout + r.stderr
        assert "another instance holds the postgres advisory lock" in r.stdout + r.stderr
        assert sorted(oracle.ch_all_versions(ch_db)) == before
    finally:
        conn.close()
    r = salesd.run("verify", "--from", "2024-11-01", "--to", "2024-11-30", config=cfg)
    assert r.returncode == 1 and "2024-11-03 total_revenue" in r.stdout


def test_bad_arguments_exit_64(pg_db, ch_db, salesd):
    cfg = write_config(salesd, pg_db, ch_db)
    for args in (["--from", "2024-01-01"], ["--from", "2024-02-01", "--to", "2024-01-01"], ["--bogus"], ["x"]):
        r = salesd.run("verify", *args, config=cfg)
        assert r.returncode == 64, (args, r.stderr)


# ---------------------------------------------------------------- the daemon's continuous audit


def _get_json(port, path):
    import requests

    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5).json()


def _metric(port, name):
    import requests

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _seed_today_and_five_days_ago(pg_db):
    """One completed order today and one five days ago, changed an hour ago."""
    pg_db.execute(
        "INSERT INTO orders (order_id, customer_id, status, order_date, updated_at) VALUES"
        " (1, 1, 'completed', now() - interval '5 days', now() - interval '1 hour'),"
        " (2, 1, 'completed', now(), now() - interval '1 hour')"
    )
    pg_db.execute(
        "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at)"
        " VALUES (1, 1, 1, 2, 10.05, 4.00, now() - interval '1 hour'), (2, 2, 1, 1, 0.10, 0.05, now() - interval '1 hour')"
    )


def test_daemon_audit_finds_drift_and_the_next_run_repairs_it(salesd, pg_db, ch18_db):
    import signal

    from harness.servers import free_port
    from test_daemon import daemon_config

    day = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=5)).date()
    _seed_today_and_five_days_ago(pg_db)
    port = free_port()
    cfg = daemon_config(
        salesd, pg_db, ch18_db, port=port, run_on_start=True, overlap="0s", reconcile_days=0,
        **{"audit.days_per_run": 10, "audit.window": "10d"},
    )
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success")
    wait_until(lambda: _get_json(port, "/healthz")["audit"]["last_audit"], what="the first audit")
    audit = _get_json(port, "/healthz")["audit"]
    assert audit["mismatches"] == 0 and audit["last_mismatch"] is None
    assert audit["days_checked"] >= 1
    checked_before = _metric(port, "salesd_audit_checked_days_total")

    _corrupt(ch18_db, day.isoformat())
    proc.send_signal(signal.SIGUSR1)
    proc.wait_for(rf"audit: day {day} differs in total_revenue \(stored 20.11, recomputed 20.10\); "
                  "the next run recomputes it")
    wait_until(lambda: _metric(port, "salesd_audit_mismatched_days_total") == 1, what="the mismatch counter")
    assert _metric(port, "salesd_audit_checked_days_total") > checked_before
    last = _get_json(port, "/healthz")["audit"]["last_mismatch"]
    assert last["day"] == day.isoformat() and last["columns"] == ["total_revenue"] and last["at"]

    proc.send_signal(signal.SIGUSR1)
    proc.wait_for(r"recomputed 1 day\(s\) the audit found differing")
    got = oracle.ch_metrics(ch18_db)[day]
    assert got.total_revenue == Decimal("20.10"), got
    r = salesd.run("verify", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_stop_cancels_an_audit_waiting_in_postgres(salesd, pg_db, ch18_db):
    """SIGTERM while the audit's statement waits in Postgres cancels that
    statement like a run's: salesd stops at once and says "stopped", instead
    of waiting out its grace period and leaving with the audit in progress.
    The audit is held up by a gate in a view over orders: reading an order
    older than two days waits for an advisory lock the test holds (runs read
    only today and yesterday, the audit the older days of its window)."""
    import signal
    import time

    from harness.servers import free_port
    from test_daemon import daemon_config, lock_waiters

    _seed_today_and_five_days_ago(pg_db)
    pg_db.execute(
        "CREATE FUNCTION audit_gate(d timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN"
        " IF d < now() - interval '2 days' THEN PERFORM pg_advisory_lock_shared(4242); PERFORM pg_advisory_unlock_shared(4242);"
        " END IF; RETURN true; END $$"
    )
    pg_db.execute("CREATE VIEW orders_gated AS SELECT * FROM orders WHERE audit_gate(order_date)")
    port = free_port()
    cfg = daemon_config(
        salesd, pg_db, ch18_db, port=port, run_on_start=True, overlap="0s",
        **{"postgres.orders_table": "public.orders_gated", "audit.days_per_run": 10, "audit.window": "10d"},
    )
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success")
    wait_until(lambda: _get_json(port, "/healthz")["audit"]["last_audit"], what="the first audit")
    gate = pg_db.connect(autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4242)")
    try:
        proc.send_signal(signal.SIGUSR1)
        proc.wait_for(r"\(trigger signal\): success")
        wait_until(lambda: lock_waiters(pg_db) == 1, what="the audit waiting at the gate")
        started = time.monotonic()
        assert proc.stop(timeout=30) == 0, proc.stderr[-3000:]
        assert time.monotonic() - started < 6, proc.stderr[-3000:]  # the grace period is 8 s
        assert "work still in progress" not in proc.stderr, proc.stderr[-3000:]
        assert proc.stderr.rstrip().endswith("stopped"), proc.stderr[-3000:]
    finally:
        gate.close()
