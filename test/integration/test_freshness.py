"""Freshness (SPEC §10, issue 12): the shipped NOTIFY trigger
(sql/postgres/020_notify.sql) turns a commit into a run, the default
debounce folds a burst into one run and a notification during a run into
exactly one follow-up, and `complete_as_of` says up to when every commit is
in ClickHouse — moving on an idle shop, held back by an open transaction."""

import datetime as dt
import signal
import time

import requests

from harness.servers import free_port, wait_until

from test_daemon import TableLock, daemon_config, runs, seed
from test_pipeline import assert_matches_oracle

CHANNEL = "salesd_changes"  # the channel 020_notify.sql notifies


def _healthz(port):
    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()


def _rfc3339(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _today_orders(ch):
    rows = ch.rows(
        "SELECT total_orders FROM daily_sales_stats FINAL WHERE date = toDate(now(), 'UTC') FORMAT TabSeparated"
    )
    return int(rows[0][0]) if rows else None


def test_the_shipped_trigger_notifies_the_configured_channel(pg_db):
    triggers = pg_db.query(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgname LIKE '%salesd_notify' ORDER BY 1"
    )
    assert [r[0] for r in triggers] == ["order_items", "orders", "salesd_tombstones"]
    conn = pg_db.connect(autocommit=True)
    try:
        conn.execute(f"LISTEN {CHANNEL}")
        pg_db.execute(
            "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES (90, 1, 'completed', now())"
        )
        got = list(conn.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in got] == [CHANNEL]
        # One statement that changes many rows notifies once.
        pg_db.execute("UPDATE orders SET status = 'completed'")
        got = list(conn.notifies(timeout=2))
        assert len(got) == 1
    finally:
        conn.close()


def test_a_commit_becomes_visible_through_a_notify_run(salesd, pg_db, ch18_db):
    seed(pg_db)
    cfg = daemon_config(salesd, pg_db, ch18_db, run_on_start=True, **{"notify.channel": CHANNEL})
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success")
    proc.wait_for(f"listening on postgres channel '{CHANNEL}'")
    assert _today_orders(ch18_db) == 1
    pg_db.execute(
        "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES (3, 2, 'completed', now())"
    )
    wait_until(lambda: _today_orders(ch18_db) == 2, what="the new order in daily_sales_stats")
    # the run row is written after the days (SPEC §4 step 6): wait for it too
    wait_until(lambda: runs(ch18_db, "notify"), what="the notify run's salesd_runs row")
    assert [r[1:3] for r in runs(ch18_db, "notify")] == [["notify", "success"]]
    assert_matches_oracle(ch18_db, pg_db, tz="UTC", statuses=["completed"])
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_a_notification_during_a_run_queues_exactly_one_follow_up(salesd, pg_db, ch18_db):
    seed(pg_db)
    # default debounce; debug logs show each debounced run request
    cfg = daemon_config(salesd, pg_db, ch18_db, log_level="debug", **{"notify.channel": CHANNEL})
    proc = salesd.start("run", config=cfg)
    proc.wait_for(f"listening on postgres channel '{CHANNEL}'")
    lock = TableLock(pg_db)
    try:
        pg_db.execute(f"NOTIFY {CHANNEL}")
        wait_until(lambda: lock.waiters() == 1, what="the notify run to block on the table lock")
        # Several debounce windows pass while the run waits: each would start
        # a run; together they queue one.
        for _ in range(4):
            pg_db.execute(f"NOTIFY {CHANNEL}")
            time.sleep(0.4)
        proc.wait_for("queued one follow-up run")
        # every notification has reached the daemon, and its debounce window
        # has passed, before the run may end
        wait_until(
            lambda: proc.stderr.count(f"notification on channel '{CHANNEL}'") == 5,
            what="all five notifications delivered",
        )
        time.sleep(0.6)
    finally:
        lock.release()
    wait_until(lambda: len(runs(ch18_db, "notify", "success")) == 2, what="the run and its follow-up")
    time.sleep(1.5)  # nothing else may follow
    assert len(runs(ch18_db, "notify")) == 2
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_complete_as_of_moves_on_an_idle_shop_and_waits_for_open_transactions(salesd, pg_db, ch18_db):
    seed(pg_db)
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port)
    proc = salesd.start("run", config=cfg)
    proc.wait_for("ready")
    assert _healthz(port)["complete_as_of"] is None

    def run_once(n):
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: len(runs(ch18_db, "signal", "success")) == n, what=f"signal run {n}")
        return _healthz(port)["complete_as_of"]

    first = run_once(1)
    assert first is not None
    db_now = pg_db.query("SELECT now()")[0][0]
    assert abs((_rfc3339(first) - db_now).total_seconds()) < 30
    time.sleep(1.1)
    second = run_once(2)  # nothing changed in the shop: it still moves
    assert _rfc3339(second) > _rfc3339(first)

    # An open transaction may still commit rows stamped after its start:
    # complete_as_of stops there until it ends.
    conn = pg_db.connect(autocommit=False)
    try:
        conn.execute("SELECT txid_current()")
        xact_start = conn.execute("SELECT now()").fetchone()[0]
        time.sleep(1.1)
        held = run_once(3)
        assert _rfc3339(held) <= xact_start
        assert _rfc3339(held) >= _rfc3339(second)
    finally:
        conn.rollback()
        conn.close()
    time.sleep(1.1)
    released = run_once(4)
    assert _rfc3339(released) > xact_start

    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    line = [x for x in metrics.splitlines() if x.startswith("salesd_complete_as_of_timestamp_seconds ")]
    assert len(line) == 1 and int(float(line[0].split()[1])) == int(_rfc3339(released).timestamp())
    r = salesd.run("status", config=cfg)
    assert r.returncode == 0 and f"complete as of: {released}" in r.stdout, r.stdout
    assert proc.stop() == 0, proc.stderr[-3000:]
