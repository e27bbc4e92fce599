"""Faults a run must survive without losing or duplicating a day (SPEC §4,
issue 10): a run that loses its lock mid-write, an insert that keeps running
on the server after the client gave up, and transactions that commit around
the snapshot while `overlap` is 0."""

import random
import threading
import time
from urllib.parse import unquote

import pytest

from harness.relay import DROP, FORWARD, Relay
from harness.servers import wait_until
from test_pipeline import assert_matches_oracle

INSERT_DAYS = "INSERT%20INTO%20daily_sales_stats"


def seed_days(pg_db, days=5, per_day=4):
    """A few completed orders on each of the last `days` days (UTC)."""
    oid = iid = 0
    for back in range(days):
        for k in range(per_day):
            oid += 1
            pg_db.execute(
                "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES"
                " (%s, 1, 'completed', date_trunc('day', now()) - %s * interval '1 day' + interval '1 hour' * %s)",
                (oid, back, k),
            )
            for q in (1, 2):
                iid += 1
                pg_db.execute(
                    "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price)"
                    " VALUES (%s, %s, 1, %s, 10.25, 4.10)",
                    (iid, oid, q),
                )
    return oid, iid


def no_duplicate_versions(ch_db):
    dup = ch_db.rows(
        "SELECT date, version, count() AS n FROM daily_sales_stats GROUP BY date, version HAVING n > 1"
        " FORMAT TabSeparated"
    )
    assert dup == [], f"two rows of a day share a version: {dup}"


class StallingRelay(Relay):
    """Holds the first INSERT into daily_sales_stats until released, then
    loses it without an answer (the client sees a lost connection)."""

    def __init__(self, upstream_url):
        self.held = threading.Event()
        self.release = threading.Event()
        self._first = True

        def decide(path, body):
            if INSERT_DAYS in path and self._first:
                self._first = False
                self.held.set()
                self.release.wait(60)
                return DROP
            return FORWARD

        super().__init__(upstream_url, decide)


def test_a_run_that_lost_its_lock_never_overwrites_newer_numbers(salesd, pg_db, ch18_db):
    """A's insert stalls; A's Postgres session dies (its lock with it); B
    takes the lock and writes newer numbers; A's insert then fails and A
    retries.  A must not write its older snapshot over B's rows."""
    seed_days(pg_db, days=2)
    cfg_b = salesd.write_config(pg_db, ch18_db, filename="b.yaml", instance="host-b")
    assert salesd.run("init-schema", config=cfg_b).returncode == 0
    relay = StallingRelay(ch18_db.url)
    try:
        cfg_a = salesd.write_config(
            pg_db, ch18_db, filename="a.yaml", instance="host-a",
            **{"clickhouse.url": relay.url, "clickhouse.timeout": "30s", "clickhouse.retries": 3},
        )
        a = salesd.start("once", config=cfg_a)
        assert relay.held.wait(30), f"A never inserted; stderr:\n{a.stderr}"
        # The shop changes; A's session dies (server restart, NAT timeout...).
        pg_db.execute("UPDATE order_items SET quantity = quantity + 5")
        killed = pg_db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
        assert [tuple(k) for k in killed] == [(True,)], killed
        r = salesd.run("once", config=cfg_b)
        assert r.returncode == 0, r.stderr
        relay.release.set()
        assert a.wait(60) != 0, a.stderr
    finally:
        relay.release.set()
        relay.close()
    assert "lock lost" in a.stderr, a.stderr
    assert_matches_oracle(ch18_db, pg_db, tz="UTC", statuses=["completed"])
    no_duplicate_versions(ch18_db)


class LingeringInsertRelay(Relay):
    """Turns the first INSERT into daily_sales_stats into an INSERT ... SELECT
    of the same rows that sleeps on the server (same query_id), and answers
    nothing: the client times out while the server still works on it."""

    COLUMNS = (
        "date, total_orders, total_items_sold, total_revenue, total_cost, total_profit, average_order_value,"
        " computed_at, version"
    )

    def __init__(self, upstream_url, ch_db, sleep_s):
        self.started = threading.Event()
        self.outcome = None  # "landed", or the server's error (cancelled by the retry)
        self._first = True

        def decide(path, body):
            if INSERT_DAYS not in path or not self._first:
                return FORWARD
            self._first = False
            query_id = unquote(path.split("query_id=")[1].split("&")[0]) if "query_id=" in path else None
            selects = []
            for line in body.decode().splitlines():
                d, o, i, rev, cost, profit, aov, at, ver = line.split("\t")
                selects.append(
                    f"SELECT toDate('{d}') AS c1, toUInt32({o}) AS c2, toUInt32({i}) AS c3,"
                    f" toDecimal64('{rev}', 2) AS c4, toDecimal64('{cost}', 2) AS c5, toDecimal64('{profit}', 2) AS c6,"
                    f" toDecimal64('{aov}', 2) AS c7, toDateTime({int(at)}) AS c8, toUInt64({ver}) AS c9"
                )
            sql = (
                f"INSERT INTO daily_sales_stats ({self.COLUMNS}) SELECT * FROM ("
                + " UNION ALL ".join(selects)
                + f") WHERE sleep({sleep_s}) = 0"
            )

            def run():
                self.started.set()
                try:
                    ch_db.query(sql, settings={"query_id": query_id} if query_id else None, timeout=30)
                    self.outcome = "landed"
                except Exception as exc:  # noqa: BLE001 - killed by the retry: that is the point
                    self.outcome = str(exc)

            threading.Thread(target=run, daemon=True).start()
            time.sleep(sleep_s + 1.5)  # past the client's timeout; then no answer
            return DROP

        super().__init__(upstream_url, decide)


def test_an_insert_still_running_on_the_server_is_not_duplicated(salesd, pg_db, ch18_db):
    seed_days(pg_db, days=3)
    cfg = salesd.write_config(pg_db, ch18_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    relay = LingeringInsertRelay(ch18_db.url, ch18_db, sleep_s=3)
    try:
        cfg = salesd.write_config(
            pg_db, ch18_db, **{"clickhouse.url": relay.url, "clickhouse.timeout": "1s", "clickhouse.retries": 3}
        )
        r = salesd.run("once", config=cfg, timeout=120)
    finally:
        relay.close()
    assert relay.started.is_set()
    assert r.returncode == 0, r.stderr
    wait_until(lambda: relay.outcome is not None, timeout=10, what="the lingering insert to end")
    # It either landed late or the retry cancelled it (Code 394); anything
    # else means the test did not make the server work on the insert.
    assert relay.outcome == "landed" or "394" in relay.outcome, relay.outcome
    no_duplicate_versions(ch18_db)
    assert_matches_oracle(ch18_db, pg_db, tz="UTC", statuses=["completed"])


class PausingStateRelay(Relay):
    """Holds the watermark read (SELECT ... salesd_state) until the test says
    go: a slow ClickHouse round trip at a moment the test chooses."""

    def __init__(self, upstream_url):
        self.arrived = threading.Event()
        self.go = threading.Event()

        def decide(path, body):
            if b"FROM salesd_state" in body and not self.go.is_set():
                self.arrived.set()
                self.go.wait(20)
            return FORWARD

        super().__init__(upstream_url, decide)


def test_a_transaction_begun_during_a_slow_watermark_read_is_not_lost(salesd, pg_db, ch18_db):
    """Nothing may sit between the late-commit guard and the snapshot.  While
    the run waits on ClickHouse for the watermark, T1 begins and changes day
    D1 (stays open), T2 changes day D2 later and commits.  The snapshot sees
    T2, not T1; the new watermark must stay below T1's change, or the next
    run (overlap 0s) never looks at D1 again."""
    seed_days(pg_db, days=5)
    cfg = salesd.write_config(pg_db, ch18_db, overlap="0s", reconcile_days=0)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    assert salesd.run("once", config=cfg).returncode == 0
    relay = PausingStateRelay(ch18_db.url)
    t1 = pg_db.connect(autocommit=False)
    try:
        slow = salesd.write_config(
            pg_db, ch18_db, filename="slow.yaml", overlap="0s", reconcile_days=0, **{"clickhouse.url": relay.url}
        )
        run = salesd.start("once", config=slow)
        assert relay.arrived.wait(30), run.stderr
        t1.execute(
            "UPDATE order_items SET quantity = quantity + 7 WHERE order_id IN"
            " (SELECT order_id FROM orders WHERE order_date < date_trunc('day', now()) - interval '2 days'"
            "  AND order_date >= date_trunc('day', now()) - interval '3 days')"
        )
        time.sleep(0.01)
        pg_db.execute(
            "UPDATE order_items SET quantity = quantity + 1 WHERE order_id IN"
            " (SELECT order_id FROM orders WHERE order_date < date_trunc('day', now()) - interval '1 day'"
            "  AND order_date >= date_trunc('day', now()) - interval '2 days')"
        )
        relay.go.set()
        assert run.wait(60) == 0, run.stderr
        t1.commit()
    finally:
        relay.go.set()
        t1.close()
        relay.close()
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    assert_matches_oracle(ch18_db, pg_db, tz="UTC", statuses=["completed"])


def test_concurrent_writers_with_no_overlap_lose_nothing(salesd, pg_db, ch18_db):
    """overlap 0s: only the late-commit guard protects a transaction that
    commits after a run's snapshot with rows stamped before its newest.
    Writers commit short transactions on the last days while runs fire one
    after another; at the end every day is exact."""
    n_orders, _ = seed_days(pg_db, days=5, per_day=6)
    cfg = salesd.write_config(pg_db, ch18_db, overlap="0s", reconcile_days=0)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    assert salesd.run("once", config=cfg).returncode == 0
    stop = threading.Event()
    errors = []

    def writer(seed):
        rng = random.Random(seed)
        conn = pg_db.connect(autocommit=False)
        try:
            while not stop.is_set():
                oid = rng.randint(1, n_orders)
                conn.execute("UPDATE order_items SET quantity = quantity + 1 WHERE order_id = %s", (oid,))
                time.sleep(rng.uniform(0.001, 0.02))  # the transaction stays open a little
                conn.commit()
                time.sleep(rng.uniform(0, 0.02))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    runs = 0
    deadline = time.monotonic() + 12
    try:
        while time.monotonic() < deadline:
            r = salesd.run("once", config=cfg)
            assert r.returncode == 0, r.stderr
            runs += 1
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    assert runs >= 10
    # The writers are done: one more run picks up whatever the last runs
    # could not yet see, and every day must equal the source.
    assert salesd.run("once", config=cfg).returncode == 0
    assert_matches_oracle(ch18_db, pg_db, tz="UTC", statuses=["completed"])
    no_duplicate_versions(ch18_db)
