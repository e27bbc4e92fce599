"""The daemon (`salesd run`) against real servers: sd_notify, signals, the
HTTP endpoint, health states, heartbeats and stopping mid-run.

Slow runs are made deterministic by holding an ACCESS EXCLUSIVE lock on the
orders table from the test: the run's first snapshot query then waits on it
in Postgres until the test lets go."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.servers import free_port, wait_until

TOKEN = "t0k3n-for-tests-0123456789"


class NotifySocket:
    """A NOTIFY_SOCKET owned by the test: collects sd_notify datagrams."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def has(self, prefix):
        return [m for _, m in self.messages for line in m.split("\n") if line.startswith(prefix)]

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


def seed(pg_db):
    pg_db.execute(
        "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES"
        " (1, 1, 'completed', now() - interval '1 day'), (2, 1, 'completed', now())"
    )
    pg_db.execute(
        "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price) VALUES"
        " (1, 1, 1, 2, 10.05, 4.00), (2, 2, 1, 1, 0.10, 0.05)"
    )


def runs(ch, trigger=None, status=None):
    where = []
    if trigger:
        where.append(f"trigger = '{trigger}'")
    if status:
        where.append(f"status = '{status}'")
    sql = "SELECT run_id, trigger, status, error FROM salesd_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return ch.rows(sql + " ORDER BY started_at FORMAT TabSeparated")


def daemon_config(salesd, pg_db, ch, port=None, **overrides):
    base = {
        "run_on_start": False,
        "schedule": "0 0 1 1 *",
        "heartbeat_interval": "1s",
        "http.listen": f"127.0.0.1:{port}" if port else "",
    }
    if port:
        token = salesd.tmp_path / "http-token"
        token.write_text(TOKEN + "\n")
        base["http.token_file"] = str(token)
    base.update(overrides)
    return salesd.write_config(pg_db, ch, base)


def lock_waiters(pg_db):
    """How many salesd sessions wait for a lock (a table lock, an advisory lock)."""
    rows = pg_db.query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'salesd' AND wait_event_type = 'Lock'"
    )
    return rows[0][0]


class TableLock:
    """Holds ACCESS EXCLUSIVE on orders so a run blocks inside Postgres."""

    def __init__(self, pg_db):
        self.pg_db = pg_db
        self.conn = pg_db.connect(autocommit=False)
        self.conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")

    def waiters(self):
        return lock_waiters(self.pg_db)

    def release(self):
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def test_ready_status_watchdog_on_notify_socket(salesd, pg_db, ch18_db, notify_socket):
    seed(pg_db)
    cfg = daemon_config(salesd, pg_db, ch18_db, run_on_start=True)
    proc = salesd.start("run", config=cfg, env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"})
    wait_until(lambda: notify_socket.has("READY=1"), what="READY=1")
    # READY only once the schema is verified
    assert "schema verified" in proc.stderr
    wait_until(lambda: notify_socket.has("WATCHDOG=1"), what="WATCHDOG=1")
    wait_until(lambda: [s for s in notify_socket.has("STATUS=") if "last run success" in s], what="STATUS after run")
    status = [s for s in notify_socket.has("STATUS=") if "last run" in s][-1]
    assert "next run" in status
    # pings keep coming while idle
    n = len(notify_socket.has("WATCHDOG=1"))
    wait_until(lambda: len(notify_socket.has("WATCHDOG=1")) >= n + 2, timeout=5, what="more watchdog pings")
    assert proc.stop() == 0, proc.stderr[-3000:]
    wait_until(lambda: notify_socket.has("STOPPING=1"), timeout=5, what="STOPPING=1")


def test_not_ready_while_clickhouse_unreachable(salesd, pg_db, ch18_db, notify_socket):
    port = free_port()
    closed = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port, **{"clickhouse.url": f"http://127.0.0.1:{closed}"})
    proc = salesd.start("run", config=cfg, env={"NOTIFY_SOCKET": notify_socket.path})
    proc.wait_for(r"schema check failed.*retrying")
    wait_until(lambda: _get(port, "/readyz") is not None, what="/readyz answering")
    r = _get(port, "/readyz")
    assert r.status_code == 503
    wait_until(
        lambda: [s for s in notify_socket.has("STATUS=") if "waiting for clickhouse" in s],
        timeout=5,
        what="STATUS=waiting for clickhouse",
    )
    assert not notify_socket.has("READY=1")
    assert proc.stop() == 0, proc.stderr[-3000:]


def _get(port, path, **kw):
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5, **kw)
    except requests.ConnectionError:
        return None


def test_sigusr1_runs_with_trigger_signal(salesd, pg_db, ch18_db):
    seed(pg_db)
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db))
    proc.wait_for("ready")
    assert runs(ch18_db) == []  # run_on_start is off
    proc.send_signal(signal.SIGUSR1)
    rows = wait_until(lambda: runs(ch18_db, "signal", "success"), what="a signal run")
    assert len(rows) == 1
    assert ch18_db.rows("SELECT count() FROM daily_sales_stats FINAL FORMAT TabSeparated")[0][0] == "2"
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_burst_of_signals_during_a_run_queues_exactly_one_follow_up(salesd, pg_db, ch18_db):
    seed(pg_db)
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db))
    proc.wait_for("ready")
    lock = TableLock(pg_db)
    try:
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: lock.waiters() == 1, what="the run to block on the table lock")
        for _ in range(20):
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.01)
        proc.wait_for("queued one follow-up run")
    finally:
        lock.release()
    wait_until(lambda: len(runs(ch18_db, "signal", "success")) == 2, what="two runs")
    time.sleep(2.0)  # nothing else may follow
    assert len(runs(ch18_db, "signal")) == 2
    assert proc.stderr.count("queued one follow-up run") == 1
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_sigterm_mid_run_exits_cleanly_and_loses_nothing(salesd, pg_db, ch18_db):
    seed(pg_db)
    cfg = daemon_config(salesd, pg_db, ch18_db)
    proc = salesd.start("run", config=cfg)
    proc.wait_for("ready")
    lock = TableLock(pg_db)
    try:
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: lock.waiters() == 1, what="the run to block on the table lock")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        lock.release()
    # the interrupted run wrote no metrics and did not move the watermark
    assert ch18_db.rows("SELECT count() FROM daily_sales_stats FORMAT TabSeparated")[0][0] == "0"
    assert ch18_db.rows("SELECT count() FROM salesd_state FORMAT TabSeparated")[0][0] == "0"
    # but the interrupted run is on record
    assert [(r[2], r[3]) for r in runs(ch18_db, "signal")] == [("failed", "cancelled: salesd is stopping")]
    # and the next run computes everything correctly
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    got = ch18_db.rows(
        "SELECT toString(total_revenue), toString(total_cost), total_orders FROM daily_sales_stats FINAL"
        " WHERE total_orders > 0 ORDER BY date FORMAT TabSeparated"
    )
    assert [(Decimal(a), Decimal(b), int(c)) for a, b, c in got] == [
        (Decimal("20.10"), Decimal("8.00"), 1),
        (Decimal("0.10"), Decimal("0.05"), 1),
    ]


def test_sighup_applies_a_valid_config_and_keeps_the_old_on_a_broken_one(salesd, pg_db, ch18_db, notify_socket):
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port)
    proc = salesd.start("run", config=cfg, env={"NOTIFY_SOCKET": notify_socket.path})
    proc.wait_for("ready")
    before = _get(port, "/healthz").json()["next_run"]
    assert before.endswith("-01-01T00:00:00Z")

    daemon_config(salesd, pg_db, ch18_db, port=port, schedule="*/5 * * * *")
    proc.send_signal(signal.SIGHUP)
    proc.wait_for("reload: configuration .* loaded")
    after = _get(port, "/healthz").json()["next_run"]
    assert after != before
    minute = int(after[14:16])
    assert minute % 5 == 0
    loaded = _metric_value(port, "salesd_config_last_reload_success_timestamp_seconds")
    assert abs(loaded - time.time()) < 60
    assert _metric_value(port, "salesd_config_last_reload_successful") == 1
    # the datagrams may trail the log line by a poll of the test's reader
    wait_until(lambda: notify_socket.has("RELOADING=1"), timeout=5, what="RELOADING=1")
    wait_until(lambda: len(notify_socket.has("READY=1")) >= 2, timeout=5, what="READY=1 after the reload")

    Path(cfg).write_text(Path(cfg).read_text() + "\nno_such_key: 1\n")
    proc.send_signal(signal.SIGHUP)
    proc.wait_for("rejected; keeping the one in force")
    assert "no_such_key" in proc.stderr
    assert proc.alive()
    assert _get(port, "/healthz").json()["next_run"] == after
    # a rejected reload: 0, and the time of the configuration still in force
    assert _metric_value(port, "salesd_config_last_reload_successful") == 0
    assert _metric_value(port, "salesd_config_last_reload_success_timestamp_seconds") == loaded
    assert proc.stop() == 0, proc.stderr[-3000:]


def _metric_value(port, name):
    for family in text_string_to_metric_families(_get(port, "/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not in /metrics")


def test_healthz_fails_after_three_failed_runs_and_recovers(salesd, pg_db, private_servers):
    ch = private_servers.clickhouse()
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch, port=port, run_on_start=True))
    proc.wait_for(r"run .* \(trigger start\): success")
    r = _get(port, "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"

    ch.server.halt()
    for i in range(3):
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: proc.stderr.count("(trigger signal): failed") >= i + 1, what=f"failed run {i + 1}")
    r = _get(port, "/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "failing"
    assert body["consecutive_failures"] == 3
    assert body["last_run"]["status"] == "failed"
    text = _get(port, "/metrics").text
    assert 'salesd_runs_total{status="failed"} 3' in text
    assert "salesd_run_rows_pending 3" in text

    ch.server.restart()
    proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: proc.stderr.count("(trigger signal): success") >= 1, timeout=60, what="a run after recovery")
    r = _get(port, "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    # the failed runs' rows were kept and written with the next successful write
    assert len(runs(ch, "signal", "failed")) == 3
    assert len(runs(ch, "signal", "success")) == 1
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_metrics_parse_as_prometheus_text(salesd, pg_db, ch18_db):
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db, port=port, run_on_start=True))
    proc.wait_for(r"\(trigger start\): success")
    r = _get(port, "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    runs_total = {s.labels["status"]: s.value for s in families["salesd_runs"].samples if s.name == "salesd_runs_total"}
    assert runs_total == {"success": 1.0, "failed": 0.0, "skipped": 0.0}
    hist = families["salesd_run_duration_seconds"]
    assert hist.type == "histogram"
    count = {s.labels["trigger"]: s.value for s in hist.samples if s.name.endswith("_count")}
    assert count["start"] == 1.0 and sum(count.values()) == 1.0
    assert families["salesd_days_written"].samples[0].value == 2.0
    # the run reached both stages once; each took some time, less than the run
    stages = families["salesd_stage_duration_seconds"]
    assert stages.type == "histogram"
    stage_count = {s.labels["stage"]: s.value for s in stages.samples if s.name.endswith("_count")}
    stage_sum = {s.labels["stage"]: s.value for s in stages.samples if s.name.endswith("_sum")}
    assert stage_count == {"postgres": 1.0, "clickhouse": 1.0}
    run_sum = sum(s.value for s in hist.samples if s.name.endswith("_sum"))
    assert 0 < stage_sum["postgres"] and 0 < stage_sum["clickhouse"]
    assert stage_sum["postgres"] + stage_sum["clickhouse"] <= run_sum
    assert families["salesd_days_recomputed"].samples[0].value >= 2.0
    assert families["salesd_config_last_reload_successful"].samples[0].value == 1.0
    # the standard process metrics, instead of salesd_up / salesd_start_time_seconds
    assert abs(families["process_start_time_seconds"].samples[0].value - time.time()) < 120
    assert families["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert families["process_cpu_seconds"].samples[0].value > 0
    assert 3 <= families["process_open_fds"].samples[0].value <= families["process_max_fds"].samples[0].value
    assert "salesd_up" not in families and "salesd_start_time_seconds" not in families
    # Prometheus's own linter (Debian's promtool) finds nothing to say but
    # that "days" in the contract's day counters (SPEC §10) is not a unit
    check = subprocess.run(["promtool", "check", "metrics"], input=r.text, capture_output=True, text=True, timeout=30)
    problems = [
        line
        for line in (check.stdout + check.stderr).splitlines()
        if line.strip() and not (line.startswith("salesd_") and 'use base unit "seconds" instead of "days"' in line)
    ]
    assert not problems, check.stdout + check.stderr
    assert families["salesd_last_success_timestamp_seconds"].samples[0].value > time.time() - 60
    assert families["salesd_watermark_timestamp_seconds"].samples[0].value > 0
    assert TOKEN not in r.text
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_post_run_needs_the_bearer_token(salesd, pg_db, ch18_db):
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db, port=port))
    proc.wait_for("ready")
    url = f"http://127.0.0.1:{port}/run"
    assert requests.post(url, timeout=5).status_code == 401
    assert requests.post(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    r = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 202
    wait_until(lambda: runs(ch18_db, "http", "success"), what="an http run")
    assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404
    assert requests.delete(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 405
    assert TOKEN not in proc.stderr
    health = _get(port, "/healthz").text
    assert TOKEN not in health and pg_db.password not in health and ch18_db.password not in health
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_post_run_without_a_configured_token_is_forbidden(salesd, pg_db, ch18_db):
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port, **{"http.token_file": None})
    proc = salesd.start("run", config=cfg)
    proc.wait_for("ready")
    r = requests.post(f"http://127.0.0.1:{port}/run", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 403
    assert "token_file" in r.json()["error"]
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_heartbeat_rows_and_status_command(salesd, pg_db, ch18_db):
    seed(pg_db)
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port, run_on_start=True)
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success")

    def beat():
        rows = ch18_db.rows(
            "SELECT instance, state, toUnixTimestamp(ts), toUnixTimestamp(last_success), toUnixTimestamp(next_run)"
            " FROM salesd_heartbeat FINAL FORMAT TabSeparated"
        )
        return rows if rows and rows[0][1] == "idle" and int(rows[0][3]) > 0 else None

    rows = wait_until(beat, what="an idle heartbeat with last_success")
    instance, state, ts, last_success, next_run = rows[0]
    assert instance == "salesd-test" and len(rows) == 1
    assert abs(int(ts) - time.time()) < 30
    assert int(next_run) > time.time()
    first_ts = int(ts)
    wait_until(lambda: int(beat()[0][2]) > first_ts, timeout=10, what="a newer heartbeat")

    r = salesd.run("status", config=cfg)
    assert r.returncode == 0, r.stderr
    assert "status:        ok" in r.stdout and "last run:      success (trigger start)" in r.stdout
    r = salesd.run("status", "--json", config=cfg)
    assert r.returncode == 0
    assert json.loads(r.stdout)["status"] == "ok"
    assert proc.stop() == 0, proc.stderr[-3000:]
    r = salesd.run("status", config=cfg)
    assert r.returncode == 69
    assert "cannot reach the daemon" in r.stderr


def test_config_error_exits_78(salesd, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("schedule: 'not a cron'\n")
    r = salesd.run("run", config=cfg, timeout=20)
    assert r.returncode == 78
    assert f"{cfg}:1:11" in r.stderr


def test_postgres_notifications_trigger_debounced_runs(salesd, pg_db, ch18_db):
    seed(pg_db)
    cfg = daemon_config(salesd, pg_db, ch18_db, **{"notify.channel": "salesd_changes", "notify.debounce": "1s"})
    proc = salesd.start("run", config=cfg)
    proc.wait_for("listening on postgres channel 'salesd_changes'")
    for _ in range(5):  # a burst within the debounce window: one run
        pg_db.execute("NOTIFY salesd_changes")
    wait_until(lambda: runs(ch18_db, "notify", "success"), what="a notify run")
    time.sleep(2.5)
    assert len(runs(ch18_db, "notify")) == 1
    pg_db.execute("NOTIFY other_channel")
    pg_db.execute("NOTIFY salesd_changes")
    wait_until(lambda: len(runs(ch18_db, "notify", "success")) == 2, what="a second notify run")
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_notification_listener_reconnects_after_postgres_restarts(salesd, private_servers, ch18_db):
    pg = private_servers.postgres()
    seed(pg)
    cfg = daemon_config(salesd, pg, ch18_db, **{"notify.channel": "salesd_changes", "notify.debounce": "100ms"})
    proc = salesd.start("run", config=cfg)
    proc.wait_for("listening on postgres channel")
    pg.close()
    pg.server.halt()
    proc.wait_for("notify: connection lost")
    pg.server.restart()
    wait_until(lambda: proc.stderr.count("listening on postgres channel") == 2, timeout=30, what="the listener back")
    pg.execute("NOTIFY salesd_changes")
    wait_until(lambda: runs(ch18_db, "notify", "success"), what="a notify run after reconnect")
    assert proc.stop() == 0, proc.stderr[-3000:]


@pytest.mark.skipif(os.geteuid() != 0, reason="setting the clock needs CAP_SYS_TIME (run as root)")
def test_clock_change_re_arms_the_schedule(salesd, pg_db, ch18_db):
    """Setting the realtime clock (here: to its own value, so nothing else on
    the machine notices) cancels the daemon's clock-change timerfd; the
    daemon re-arms its schedule from the new time."""
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db, port=port, schedule="*/5 * * * *"))
    proc.wait_for("ready")
    before = _get(port, "/healthz").json()["next_run"]
    time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_REALTIME))
    proc.wait_for("system clock changed; re-arming the schedule")
    after = _get(port, "/healthz").json()["next_run"]
    assert after >= before  # the same wall time: the same next run (or the one after, at a boundary)
    assert int(after[14:16]) % 5 == 0
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_healthz_fails_when_runs_stop_getting_through(salesd, pg_db, ch18_db):
    """No failed run at all, but nothing succeeded since the slot before the
    last one (here: a run stuck behind a table lock, every-minute schedule):
    failing.  Takes one to two minutes of real time."""
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch18_db, port=port, schedule="* * * * *"))
    proc.wait_for("ready")
    lock = TableLock(pg_db)
    try:
        wait_until(lambda: lock.waiters() == 1, timeout=70, what="the scheduled run to block")
        assert _get(port, "/healthz").json()["status"] == "ok"
        wait_until(
            lambda: _get(port, "/healthz").status_code == 503,
            timeout=150,
            interval=1.0,
            what="/healthz to turn failing",
        )
        body = _get(port, "/healthz").json()
        assert body["status"] == "failing"
        assert body["consecutive_failures"] == 0 and body["last_run"] is None
    finally:
        lock.release()
    wait_until(lambda: runs(ch18_db, "schedule", "success"), what="the stuck run to finish")
    assert _get(port, "/healthz").json()["status"] == "ok"
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_sighup_to_clickhouse_settings_with_a_wrong_schema_is_refused(salesd, pg_db, ch18_db, notify_socket):
    """New ClickHouse settings are verified against the schema before the
    reload takes effect: a database whose daily_sales_stats has the wrong
    column type is refused, /readyz stays 200 and runs keep succeeding with
    the settings in force.  A database that is merely empty is set up and
    taken."""
    seed(pg_db)
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port)
    proc = salesd.start("run", config=cfg, env={"NOTIFY_SOCKET": notify_socket.path})
    proc.wait_for("ready")
    wrong = ch18_db.database + "_wrong"
    ch18_db.server.create_database(wrong)
    try:
        ch18_db.server.query(
            "CREATE TABLE daily_sales_stats (date Date, total_orders UInt32, total_items_sold UInt32,"
            " total_revenue Float64, total_cost Decimal(15, 2), total_profit Decimal(15, 2),"
            " average_order_value Decimal(15, 2), computed_at DateTime('UTC'), version UInt64)"
            " ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(date) ORDER BY date",
            database=wrong,
        )
        daemon_config(salesd, pg_db, ch18_db, port=port, **{"clickhouse.database": wrong})
        proc.send_signal(signal.SIGHUP)
        proc.wait_for("reload: clickhouse schema check with the new settings failed")
        assert "total_revenue" in proc.stderr
        assert "reload: configuration" not in proc.stderr.split("verifying the schema")[-1]
        wait_until(lambda: len(notify_socket.has("READY=1")) >= 2, timeout=5, what="READY=1 after the refusal")
        assert _get(port, "/readyz").status_code == 200
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: runs(ch18_db, "signal", "success"), what="a run with the settings in force")

        fresh = ch18_db.database + "_fresh"
        daemon_config(salesd, pg_db, ch18_db, port=port, **{"clickhouse.database": fresh})
        proc.send_signal(signal.SIGHUP)
        proc.wait_for("reload: configuration .* loaded")
        proc.send_signal(signal.SIGUSR1)
        wait_until(
            lambda: ch18_db.server.query(
                "SELECT count() FROM salesd_runs WHERE status = 'success' FORMAT TabSeparated", database=fresh
            ).strip() == "1",
            what="a run into the new database",
        )
        assert proc.stop() == 0, proc.stderr[-3000:]
    finally:
        ch18_db.server.drop_database(wrong)
        ch18_db.server.drop_database(ch18_db.database + "_fresh")


def test_sighup_cannot_change_the_lock_key(salesd, pg_db, ch18_db):
    """Hosts must agree on postgres.lock_key: changing it needs a restart,
    or two hosts on different keys would compute at once."""
    port = free_port()
    cfg = daemon_config(salesd, pg_db, ch18_db, port=port)
    proc = salesd.start("run", config=cfg)
    proc.wait_for("ready")
    daemon_config(salesd, pg_db, ch18_db, port=port, **{"postgres.lock_key": 42})
    proc.send_signal(signal.SIGHUP)
    proc.wait_for("'postgres.lock_key' changed, which needs a restart")
    assert proc.alive()
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_stop_leaves_a_postgres_that_never_answers_behind(salesd, pg_db, ch18_db):
    """The LISTEN connection attempt runs on a helper thread.  Against a host
    that accepts the connection and then says nothing (a half-dead server),
    libpq waits up to connect_timeout there; a stop waits a moment for it,
    then exits cleanly without running the libraries' exit handlers under it
    (and says so)."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    hole.settimeout(30)
    try:
        cfg = daemon_config(
            salesd,
            pg_db,
            ch18_db,
            **{
                "notify.channel": "salesd_changes",
                "postgres.conninfo": f"host=127.0.0.1 port={hole.getsockname()[1]} dbname=shop user=salesd",
                "postgres.connect_timeout": "120s",
            },
        )
        proc = salesd.start("run", config=cfg)
        proc.wait_for("ready")
        peer, _ = hole.accept()  # the attempt is connected and waiting for an answer
        started = time.monotonic()
        assert proc.stop(timeout=60) == 0, proc.stderr[-3000:]
        assert time.monotonic() - started < 30  # not connect_timeout's 120 s
        assert "still in progress on a helper thread" in proc.stderr, proc.stderr[-3000:]
        peer.close()
    finally:
        hole.close()
