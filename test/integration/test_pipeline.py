"""The core pipeline (SPEC §2-§4) end to end: Postgres -> salesd -> ClickHouse,
on both ClickHouse backends (the ch_db fixture: Debian's 18.16 server and
the current engine through chdb).

Every expectation comes from test/harness/oracle.py, which recomputes the
metrics from the source rows with Python decimals; ClickHouse is always read
with FINAL for values and without it for "was a row written".
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from harness import oracle
from harness.oracle import DayMetrics

TZ = "America/New_York"
STATUSES = ["completed", "shipped"]
TOMBSTONES = "public.salesd_tombstones"
D = dt.date.fromisoformat


# ---------------------------------------------------------------- helpers


class Source:
    """Writes orders/items into the test's Postgres database.  Rows start with
    updated_at an hour in the past, as in a shop that has been running: the
    watermark after the first run then sits an hour back, and only what a
    test changes afterwards is newer than watermark - overlap."""

    def __init__(self, pg):
        self.pg = pg
        self.next_order = 1000
        self.next_item = 100000

    def order(self, ts: str, status: str = "completed", items=()) -> int:
        oid = self.next_order
        self.next_order += 1
        self.pg.execute(
            "INSERT INTO orders (order_id, customer_id, status, order_date, updated_at) "
            "VALUES (%s, 7, %s, %s::timestamptz, now() - interval '1 hour')",
            (oid, status, ts),
        )
        for qty, price, cost in items:
            self.item(oid, qty, price, cost)
        return oid

    def item(self, order_id: int, qty: int, price: str, cost: str) -> int:
        iid = self.next_item
        self.next_item += 1
        self.pg.execute(
            "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at) "
            "VALUES (%s, %s, 1, %s, %s::numeric, %s::numeric, now() - interval '1 hour')",
            (iid, order_id, qty, price, cost),
        )
        return iid

    def bulk_items(self, order_id: int, n: int, qty_mod: int, price: str, cost: str) -> None:
        """n items with quantity 1..qty_mod cycling, in one statement."""
        first = self.next_item
        self.next_item += n
        self.pg.execute(
            "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at) "
            "SELECT %s + g, %s, 2, 1 + g %% %s, %s::numeric, %s::numeric, now() - interval '1 hour' "
            "FROM generate_series(0, %s - 1) AS g",
            (first, order_id, qty_mod, price, cost, n),
        )


def load_tricky(src: Source) -> dict:
    """The data set with every trap we know of.  Returns named order/item ids."""
    ids = {}
    # 2024-03-09 (NY): the last second of the day; negative profit; a cancelled order.
    ids["a1"] = src.order("2024-03-09 23:59:59-05", "completed", [(3, "0.10", "0.20")])
    src.order("2024-03-09 12:00:00-05", "cancelled", [(1, "100.00", "50.00")])
    # 2024-03-10, the 23-hour DST day: its first and last second; an order
    # without items; AOV 0.05 / 2 = 0.025 -> 0.03 (half away from zero).
    ids["b1"] = src.order("2024-03-10 00:00:00-05", "completed", [(1, "0.05", "0.00")])
    src.order("2024-03-10 23:59:59-04", "shipped")
    src.order("2024-03-10 03:30:00-04", "refunded", [(2, "5.00", "1.00")])
    # 2024-03-11: midnight after the DST change; revenue exactly 3.10 (18.16
    # prints 3.10, the current engine 3.1); a pending order.
    ids["c1"] = src.order("2024-03-11 00:00:00-04", "completed", [(1, "3.10", "1.00")])
    ids["c1_item"] = src.next_item - 1
    src.order("2024-03-11 10:00:00-04", "pending", [(1, "7.00", "7.00")])
    # 2024-11-03, the 25-hour day: 01:30 happens twice; the last second.
    ids["d1"] = src.order("2024-11-03 01:30:00-04", "completed", [(2, "1.25", "0.50")])
    src.order("2024-11-03 01:30:00-05", "shipped", [(1, "2.50", "3.00")])
    src.order("2024-11-03 23:59:59-05", "completed", [(1, "0.01", "0.00")])
    src.order("2024-11-02 23:59:59-04", "completed", [(1, "9.99", "1.00")])
    # 2024-05-01: 997 items at 0.10 (a float sum drifts), quantities 1..3.
    for k in range(3):
        oid = src.order(f"2024-05-01 1{k}:00:00-04", "completed")
        src.bulk_items(oid, 997 if k == 0 else 10, 3, "0.10", "0.07")
    # 2024-05-02: a discount line makes revenue -0.05 over 2 orders:
    # AOV -0.025 -> -0.03 (half away from zero, not half up, not half even).
    ids["f1"] = src.order("2024-05-02 09:00:00-04", "completed", [(1, "0.05", "0.00"), (1, "-0.10", "0.00")])
    src.order("2024-05-02 10:00:00-04", "completed")
    # 2024-06-14 (NY) from UTC midnight of the 15th.
    src.order("2024-06-15 00:00:00+00", "completed", [(1, "1.00", "0.50")])
    # 2024-07-04: close to the Decimal(15,2) limit, still fitting; AOV
    # 4994999999995.005 -> 4994999999995.01.
    src.order("2024-07-04 12:00:00-04", "completed", [(999, "9999999999.99", "0.00")])
    src.order("2024-07-04 13:00:00-04", "shipped", [(999, "0.00", "9999999999.99")])
    # 2024-07-05: 4e9 items sold (fits UInt32, not a 32-bit signed int);
    # profit close to the negative limit.
    src.order("2024-07-05 12:00:00-04", "completed", [(2000000000, "0.00", "0.00"), (2000000000, "0.00", "0.00")])
    src.order("2024-07-05 13:00:00-04", "completed", [(999, "0.00", "9999999999.99")])
    # 2024-07-06: only a cancelled order: a source day with a zero row.
    src.order("2024-07-06 12:00:00-04", "cancelled", [(1, "10.00", "5.00")])
    return ids


def today(tz: str = TZ) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def expected(pg, tz: str = TZ, statuses=STATUSES):
    orders, items = oracle.read_source(pg.query)
    return oracle.compute(orders, items, tz, statuses), orders


def write_config(salesd, pg_db, ch_db, **overrides):
    base = {
        "timezone": TZ,
        "postgres.completed_statuses": STATUSES,
        "postgres.tombstones_table": TOMBSTONES,
        # All rows of a test's initial load carry nearly the same updated_at;
        # with the default 15m look-back every later run would see them all
        # as changed.  0s makes "affected days" exact; the default overlap is
        # exercised by test_rerun_without_change_writes_nothing.
        "overlap": "0s",
    }
    base.update(overrides)
    return salesd.write_config(pg_db, ch_db, base)


def run_ok(salesd, cfg, *args):
    r = salesd.run(*args, config=cfg)
    assert r.returncode == 0, f"salesd {' '.join(args)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def assert_matches_oracle(ch_db, pg_db, tz=TZ, statuses=STATUSES):
    """Every stored day equals the oracle (a zero row where there are no
    completed orders), and every day with source rows has a row."""
    exp, orders = expected(pg_db, tz, statuses)
    got = oracle.ch_metrics(ch_db)
    want = oracle.metrics_for(exp, got.keys())
    bad = {d: (got[d], want[d]) for d in got if got[d] != want[d]}
    assert not bad, f"days differing from the oracle (got, want): {bad}"
    missing = oracle.source_days(orders, tz) - got.keys()
    assert not missing, f"days with source rows but no stored row: {sorted(missing)}"
    return got


def pg_clock_us(pg) -> int:
    return int(pg.query("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")[0][0])


def parse_watermark(value: str) -> dt.datetime:
    """The stored watermark as an aware datetime (RFC 3339 text or Unix
    microseconds)."""
    if re.fullmatch(r"\d+", value):
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=int(value))
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_runs(ch_db, before_ids):
    return [r for r in oracle.ch_runs(ch_db) if r["run_id"] not in before_ids]


def run_once_and_diff(salesd, cfg, ch_db, *args):
    """Runs salesd once (args: extra CLI args) and returns (changed days,
    before versions, after versions, the run row)."""
    before = oracle.ch_versions(ch_db)
    runs_before = {r["run_id"] for r in oracle.ch_runs(ch_db)}
    run_ok(salesd, cfg, "once", *args)
    after = oracle.ch_versions(ch_db)
    for day, v in before.items():
        assert day in after, f"day {day} lost its row"
        assert after[day] >= v, f"version of {day} went back: {v} -> {after[day]}"
    changed = {d for d in after if before.get(d) != after[d]}
    for d in changed:
        if d in before:
            assert after[d] > before[d]
    runs = new_runs(ch_db, runs_before)
    assert len(runs) == 1, f"expected one salesd_runs row for the run, got {runs}"
    return changed, before, after, runs[0]


@pytest.fixture
def tricky(pg_db, ch_db, salesd):
    src = Source(pg_db)
    ids = load_tricky(src)
    cfg = write_config(salesd, pg_db, ch_db)
    run_ok(salesd, cfg, "init-schema")
    return src, ids, cfg


# ---------------------------------------------------------------- tests


def test_first_run_fills_history_exactly(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    clock_before = pg_clock_us(pg_db)
    run_ok(salesd, cfg, "once")
    clock_after = pg_clock_us(pg_db)
    got = assert_matches_oracle(ch_db, pg_db)

    # version is the Postgres server's clock in microseconds at the run.
    for day, v in oracle.ch_versions(ch_db).items():
        assert clock_before <= v <= clock_after, f"{day}: version {v} is not the source clock of the run"
    # computed_at is written as Unix seconds: printed in UTC it is now.
    for (stamp,) in ch_db.rows("SELECT toString(computed_at) FROM daily_sales_stats"):
        t = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc)
        assert abs((dt.datetime.now(dt.timezone.utc) - t).total_seconds()) < 300, stamp
    # The shipped view shows the same as FINAL.
    view = ch_db.rows(oracle.STATS_SELECT.replace("daily_sales_stats FINAL", "daily_sales_stats_latest"))
    assert view == ch_db.rows(oracle.STATS_SELECT)
    # The watermark is the greatest updated_at seen (no other transaction
    # was open, so the late-commit guard does not hold it back).
    newest = pg_db.query(
        "SELECT max(t) FROM (SELECT max(updated_at) AS t FROM orders UNION ALL "
        "SELECT max(updated_at) FROM order_items) AS x"
    )[0][0]
    assert parse_watermark(oracle.ch_watermark(ch_db)) == newest

    # Spot checks written out by hand, so the oracle itself is checked too.
    assert got[D("2024-03-09")] == DayMetrics(1, 3, Decimal("0.30"), Decimal("0.60"), Decimal("-0.30"), Decimal("0.30"))
    assert got[D("2024-03-10")] == DayMetrics(2, 1, Decimal("0.05"), Decimal("0.00"), Decimal("0.05"), Decimal("0.03"))
    assert got[D("2024-03-11")].total_revenue == Decimal("3.10")
    assert got[D("2024-11-03")].total_orders == 3
    assert got[D("2024-11-02")].total_orders == 1
    assert got[D("2024-05-01")].total_orders == 3
    assert got[D("2024-05-02")].average_order_value == Decimal("-0.03")
    assert got[D("2024-05-02")].total_profit == Decimal("-0.05")
    assert got[D("2024-06-14")].total_orders == 1 and D("2024-06-15") not in got
    assert got[D("2024-07-04")] == DayMetrics(
        2,
        1998,
        Decimal("9989999999990.01"),
        Decimal("9989999999990.01"),
        Decimal("0.00"),
        Decimal("4994999999995.01"),
    )
    assert got[D("2024-07-05")].total_items_sold == 4_000_000_999
    assert got[D("2024-07-05")].total_profit == Decimal("-9989999999990.01")
    assert got[D("2024-07-06")].is_zero()
    # Today (in the configured zone) has a row even without orders.
    assert today() in got and got[today()].is_zero()


def test_rerun_without_change_writes_nothing(tricky, pg_db, ch_db, salesd):
    src, ids, _ = tricky
    # The default overlap: every later run recomputes the whole initial load.
    cfg = write_config(salesd, pg_db, ch_db, overlap="15m")
    run_ok(salesd, cfg, "once")
    count = oracle.ch_count(ch_db)
    versions = oracle.ch_versions(ch_db)

    changed, *_, run = run_once_and_diff(salesd, cfg, ch_db)
    assert not changed and oracle.ch_count(ch_db) == count
    assert run["days_written"] == 0 and run["status"] == "success"

    # The 3.10 day recomputed explicitly: equal as a value (the current
    # engine prints 3.1), so no new version.
    changed, *_ = run_once_and_diff(salesd, cfg, ch_db, "--date", "2024-03-11")
    assert not changed and oracle.ch_count(ch_db) == count

    # A no-op update bumps updated_at: the day is affected, recomputed, equal.
    pg_db.execute("UPDATE order_items SET price = price WHERE order_item_id = %s", (ids["c1_item"],))
    changed, *_, run = run_once_and_diff(salesd, cfg, ch_db)
    assert not changed and oracle.ch_count(ch_db) == count
    assert run["days_recomputed"] >= 3  # today, yesterday, 2024-03-11
    assert oracle.ch_versions(ch_db) == versions
    assert_matches_oracle(ch_db, pg_db)


def _reconcile_days():
    return {today(), today() - dt.timedelta(days=1)}


def test_changes_touch_exactly_the_right_days(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    run_ok(salesd, cfg, "once")
    assert_matches_oracle(ch_db, pg_db)

    def step(expect_changed: set, what: str):
        changed, before, after, run = run_once_and_diff(salesd, cfg, ch_db)
        assert changed == expect_changed, f"{what}: days with a new version {sorted(changed)}, expected {sorted(expect_changed)}"
        assert run["days_written"] == len(expect_changed), f"{what}: {run}"
        # Affected = today + reconcile_days + the changed days, nothing more.
        assert run["days_recomputed"] == len(_reconcile_days() | expect_changed), f"{what}: {run}"
        assert_matches_oracle(ch_db, pg_db)

    # An item of an earlier day updated.
    pg_db.execute("UPDATE order_items SET quantity = 5 WHERE order_id = %s", (ids["a1"],))
    step({D("2024-03-09")}, "item quantity updated")

    # An order cancelled: 2024-03-11 loses its only completed order -> zero row.
    pg_db.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = %s", (ids["c1"],))
    step({D("2024-03-11")}, "order cancelled")
    assert oracle.ch_metrics(ch_db)[D("2024-03-11")].is_zero()

    # An item deleted: only the tombstone reveals the day.
    pg_db.execute("DELETE FROM order_items WHERE order_id = %s", (ids["d1"],))
    step({D("2024-11-03")}, "item deleted")

    # An order moved to another day: both days change; the old one through
    # the tombstone.
    pg_db.execute("UPDATE orders SET order_date = '2024-05-03 12:00:00-04' WHERE order_id = %s", (ids["b1"],))
    step({D("2024-03-10"), D("2024-05-03")}, "order_date moved")

    # An item moved to an order of another day: the old order's day through
    # the tombstone, the new one through the item's updated_at.
    pg_db.execute("UPDATE order_items SET order_id = %s WHERE order_id = %s", (ids["b1"], ids["a1"]))
    step({D("2024-03-09"), D("2024-05-03")}, "item moved to another order")

    # An order deleted with its items.
    pg_db.execute("DELETE FROM order_items WHERE order_id = %s", (ids["f1"],))
    pg_db.execute("DELETE FROM orders WHERE order_id = %s", (ids["f1"],))
    step({D("2024-05-02")}, "order deleted")

    # No two rows of a day share a version.
    allv = oracle.ch_all_versions(ch_db)
    assert len(allv) == len(set(allv)), "two rows of one day share a version"


def test_day_losing_last_completed_order_becomes_zero_row(pg_db, ch_db, salesd):
    src = Source(pg_db)
    keep = src.order("2024-02-01 12:00:00-05", "completed", [(1, "5.00", "1.00")])
    lose = src.order("2024-02-02 12:00:00-05", "completed", [(2, "5.00", "1.00")])
    src.order("2024-02-02 13:00:00-05", "pending", [(1, "5.00", "1.00")])
    cfg = write_config(salesd, pg_db, ch_db)
    run_ok(salesd, cfg, "init-schema")
    run_ok(salesd, cfg, "once")
    assert oracle.ch_metrics(ch_db)[D("2024-02-02")].total_orders == 1
    pg_db.execute("UPDATE orders SET status = 'refunded' WHERE order_id = %s", (lose,))
    changed, *_ = run_once_and_diff(salesd, cfg, ch_db)
    assert changed == {D("2024-02-02")}
    got = oracle.ch_metrics(ch_db)
    assert got[D("2024-02-02")] == DayMetrics()
    assert got[D("2024-02-01")].total_orders == 1
    assert keep
    assert_matches_oracle(ch_db, pg_db)


def test_overflow_fails_loudly(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    run_ok(salesd, cfg, "once")
    wm = oracle.ch_watermark(ch_db)
    assert wm
    count = oracle.ch_count(ch_db)
    runs_before = {r["run_id"] for r in oracle.ch_runs(ch_db)}

    # 2024-08-01: revenue 9999999999.99 * 1001 >= 10^13 does not fit
    # Decimal(15,2); cost, profit and AOV (2 orders) still fit, so the only
    # column that can be named is total_revenue.
    oid = src.order("2024-08-01 12:00:00-04", "completed", [(1000, "9999999999.99", "9999999999.99"), (1, "9999999999.99", "0.00")])
    src.order("2024-08-01 13:00:00-04", "completed")
    pg_db.execute("UPDATE orders SET updated_at = now() WHERE order_id = %s", (oid,))
    exp, _ = expected(pg_db)
    assert exp[D("2024-08-01")].overflowing_columns() == ["total_revenue"]

    r = salesd.run("once", config=cfg)
    msg = r.stdout + r.stderr
    assert r.returncode == 1, f"exit {r.returncode}\n{msg}"
    assert "2024-08-01" in msg, f"the error does not name the day:\n{msg}"
    assert "total_revenue" in msg, f"the error does not name the column:\n{msg}"
    assert D("2024-08-01") not in oracle.ch_metrics(ch_db)
    assert oracle.ch_count(ch_db) == count
    assert not [d for d, _ in oracle.ch_all_versions(ch_db) if d == D("2024-08-01")], "a row was written for the overflowing day"
    assert oracle.ch_watermark(ch_db) == wm, "the watermark moved after a failed run"
    runs = new_runs(ch_db, runs_before)
    assert len(runs) == 1 and runs[0]["status"] == "failed", runs
    assert "total_revenue" in runs[0]["error"], runs

    # Fixed at the source: the next run picks the day up (the watermark did
    # not move past it) and writes it.
    pg_db.execute("UPDATE order_items SET quantity = 1 WHERE order_id = %s", (oid,))
    run_ok(salesd, cfg, "once")
    assert D("2024-08-01") in oracle.ch_metrics(ch_db)
    assert_matches_oracle(ch_db, pg_db)


def test_once_dates_recompute_only_those_days(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    run_ok(salesd, cfg, "once")
    wm = oracle.ch_watermark(ch_db)
    stale_before = oracle.ch_metrics(ch_db)

    # Change three days; name two of them.
    pg_db.execute("UPDATE order_items SET quantity = 9 WHERE order_id = %s", (ids["a1"],))  # 2024-03-09
    pg_db.execute("UPDATE order_items SET quantity = 9 WHERE order_id = %s", (ids["c1"],))  # 2024-03-11
    pg_db.execute("UPDATE order_items SET quantity = 9 WHERE order_id = %s", (ids["d1"],))  # 2024-11-03
    changed, _, _, run = run_once_and_diff(salesd, cfg, ch_db, "--date", "2024-03-09", "--date", "2024-11-03")
    assert changed == {D("2024-03-09"), D("2024-11-03")}
    assert run["days_recomputed"] == 2 and run["days_written"] == 2 and run["trigger"] == "cli"
    exp, _ = expected(pg_db)
    got = oracle.ch_metrics(ch_db)
    assert got[D("2024-03-09")] == exp[D("2024-03-09")]
    assert got[D("2024-11-03")] == exp[D("2024-11-03")]
    assert got[D("2024-03-11")] == stale_before[D("2024-03-11")], "a day not named was recomputed"
    assert oracle.ch_watermark(ch_db) == wm, "once --date moved the watermark"

    # A named day outside the history gets a zero row.
    changed, *_ = run_once_and_diff(salesd, cfg, ch_db, "--date", "2020-01-01")
    assert changed == {D("2020-01-01")} and oracle.ch_metrics(ch_db)[D("2020-01-01")].is_zero()
    assert oracle.ch_watermark(ch_db) == wm

    # The normal run still sees 2024-03-11 (the watermark did not move).
    changed, *_ = run_once_and_diff(salesd, cfg, ch_db)
    assert changed == {D("2024-03-11")}
    assert_matches_oracle(ch_db, pg_db)


def test_backfill_recomputes_the_range(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    run_ok(salesd, cfg, "once")
    wm = oracle.ch_watermark(ch_db)
    stale = oracle.ch_metrics(ch_db)
    pg_db.execute("UPDATE order_items SET quantity = 9 WHERE order_id IN (%s, %s, %s)", (ids["a1"], ids["c1"], ids["d1"]))
    before_runs = {r["run_id"] for r in oracle.ch_runs(ch_db)}
    before = oracle.ch_versions(ch_db)
    r = run_ok(salesd, cfg, "backfill", "--from", "2024-03-08", "--to", "2024-03-12")
    after = oracle.ch_versions(ch_db)
    rng = {D("2024-03-08") + dt.timedelta(days=k) for k in range(5)}
    assert rng <= after.keys(), "every day of the range must end with a row"
    changed = {d for d in after if before.get(d) != after[d]}
    # Changed: the two modified days in the range, plus the range's days
    # that had no row yet (03-08 and 03-12 have no orders).
    assert changed == {D("2024-03-09"), D("2024-03-11"), D("2024-03-08"), D("2024-03-12")}, sorted(changed)
    got = oracle.ch_metrics(ch_db)
    exp, _ = expected(pg_db)
    for d in rng:
        assert got[d] == exp.get(d, DayMetrics()), d
    assert got[D("2024-11-03")] == stale[D("2024-11-03")], "a day outside the range was recomputed"
    assert oracle.ch_watermark(ch_db) == wm, "backfill moved the watermark"
    runs = new_runs(ch_db, before_runs)
    assert len(runs) == 1 and runs[0]["days_recomputed"] == 5 and runs[0]["trigger"] == "cli", runs
    assert r.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("once", "--date", "2024-02-30"),
        ("once", "--date", "yesterday"),
        ("once", "--date", "2024-3-1"),
        ("once", "--date"),
        ("backfill", "--from", "2024-05-10", "--to", "2024-05-01"),
        ("backfill", "--from", "2024-05-01"),
        ("backfill", "--to", "2024-05-01"),
        ("backfill", "--from", "2024-13-01", "--to", "2024-13-02"),
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_dates_exit_64(tricky, ch_db, salesd, args):
    src, ids, cfg = tricky
    count = oracle.ch_count(ch_db)
    r = salesd.run(*args, config=cfg)
    assert r.returncode == 64, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert r.stderr.strip(), "a usage error must say what is wrong"
    assert oracle.ch_count(ch_db) == count
    assert oracle.ch_watermark(ch_db) is None


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_runs_table_gets_one_row_per_run(tricky, pg_db, ch_db, salesd):
    src, ids, cfg = tricky
    run_ok(salesd, cfg, "once")
    runs = oracle.ch_runs(ch_db)
    assert len(runs) == 1
    r = runs[0]
    assert UUID_RE.match(r["run_id"]), r
    assert r["trigger"] == "cli" and r["status"] == "success" and r["error"] == ""
    stored_days = len(oracle.ch_versions(ch_db))
    assert r["days_written"] == stored_days == oracle.ch_count(ch_db)
    assert r["days_recomputed"] >= r["days_written"]
    assert r["instance"]
    assert r["started_at"] <= r["finished_at"]
    started = dt.datetime.fromisoformat(r["started_at"]).replace(tzinfo=dt.timezone.utc)
    # DateTime('UTC') holds Unix seconds; printed in UTC it must be close to now.
    assert abs((dt.datetime.now(dt.timezone.utc) - started).total_seconds()) < 300, r

    run_ok(salesd, cfg, "once")
    run_ok(salesd, cfg, "once", "--date", "2024-03-09")
    run_ok(salesd, cfg, "backfill", "--from", "2024-03-01", "--to", "2024-03-03")
    runs = oracle.ch_runs(ch_db)
    assert len(runs) == 4
    assert len({x["run_id"] for x in runs}) == 4
    assert all(x["trigger"] == "cli" and x["status"] == "success" for x in runs), runs
    # The plain rerun recomputes today and yesterday (overlap 0s, no change),
    # --date one day, the backfill three.
    want = [r["days_recomputed"], len(_reconcile_days()), 1, 3]
    assert sorted(x["days_recomputed"] for x in runs) == sorted(want), runs
