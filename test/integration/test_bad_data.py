"""Bad data from the source or in ClickHouse (issue 11 items 3, 4, 5, 7, 8):
one row salesd cannot represent fails only what it touches, named (table,
order, column, value); every other day is still written; nothing is ever
written clamped, wrapped or silently short.  What each kind of bad input
gets is the table in docs/design.md ("Faults").

Days are read back as ClickHouse day numbers (toUInt16(date)): 18.16 prints
day 0 (1970-01-01) as 0000-00-00.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import requests

from harness import oracle
from harness.servers import free_port, wait_until

D = dt.date.fromisoformat
EPOCH = dt.date(1970, 1, 1)
TS_FORMAT = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


# ---------------------------------------------------------------- helpers


def stored(ch_db) -> dict[dt.date, tuple]:
    """The latest row of every stored day: {day: (orders, items, revenue,
    cost, version)}, the day from its number (never from text)."""
    rows = ch_db.rows(
        "SELECT toUInt16(date), total_orders, total_items_sold, total_revenue, total_cost, version "
        "FROM daily_sales_stats FINAL ORDER BY date"
    )
    return {
        EPOCH + dt.timedelta(days=int(r[0])): (int(r[1]), int(r[2]), Decimal(r[3]), Decimal(r[4]), int(r[5]))
        for r in rows
    }


def all_row_days(ch_db) -> list[dt.date]:
    """Every physical row's day (all versions)."""
    return [EPOCH + dt.timedelta(days=int(r[0])) for r in ch_db.rows("SELECT toUInt16(date) FROM daily_sales_stats")]


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def reconcile_days() -> set[dt.date]:
    return {today_utc(), today_utc() - dt.timedelta(days=1)}


def order(pg_db, oid, status, order_date, items=(), table="orders", items_table="order_items", updated_at=None):
    pg_db.execute(
        f"INSERT INTO {table} (order_id, customer_id, status, order_date, updated_at)"
        " VALUES (%s, 1, %s, %s::timestamptz, coalesce(%s::timestamptz, now() - interval '1 hour'))",
        (oid, status, order_date, updated_at),
    )
    for k, (qty, price, cost) in enumerate(items):
        pg_db.execute(
            f"INSERT INTO {items_table} (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at)"
            " VALUES (%s, %s, 1, %s, %s::numeric, %s::numeric, coalesce(%s::timestamptz, now() - interval '1 hour'))",
            (oid * 100 + k, oid, qty, price, cost, updated_at),
        )


def loose_views(pg_db):
    """Source tables without the canonical NOT NULLs, behind views (a shop
    whose schema differs, SPEC §1)."""
    pg_db.execute(
        "CREATE TABLE loose_orders (order_id bigint, customer_id bigint, status text, order_date timestamptz,"
        " updated_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE loose_items (order_item_id bigint, order_id bigint, product_id bigint, quantity integer,"
        " price numeric(12,2), cost_price numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now());"
        "CREATE VIEW shop_orders AS SELECT * FROM loose_orders;"
        "CREATE VIEW shop_items AS SELECT * FROM loose_items"
    )
    pg_db.server.grant_read(pg_db.name)
    return {"postgres.orders_table": "public.shop_orders", "postgres.order_items_table": "public.shop_items"}


def config(salesd, pg_db, ch_db, **overrides):
    base = {"overlap": "0s", "postgres.tombstones_table": "public.salesd_tombstones"}
    base.update(overrides)
    cfg = salesd.write_config(pg_db, ch_db, base)
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode == 0, r.stderr
    return cfg


def once(salesd, cfg, *args, expect=0):
    r = salesd.run(*args or ("once",), config=cfg, timeout=300)
    assert r.returncode == expect, f"exit {r.returncode}, expected {expect}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    return r


def run_of(ch_db, r) -> dict:
    """The salesd_runs row of the run whose output is r (runs in the same
    second cannot be told apart by started_at)."""
    m = re.search(r"run ([0-9a-f-]{36}) \(trigger", r.stderr)
    assert m, f"no run summary in the output:\n{r.stderr}"
    rows = [row for row in oracle.ch_runs(ch_db) if row["run_id"] == m.group(1)]
    assert len(rows) == 1, rows
    return rows[0]


def pg_now(pg_db) -> str:
    return pg_db.query(f"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', {TS_FORMAT})")[0][0]


def wait_mutations(ch_db):
    wait_until(
        lambda: ch_db.rows(
            f"SELECT count() FROM system.mutations WHERE database = '{ch_db.database}' AND is_done = 0"
        )[0][0]
        == "0",
        what="the ALTER TABLE DELETE mutation",
    )


# ---------------------------------------------------------------- item 3: order_date


# Values of order_date that fall on no day ClickHouse's Date can store on
# every supported server (1970-01-01..2105-12-31: 18.16 parses later dates
# as day 0).
UNSTORABLE = [
    "0001-01-01 00:00:00+00",
    "1850-06-01 12:00:00+00",
    "1969-12-31 23:59:59+00",
    "2106-01-01 00:00:00+00",
    "2149-06-07 00:00:00+00",
    "10000-01-01 00:00:00+00",
    "0044-03-15 12:00:00+00 BC",
    "infinity",
    "-infinity",
]


def test_orders_of_other_statuses_on_unstorable_days_are_ignored(pg_db, ch_db, salesd):
    """Only completed orders produce metrics (SPEC §2): a cancelled order
    dated 0001-01-01, BC, in year 10000 or at infinity has nothing to write
    and must not stop any run.  The edges of the storable range are written
    and read back (18.16 prints 1970-01-01 as 0000-00-00)."""
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(2, "10.00", "4.00")])
    order(pg_db, 2, "completed", "1970-01-01 00:00:00+00", [(1, "1.00", "0.50")])
    order(pg_db, 3, "completed", "2105-12-31 23:59:59+00", [(1, "3.00", "1.00")])
    for k, value in enumerate(UNSTORABLE):
        order(pg_db, 10 + k, "cancelled", value, [(1, "5.00", "1.00")])
    cfg = config(salesd, pg_db, ch_db)

    r = once(salesd, cfg)
    got = stored(ch_db)
    assert set(got) == {D("2024-05-01"), D("1970-01-01"), D("2105-12-31")} | reconcile_days(), sorted(got)
    assert got[D("2024-05-01")][:4] == (1, 2, Decimal("20.00"), Decimal("8.00"))
    assert got[D("1970-01-01")][:4] == (1, 1, Decimal("1.00"), Decimal("0.50"))
    assert got[D("2105-12-31")][:4] == (1, 1, Decimal("3.00"), Decimal("1.00"))
    assert run_of(ch_db, r)["status"] == "success"
    assert oracle.ch_watermark(ch_db)

    # Every cancelled order changes (the incremental path sees their days);
    # the stored 1970-01-01 and 2105-12-31 rows are read back as equal.
    count = oracle.ch_count(ch_db)
    pg_db.execute("UPDATE orders SET customer_id = 2 WHERE order_id >= 10")
    pg_db.execute("UPDATE orders SET customer_id = 2 WHERE order_id IN (2, 3)")
    run = run_of(ch_db, once(salesd, cfg))
    assert run["status"] == "success" and run["days_written"] == 0, run
    assert oracle.ch_count(ch_db) == count


@pytest.mark.parametrize(
    "value, shown",
    [
        ("1850-06-01 12:00:00+00", "1850-06-01"),
        ("2106-01-01 00:00:00+00", "2106-01-01"),
        ("10000-01-01 00:00:00+00", "10000-01-01"),
        ("0044-03-15 12:00:00+00 BC", "0044-03-15"),
        ("infinity", "infinity"),
    ],
    ids=["1850", "2106", "year-10000", "BC", "infinity"],
)
def test_completed_order_on_unstorable_day_fails_only_itself(pg_db, ch_db, salesd, value, shown):
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(2, "10.00", "4.00")])
    order(pg_db, 77, "completed", value, [(1, "5.00", "1.00")])
    cfg = config(salesd, pg_db, ch_db)

    # The first run (the whole history): every other day is written, the
    # order is named, the run is failed and no watermark is set.
    r = once(salesd, cfg, expect=1)
    assert re.search(rf"orders.*order_id 77.*{re.escape(shown)}", r.stderr), r.stderr
    got = stored(ch_db)
    assert set(got) == {D("2024-05-01")} | reconcile_days(), sorted(got)
    assert set(all_row_days(ch_db)) == set(got), "a row was written for another day (clamped?)"
    run = run_of(ch_db, r)
    assert run["status"] == "failed" and "order_id 77" in run["error"] and shown in run["error"], run
    assert run["days_written"] == len(got), run
    assert oracle.ch_watermark(ch_db) is None

    # Corrected at the source: the next run succeeds.
    pg_db.execute("UPDATE orders SET order_date = '2024-05-02 12:00:00+00' WHERE order_id = 77")
    once(salesd, cfg)
    assert stored(ch_db)[D("2024-05-02")][:4] == (1, 1, Decimal("5.00"), Decimal("1.00"))
    wm = oracle.ch_watermark(ch_db)
    assert wm

    # Broken again, now seen by an incremental run: the day it left becomes
    # a zero row (its tombstone), the order is named again, the watermark
    # stays where it was so the next run sees the order again.
    pg_db.execute("UPDATE orders SET order_date = %s::timestamptz WHERE order_id = 77", (value,))
    r = once(salesd, cfg, expect=1)
    assert "order_id 77" in r.stderr, r.stderr
    assert stored(ch_db)[D("2024-05-02")][:4] == (0, 0, Decimal("0"), Decimal("0"))
    assert oracle.ch_watermark(ch_db) == wm
    r = once(salesd, cfg, expect=1)
    assert "order_id 77" in r.stderr, "the next run no longer sees the order: the watermark moved past it"


def test_completed_order_with_null_order_date_through_a_view(pg_db, ch_db, salesd):
    names = loose_views(pg_db)
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(1, "10.00", "4.00")], "loose_orders", "loose_items")
    order(pg_db, 5, "completed", None, [(1, "7.00", "1.00")], "loose_orders", "loose_items")
    order(pg_db, 6, "cancelled", None, [(1, "9.00", "1.00")], "loose_orders", "loose_items")
    cfg = config(salesd, pg_db, ch_db, **names, **{"postgres.tombstones_table": ""})

    r = once(salesd, cfg, expect=1)
    assert re.search(r"shop_orders.*order_id 5.*order_date is NULL", r.stderr), r.stderr
    assert "order_id 6" not in r.stderr, "a cancelled order was reported"
    assert set(stored(ch_db)) == {D("2024-05-01")} | reconcile_days()
    assert "order_id 5" in run_of(ch_db, r)["error"]

    # The order is cancelled: nothing is missing any more, and the
    # incremental run that sees the NULL day succeeds.
    pg_db.execute("UPDATE loose_orders SET status = 'cancelled', updated_at = now() WHERE order_id = 5")
    once(salesd, cfg)
    assert oracle.ch_watermark(ch_db)
    pg_db.execute("UPDATE loose_orders SET customer_id = 3, updated_at = now() WHERE order_id IN (5, 6)")
    assert run_of(ch_db, once(salesd, cfg))["status"] == "success"


@pytest.mark.parametrize(
    "args",
    [
        ("once", "--date", "1969-12-31"),
        ("once", "--date", "2106-01-01"),
        ("backfill", "--from", "1969-12-25", "--to", "1970-01-05"),
        ("backfill", "--from", "2105-12-30", "--to", "2106-01-02"),
        ("verify", "--from", "1960-01-01", "--to", "1960-01-31"),
    ],
    ids=lambda a: " ".join(a),
)
def test_explicit_days_outside_the_storable_range_are_a_usage_error(pg_db, ch_db, salesd, args):
    order(pg_db, 1, "completed", "1969-12-31 12:00:00+00", [(1, "10.00", "4.00")])
    cfg = config(salesd, pg_db, ch_db)
    r = salesd.run(*args, config=cfg)
    assert r.returncode == 64, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert "1970-01-01" in r.stderr and "2105-12-31" in r.stderr, r.stderr
    assert oracle.ch_count(ch_db) == 0, "a row was written (clamped into the Date range)"


def test_healthz_names_the_unstorable_order(pg_db, ch18_db, salesd):
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(1, "10.00", "4.00")])
    order(pg_db, 42, "completed", "1850-06-01 12:00:00+00", [(1, "5.00", "1.00")])
    port = free_port()
    cfg = salesd.write_config(
        pg_db,
        ch18_db,
        {"run_on_start": True, "schedule": "0 0 1 1 *", "http.listen": f"127.0.0.1:{port}"},
    )
    proc = salesd.start("run", config=cfg)
    proc.wait_for(r"run .* \(trigger start\): failed", timeout=60)
    body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    assert body["last_run"]["status"] == "failed", body
    assert "order_id 42" in body["last_run"]["error"] and "1850-06-01" in body["last_run"]["error"], body
    assert D("2024-05-01") in stored(ch18_db)
    assert proc.stop() == 0, proc.stderr[-3000:]


# ---------------------------------------------------------------- item 4: updated_at


@pytest.mark.parametrize("stamp", ["10000-01-01 00:00:00+00", "infinity"], ids=["year-10000", "infinity"])
def test_updated_at_beyond_the_clock_never_makes_an_unreadable_watermark(pg_db, ch_db, salesd, stamp):
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(1, "10.00", "4.00")])
    order(pg_db, 2, "completed", "2024-05-02 12:00:00+00", [(1, "3.00", "1.00")], updated_at=stamp)
    cfg = config(salesd, pg_db, ch_db, reconcile_days=0)
    once(salesd, cfg)
    wm = oracle.ch_watermark(ch_db)
    assert wm and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wm), wm
    assert wm <= pg_now(pg_db), f"the watermark {wm} is past the source clock"
    # It reads back, and a later change to another day is seen.
    pg_db.execute("UPDATE order_items SET price = 12.00 WHERE order_id = 1")
    once(salesd, cfg)
    assert stored(ch_db)[D("2024-05-01")][2] == Decimal("12.00")


# ---------------------------------------------------------------- item 5: stored version


def test_stored_version_beyond_the_source_clock_fails_that_day(pg_db, ch_db, salesd):
    order(pg_db, 1, "completed", "2024-05-01 12:00:00+00", [(1, "10.00", "4.00")])
    order(pg_db, 2, "completed", "2024-05-02 12:00:00+00", [(1, "3.00", "1.00")])
    cfg = config(salesd, pg_db, ch_db)
    once(salesd, cfg)
    wm = oracle.ch_watermark(ch_db)
    # A row no salesd run can have written: version 2^64-1 (version + 1 wraps).
    ch_db.query(
        "INSERT INTO daily_sales_stats FORMAT TabSeparated",
        data="2024-05-01\t9\t9\t9.00\t9.00\t0.00\t1.00\t0000000000\t18446744073709551615\n",
    )
    pg_db.execute("UPDATE order_items SET price = 20.00 WHERE order_id IN (1, 2)")

    r = once(salesd, cfg, expect=1)
    msg = r.stderr
    assert "2024-05-01" in msg and "18446744073709551615" in msg, msg
    assert "ALTER TABLE" in msg and "DELETE" in msg, f"no remedy given:\n{msg}"
    run = run_of(ch_db, r)
    assert run["status"] == "failed" and "18446744073709551615" in run["error"], run
    assert run["days_written"] == 1, f"the corrupt day was counted as written: {run}"
    assert stored(ch_db)[D("2024-05-02")][2] == Decimal("20.00"), "the other day was not written"
    assert oracle.ch_watermark(ch_db) == wm

    # The remedy named in the message works.
    ch_db.query("ALTER TABLE daily_sales_stats DELETE WHERE date = toDate('2024-05-01') AND version = 18446744073709551615")
    wait_mutations(ch_db)
    once(salesd, cfg)
    assert stored(ch_db)[D("2024-05-01")][:4] == (1, 1, Decimal("20.00"), Decimal("4.00"))


# ---------------------------------------------------------------- item 7: NULL metrics


def test_null_metric_columns_fail_their_day_naming_the_order(pg_db, ch_db, salesd):
    names = loose_views(pg_db)
    t = {"table": "loose_orders", "items_table": "loose_items"}
    order(pg_db, 11, "completed", "2024-05-01 12:00:00+00", [(1, None, "1.00"), (1, "2.00", "1.00")], **t)
    order(pg_db, 12, "completed", "2024-05-02 12:00:00+00", [(None, "2.00", "1.00")], **t)
    order(pg_db, 13, "completed", "2024-05-03 12:00:00+00", [(1, "2.00", None)], **t)
    order(pg_db, 14, "cancelled", "2024-05-04 12:00:00+00", [(None, None, None)], **t)
    order(pg_db, 15, "completed", "2024-05-05 12:00:00+00", [(2, "2.50", "1.00")], **t)
    order(pg_db, 16, "completed", "2024-05-05 13:00:00+00", [], **t)  # no items: not a NULL
    order(pg_db, 17, "completed", "2024-05-06 12:00:00+00", [(-3, "1.00", "1.00")], **t)
    cfg = config(salesd, pg_db, ch_db, **names, **{"postgres.tombstones_table": ""})

    def check(r, days):
        msg = r.stderr
        for day, oid, column in days:
            assert re.search(rf"day {day}: .*order_id {oid}.*{column}", msg), f"{day}/{oid}/{column} not named:\n{msg}"
        got = stored(ch_db)
        for day, *_ in days:
            assert D(day) not in got, f"{day} was written"
        return got

    # The first run aggregates by one join over the range.
    r = once(salesd, cfg, expect=1)
    got = check(
        r,
        [
            ("2024-05-01", 11, "price is NULL"),
            ("2024-05-02", 12, "quantity is NULL"),
            ("2024-05-03", 13, "cost_price is NULL"),
            ("2024-05-06", 17, "quantity < 0"),
        ],
    )
    assert "total_items_sold -3 is negative" in r.stderr, r.stderr
    assert got[D("2024-05-04")][:4] == (0, 0, Decimal("0"), Decimal("0"))
    assert got[D("2024-05-05")][:4] == (2, 2, Decimal("5.00"), Decimal("2.00"))
    run = run_of(ch_db, r)
    assert run["status"] == "failed" and "order_id 11" in run["error"], run

    # Two explicit days (the few-days shape: each day's order_id range summed) name it the same way.
    r = once(salesd, cfg, "once", "--date", "2024-05-01", "--date", "2024-05-05", expect=1)
    check(r, [("2024-05-01", 11, "price is NULL")])

    # Fixed: written.
    pg_db.execute("UPDATE loose_items SET price = 1.00, updated_at = now() WHERE order_id = 11 AND price IS NULL")
    pg_db.execute("UPDATE loose_items SET quantity = 1, updated_at = now() WHERE order_id IN (12, 17)")
    pg_db.execute("UPDATE loose_items SET cost_price = 1.00, updated_at = now() WHERE order_id = 13")
    once(salesd, cfg)
    got = stored(ch_db)
    assert got[D("2024-05-01")][:4] == (1, 2, Decimal("3.00"), Decimal("2.00"))
    assert {D("2024-05-02"), D("2024-05-03"), D("2024-05-06")} <= got.keys()


@pytest.mark.parametrize("shape", ["ranges", "probes"])
def test_null_metrics_are_named_by_the_few_days_aggregate(pg_db, ch_db, salesd, shape):
    """A few days are aggregated in two statements (each day's completed
    orders counted with their first and last order_id, then the items of
    that id range summed), or, when a day's ids spread over more than 4 per
    order (a backdated order), by per-order probes.  Both find what the
    one-pass shape above finds, in the same statement as the sums: a NULL
    metric column named with its order, a negative total; the other days
    exact.  A cancelled order's NULLs inside a day's id range count for
    nothing."""
    names = loose_views(pg_db)
    t = {"table": "loose_orders", "items_table": "loose_items"}
    order(pg_db, 11, "completed", "2024-05-01 12:00:00+00", [(1, None, "1.00"), (1, "2.00", "1.00")], **t)
    order(pg_db, 12, "completed", "2024-05-02 12:00:00+00", [(None, "2.00", "1.00")], **t)
    order(pg_db, 13, "completed", "2024-05-03 12:00:00+00", [(1, "2.00", None), (-5, "1.00", "1.00")], **t)
    order(pg_db, 14, "completed", "2024-05-04 12:00:00+00", [(2, "1.00", "1.00")], **t)
    order(pg_db, 15, "completed", "2024-05-04 13:00:00+00", [(-3, "1.00", "1.00")], **t)
    order(pg_db, 16, "completed", "2024-05-05 12:00:00+00", [(2, "2.50", "1.00")], **t)
    order(pg_db, 17, "cancelled", "2024-05-05 12:30:00+00", [(None, None, None)], **t)
    order(pg_db, 18, "completed", "2024-05-05 13:00:00+00", [], **t)
    expected = (2, 2, Decimal("5.00"), Decimal("2.00"))
    if shape == "probes":
        order(pg_db, 900, "completed", "2024-05-05 15:00:00+00", [(1, "0.10", "0.05")], **t)
        expected = (3, 3, Decimal("5.10"), Decimal("2.05"))
    cfg = config(salesd, pg_db, ch_db, log_level="debug", **names, **{"postgres.tombstones_table": ""})

    days = [f"2024-05-0{d}" for d in range(1, 6)]
    r = once(salesd, cfg, "once", *(a for d in days for a in ("--date", d)), expect=1)
    assert "aggregating 5 days by day ranges" in r.stderr, r.stderr
    assert ("order ids do not follow order_date" in r.stderr) == (shape == "probes"), r.stderr
    for day, oid, what in [
        ("2024-05-01", 11, "price is NULL"),
        ("2024-05-02", 12, "quantity is NULL"),
        ("2024-05-03", 13, "cost_price is NULL"),
        ("2024-05-04", 15, "quantity < 0"),
    ]:
        assert re.search(rf"day {day}: .*order_id {oid}.*{what}", r.stderr), f"{day}/{oid}/{what} not named:\n{r.stderr}"
    assert "day 2024-05-04: total_items_sold -1 is negative" in r.stderr, r.stderr
    got = stored(ch_db)
    assert set(got) == {D("2024-05-05")}, got
    assert got[D("2024-05-05")][:4] == expected
    run = run_of(ch_db, r)
    assert run["status"] == "failed" and "order_id 11" in run["error"], run


# ---------------------------------------------------------------- item 8: long backfills


def test_backfill_over_forty_years(pg_db, ch_db, salesd):
    """14,610 days in one run: the stored-days lookup must not become one
    IN list beyond ClickHouse's max_query_size (18.16: 256 KiB)."""
    pg_db.execute(
        "INSERT INTO orders (order_id, customer_id, status, order_date, updated_at)"
        " SELECT g, 1, 'completed', timestamptz '1986-01-01 12:00+00' + g * interval '97 days', now() - interval '1 hour'"
        " FROM generate_series(0, 150) AS g;"
        "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at)"
        " SELECT g, g, 1, 1 + g % 3, 1.25, 0.50, now() - interval '1 hour' FROM generate_series(0, 150) AS g"
    )
    cfg = config(salesd, pg_db, ch_db)
    first, last = D("1986-01-01"), D("2025-12-31")
    n_days = (last - first).days + 1
    once(salesd, cfg, "backfill", "--from", str(first), "--to", str(last))
    got = stored(ch_db)
    assert len(got) == n_days and min(got) == first and max(got) == last
    sold = {
        EPOCH + dt.timedelta(days=int(r[0])): int(r[1])
        for r in pg_db.query(
            "SELECT (order_date AT TIME ZONE 'UTC')::date - date '1970-01-01', sum(i.quantity)"
            " FROM orders o JOIN order_items i USING (order_id) GROUP BY 1"
        )
    }
    assert {d: v[1] for d, v in got.items() if v[1]} == {d: q for d, q in sold.items() if first <= d <= last}
    # Again: every day is read back (in batches) and found equal.
    r = once(salesd, cfg, "backfill", "--from", str(first), "--to", str(last))
    assert run_of(ch_db, r)["days_written"] == 0
    r = once(salesd, cfg, "verify", "--from", str(first), "--to", str(last))
    assert f"{n_days} days checked, 0 differ" in r.stdout, r.stdout
