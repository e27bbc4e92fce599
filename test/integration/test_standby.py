"""A Postgres hot standby as the source (SPEC §9): a primary and a streaming
standby (`pg_basebackup -R -X stream`) on loopback, shared by the session
(the pg_standby_server fixture).  salesd aggregates on the standby only once
it has replayed the primary's WAL up to `pg_current_wal_insert_lsn()`, read
on the primary after the late-commit guard; the lock and the guard live on
the primary.

Replication lag is made on demand with `pg_wal_replay_pause()` on the
standby, so every wait here is an event, not a race.  Commits are made with
`synchronous_commit = off` (the harness servers' default too), the case
where a commit is visible on the primary before its WAL is written."""

import datetime as dt
import re
import signal
import time
from decimal import Decimal

import psycopg
import pytest
import requests

from harness import oracle
from harness.servers import free_port, wait_until

from test_daemon import daemon_config, runs
from test_pipeline import Source, assert_matches_oracle, load_tricky
from test_pipeline import write_config as pipeline_config
from test_watermark import STRICT, day_revenue, watermark

CHANNEL = "salesd_changes"  # the channel sql/postgres/020_notify.sql notifies
TS = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


class StandbyDb:
    """One test database on the shared primary, replicated to the standby:
    `.primary` and `.standby` are PgDb handles on the two servers."""

    def __init__(self, primary, standby):
        self.primary = primary
        self.standby = standby

    def commit(self, sql, params=None):
        """Runs sql on the primary in a session with synchronous_commit = off."""
        with self.primary.connect(autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql, params)


@pytest.fixture
def sdb(pg_standby_server, request):
    from conftest import PgDb, _db_name

    primary = pg_standby_server.primary
    name = _db_name(request)
    primary.create_database(name)
    pg_standby_server.caught_up()
    db = StandbyDb(PgDb(primary, name), PgDb(pg_standby_server, name))
    yield db
    pg_standby_server.replay_resume()  # a failed test may leave it paused
    db.primary.close()
    db.standby.close()
    primary.drop_database(name)


def standby_config(salesd, sdb, ch, filename="salesd.yaml", **overrides):
    """A config whose postgres.conninfo is the standby and primary_conninfo
    the primary (the same role and password_file)."""
    base = {"postgres.primary_conninfo": sdb.primary.conninfo_nopw, "log_level": "debug"}
    base.update(overrides)
    return salesd.write_config(sdb.standby, ch, base, filename=filename)


def run_ok(salesd, cfg, *args):
    r = salesd.run(*args, config=cfg)
    assert r.returncode == 0, f"salesd {' '.join(args)} exited {r.returncode}\n{r.stderr[-4000:]}"
    return r


def where(db):
    return f"host '127.0.0.1' port {db.port} database '{db.name}'"


def test_a_run_on_the_standby_is_exact_with_lock_and_guard_on_the_primary(sdb, ch18_db, salesd):
    src = Source(sdb.primary)
    load_tricky(src)
    cfg = pipeline_config(salesd, sdb.standby, ch18_db, **{"postgres.primary_conninfo": sdb.primary.conninfo_nopw,
                                                            "log_level": "debug"})
    run_ok(salesd, cfg, "init-schema")
    r = run_ok(salesd, cfg, "once")
    assert_matches_oracle(ch18_db, sdb.primary)
    log = r.stderr
    # the lock, the guard and the WAL position on the primary; the snapshot on the standby
    for what in ("pg_try_advisory_lock", "late-commit guard", "pg_current_wal_insert_lsn", "pg_advisory_unlock"):
        assert f"postgres {where(sdb.primary)}: {what}" in log, what
    for what in ("pg_last_wal_replay_lsn", "begin", "affected days", "aggregate affected days"):
        assert f"postgres {where(sdb.standby)}: {what}" in log, what
    assert f"postgres {where(sdb.primary)}: aggregate" not in log
    m = re.search(r"postgres standby .*: replayed up to \S+ \(primary's insert position\) after (\d+) us", log)
    assert m, log[-3000:]
    print(f"replay wait {int(m.group(1)) / 1000:.1f} ms")

    # verify reads the standby too (after the same wait) and agrees
    r = run_ok(salesd, cfg, "verify", "--from", "2024-03-01", "--to", "2024-07-31")
    assert f"postgres {where(sdb.standby)}: aggregate affected days" in r.stderr


def test_a_commit_waits_for_replay_and_is_in_the_run(sdb, ch18_db, salesd, pg_standby_server):
    """Replay paused, a commit on the primary: the run waits on the standby
    until replay resumes, then its snapshot holds the commit."""
    cfg = standby_config(salesd, sdb, ch18_db, **STRICT)
    run_ok(salesd, cfg, "init-schema")
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
               "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT)")
    run_ok(salesd, cfg, "once")
    assert day_revenue(ch18_db, "2026-01-10") == [(Decimal("10.00"), 1)]

    pg_standby_server.replay_pause()
    sdb.commit("UPDATE order_items SET price = 12.50 WHERE order_item_id = 1")
    proc = salesd.start("once", config=cfg)
    proc.wait_for(f"postgres {re.escape(where(sdb.standby))}: pg_last_wal_replay_lsn")
    # still waiting: nothing was aggregated yet
    assert "aggregate affected days" not in proc.stderr and proc.alive()
    pg_standby_server.replay_resume()
    assert proc.wait(60) == 0, proc.stderr[-3000:]
    assert day_revenue(ch18_db, "2026-01-10") == [(Decimal("12.50"), 1)]


def test_past_max_replica_lag_the_run_fails_and_the_next_one_includes_the_commit(
    sdb, ch18_db, salesd, pg_standby_server
):
    cfg = standby_config(salesd, sdb, ch18_db, **STRICT)
    run_ok(salesd, cfg, "init-schema")
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
               "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT)")
    run_ok(salesd, cfg, "once")
    wm_before = watermark(ch18_db)
    runs_before = len(oracle.ch_runs(ch18_db))

    pg_standby_server.replay_pause()
    sdb.commit("UPDATE order_items SET price = 20.00 WHERE order_item_id = 1")
    lagging = standby_config(salesd, sdb, ch18_db, filename="lagging.yaml",
                             **{**STRICT, "postgres.max_replica_lag": "2s", "log_level": "info"})
    r = salesd.run("once", config=lagging)
    assert r.returncode == 69, r.stderr  # a server not ready: a retry may work
    err = r.stderr
    assert f"postgres standby {where(sdb.standby)} has not replayed the primary's WAL up to" in err, err
    assert f"(pg_current_wal_insert_lsn() on {where(sdb.primary)})" in err, err
    assert "within postgres.max_replica_lag (2s)" in err and "bytes behind" in err, err
    assert "replay is paused (SELECT pg_wal_replay_resume() on the standby)" in err, err
    assert sdb.primary.password not in err
    # nothing written but the failed run's row
    assert day_revenue(ch18_db, "2026-01-10") == [(Decimal("10.00"), 1)]
    assert watermark(ch18_db) == wm_before
    new = oracle.ch_runs(ch18_db)[runs_before:]
    assert [x["status"] for x in new] == ["failed"] and "max_replica_lag" in new[0]["error"]

    # verify waits the same way
    r = salesd.run("verify", "--from", "2026-01-10", "--to", "2026-01-10", config=lagging)
    assert r.returncode == 69 and "max_replica_lag" in r.stderr, r.stderr

    pg_standby_server.replay_resume()
    run_ok(salesd, cfg, "once")
    assert day_revenue(ch18_db, "2026-01-10") == [(Decimal("20.00"), 1)]
    run_ok(salesd, cfg, "verify", "--from", "2026-01-10", "--to", "2026-01-10")


def test_a_late_commit_on_the_primary_is_not_lost(sdb, ch18_db, salesd):
    """A transaction opened on the primary before a run commits after it,
    its rows stamped with its (old) start: the guard read on the primary
    holds the watermark back, and the next run reads them on the standby."""
    cfg = standby_config(salesd, sdb, ch18_db, **STRICT)
    run_ok(salesd, cfg, "init-schema")
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
               "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT)")
    run_ok(salesd, cfg, "once")

    late = psycopg.connect(sdb.primary.server.conninfo(sdb.primary.name), autocommit=False)
    try:
        late.execute("SET synchronous_commit = off")
        late.execute("INSERT INTO orders VALUES (2, 1, 'completed', '2026-01-05 12:00+00', DEFAULT);"
                     "INSERT INTO order_items VALUES (2, 2, 1, 3, 5.00, 1.00, DEFAULT)")
        xact_start = late.execute(f"SELECT to_char(now() AT TIME ZONE 'UTC', {TS})").fetchone()[0]
        sdb.commit("UPDATE order_items SET price = 11.00 WHERE order_item_id = 1")
        run_ok(salesd, cfg, "once")
        assert day_revenue(ch18_db, "2026-01-10") == [(Decimal("11.00"), 1)]
        assert day_revenue(ch18_db, "2026-01-05") == []  # not committed yet
        assert watermark(ch18_db) < xact_start  # the primary's guard held it back
        late.commit()
    finally:
        late.close()
    run_ok(salesd, cfg, "once")
    assert day_revenue(ch18_db, "2026-01-05") == [(Decimal("15.00"), 1)]


def test_a_standby_without_primary_conninfo_is_a_configuration_error(sdb, ch18_db, salesd):
    cfg = salesd.write_config(sdb.standby, ch18_db)
    run_ok(salesd, cfg, "init-schema")
    want = (
        f"postgres {where(sdb.standby)} is a hot standby (pg_is_in_recovery() is true)",
        "set postgres.primary_conninfo to its primary",
    )
    for args in (["once"], ["backfill", "--from", "2026-01-01", "--to", "2026-01-02"], ["verify"]):
        r = salesd.run(*args, config=cfg)
        assert r.returncode == 78, (args, r.stderr)
        for w in want:
            assert w in r.stderr, (args, r.stderr)
    # the daemon refuses to start (78: systemd must not restart-loop)
    proc = salesd.start("run", config=cfg)
    assert proc.wait(30) == 78, proc.stderr
    for w in want:
        assert w in proc.stderr

    # a primary_conninfo that names a standby is refused the same way
    cfg = salesd.write_config(sdb.standby, ch18_db, {"postgres.primary_conninfo": sdb.standby.conninfo_nopw})
    r = salesd.run("once", config=cfg)
    assert r.returncode == 78 and "(postgres.primary_conninfo) is a standby too" in r.stderr, r.stderr


def test_primary_conninfo_on_a_primary_is_used_alone_with_a_warning(sdb, ch18_db, salesd):
    """After a promotion postgres.conninfo is a primary: salesd reads it
    alone, as without a standby, and says so."""
    cfg = salesd.write_config(sdb.primary, ch18_db, {"postgres.primary_conninfo": sdb.standby.conninfo_nopw})
    run_ok(salesd, cfg, "init-schema")
    r = run_ok(salesd, cfg, "once")
    assert "postgres.conninfo is not a hot standby (promoted?), so postgres.primary_conninfo is not used" in r.stderr


def test_the_advisory_lock_is_taken_on_the_primary(sdb, ch18_db, salesd):
    """HA: another instance holding the lock on the primary makes this one
    skip (exit 75), although it reads the standby."""
    cfg = standby_config(salesd, sdb, ch18_db)
    run_ok(salesd, cfg, "init-schema")
    with sdb.primary.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(7345001)")
        r = salesd.run("once", config=cfg)
        assert r.returncode == 75, r.stderr
        assert "another instance holds the postgres advisory lock 7345001" in r.stderr
    run_ok(salesd, cfg, "once")


def test_the_primary_password_never_shows(sdb, ch18_db, salesd, pg_standby_server):
    secret = sdb.primary.password
    inline = sdb.primary.server.conninfo(sdb.primary.name, user=sdb.primary.user, password=secret)
    port = free_port()
    cfg = daemon_config(salesd, sdb.standby, ch18_db, port=port, log_level="debug", run_on_start=True,
                        **{"postgres.primary_conninfo": inline})
    r = run_ok(salesd, cfg, "check-config")
    assert secret not in r.stdout + r.stderr
    assert "primary_conninfo:" in r.stdout and "password=********" in r.stdout
    # SALESD_POSTGRES_PRIMARY_CONNINFO overrides the file, masked the same way
    r = salesd.run("check-config", config=cfg, env={"SALESD_POSTGRES_PRIMARY_CONNINFO": inline + " application_name=x"})
    assert r.returncode == 0 and "application_name=x" in r.stdout and secret not in r.stdout + r.stderr

    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"\(trigger start\): success")
    body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert proc.stop() == 0
    assert secret not in proc.stderr + proc.stdout + body + metrics

    # errors about the primary name it, never its password
    bad = sdb.primary.server.conninfo(sdb.primary.name, user=sdb.primary.user, password=secret).replace(
        f"port={sdb.primary.port}", f"port={free_port()}")
    cfg = salesd.write_config(sdb.standby, ch18_db, {"postgres.primary_conninfo": bad}, filename="bad.yaml")
    r = salesd.run("once", config=cfg)
    assert r.returncode == 69, r.stderr
    assert "cannot connect to postgres host '127.0.0.1'" in r.stderr and "check postgres.primary_conninfo" in r.stderr
    assert secret not in r.stderr + r.stdout
    pg_standby_server.replay_pause()
    try:
        sdb.commit("INSERT INTO orders VALUES (9, 1, 'completed', now(), DEFAULT)")
        cfg = salesd.write_config(sdb.standby, ch18_db, {"postgres.primary_conninfo": inline,
                                                          "postgres.max_replica_lag": "1s"}, filename="lag.yaml")
        r = salesd.run("once", config=cfg)
        assert r.returncode == 69 and "max_replica_lag" in r.stderr, r.stderr
        assert secret not in r.stderr + r.stdout
        assert secret not in str(oracle.ch_runs(ch18_db))
    finally:
        pg_standby_server.replay_resume()


def test_notify_on_the_primary_triggers_a_run_reading_the_standby(sdb, ch18_db, salesd):
    cfg = standby_config(salesd, sdb, ch18_db, run_on_start=False, schedule="0 0 1 1 *", **{
        "notify.channel": CHANNEL, "notify.debounce": "100ms", "http.listen": ""})
    run_ok(salesd, cfg, "init-schema")
    proc = salesd.start("run", config=cfg)
    proc.wait_for(f"listening on postgres channel '{CHANNEL}' \\(host '127.0.0.1' port {sdb.primary.port}\\)")
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', now(), DEFAULT);"
               "INSERT INTO order_items VALUES (1, 1, 1, 2, 3.50, 1.00, DEFAULT)")
    wait_until(lambda: runs(ch18_db, "notify", "success"), what="a notify run")
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert day_revenue(ch18_db, today) == [(Decimal("7.00"), 1)]
    assert f"postgres {where(sdb.standby)}: aggregate affected days" in proc.stderr
    assert proc.stop(signal.SIGTERM) == 0, proc.stderr[-3000:]


def test_sigterm_ends_a_run_waiting_for_replay(sdb, ch18_db, salesd, pg_standby_server):
    cfg = standby_config(salesd, sdb, ch18_db, run_on_start=True, schedule="0 0 1 1 *",
                         **{"postgres.max_replica_lag": "5m", "http.listen": ""})
    run_ok(salesd, cfg, "init-schema")
    pg_standby_server.replay_pause()
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', now(), DEFAULT)")
    proc = salesd.start("run", config=cfg)
    proc.wait_for(f"postgres {re.escape(where(sdb.standby))}: pg_last_wal_replay_lsn")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr[-3000:]
    took = time.monotonic() - t0
    assert "(trigger start): failed" in proc.stderr and "cancelled: salesd is stopping" in proc.stderr
    assert "work still in progress" not in proc.stderr  # cancelled, not abandoned
    print(f"stopped {took:.2f} s after SIGTERM while waiting for replay")


def test_a_run_whose_primary_session_dies_writes_nothing(sdb, ch18_db, salesd, pg_standby_server):
    """The lock lives in the run's session on the primary: when that session
    is gone (another host may hold the lock by now), the fence before each
    ClickHouse write stops the run, although its standby session is fine."""
    cfg = standby_config(salesd, sdb, ch18_db, **STRICT)
    run_ok(salesd, cfg, "init-schema")
    pg_standby_server.replay_pause()  # before the commit: the run must wait for it
    sdb.commit("INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
               "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT)")
    proc = salesd.start("once", config=cfg)
    proc.wait_for(f"postgres {re.escape(where(sdb.standby))}: pg_last_wal_replay_lsn")
    killed = sdb.primary.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'salesd' AND datname = %s",
        (sdb.primary.name,),
    )
    assert killed == [(True,)]
    pg_standby_server.replay_resume()
    assert proc.wait(60) == 1, proc.stderr[-3000:]
    assert "lock lost" in proc.stderr and "aggregate affected days" in proc.stderr
    assert day_revenue(ch18_db, "2026-01-10") == [], proc.stderr[-6000:]
    assert watermark(ch18_db) is None
