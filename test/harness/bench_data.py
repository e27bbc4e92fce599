"""Shop data for `make bench`, generated inside Postgres.

test/harness/shop.py sends rows from Python through COPY: right for tests,
far too slow for millions of rows.  Here every row comes from
`INSERT ... SELECT FROM generate_series(...)`, its values from hashes of its
id (`hashint8extended(id, seed)`), so the same profile always yields the
same rows, and the load runs on the server at full speed:

- orders: `orders_per_day` a day for `days` days ending today (UTC), spread
  evenly over each day's 24 hours (today's orders included, so every day has
  the same size); status 80% completed, 8% pending, 7% cancelled, 5%
  refunded; updated_at shortly after order_date but never later than an hour
  before the load (rows all stamped "now" would look changed to every run
  within the overlap window).
- order_items: 0 items for 1% of the orders, else 1-5 (3 on average);
  quantity 1-4, price 1.00-200.99, cost_price 40-79% of the price, all
  numeric(12,2); updated_at = the order's.

Loading: the secondary indexes of both tables (whatever sql/postgres/ defines
today, read from pg_indexes) are dropped first and re-created afterwards, and
the loading sessions run with session_replication_role = replica (no
triggers, no FK checks: the rows are consistent by construction), split
into chunks of days over `workers` connections.  Then VACUUM ANALYZE (the
visibility map makes index-only scans possible) and a CHECKPOINT.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import time

import psycopg

ITEM_ID_STRIDE = 8  # order_item_id = order_id * 8 + n, n in 1..5


@dataclasses.dataclass
class Loaded:
    db: str
    days: int
    orders_per_day: int
    orders: int
    items: int
    first_day: dt.date
    last_day: dt.date
    seconds: float
    size_bytes: int


def _orders_sql(first_day: dt.date, per_day: int, id_lo: int, id_hi: int, cap: str) -> str:
    # id -> (day index, slot in the day); the slot spreads orders evenly over 24 h.
    return f"""
INSERT INTO orders (order_id, customer_id, status, order_date, updated_at)
SELECT id,
       1 + abs(hashint8extended(id, 1)) % 200000,
       CASE WHEN h < 80 THEN 'completed' WHEN h < 88 THEN 'pending'
            WHEN h < 95 THEN 'cancelled' ELSE 'refunded' END,
       od,
       least(od + (abs(hashint8extended(id, 3)) % 3600) * interval '1 second', timestamptz '{cap}')
  FROM (SELECT id,
               abs(hashint8extended(id, 2)) % 100 AS h,
               timestamptz '{first_day.isoformat()} 00:00:00+00'
                 + ((id - 1) / {per_day}) * interval '1 day'
                 + (((id - 1) % {per_day}) * 86400000000::bigint / {per_day}) * interval '1 microsecond' AS od
          FROM generate_series({id_lo}::bigint, {id_hi}::bigint) AS id) AS g
"""


def _items_sql(id_lo: int, id_hi: int) -> str:
    return f"""
INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at)
SELECT o.order_id * {ITEM_ID_STRIDE} + n,
       o.order_id,
       1 + abs(hashint8extended(o.order_id * {ITEM_ID_STRIDE} + n, 11)) % 50000,
       1 + abs(hashint8extended(o.order_id * {ITEM_ID_STRIDE} + n, 12)) % 4,
       p,
       round(p * (40 + abs(hashint8extended(o.order_id * {ITEM_ID_STRIDE} + n, 14)) % 40) / 100, 2),
       o.updated_at
  FROM orders o
  CROSS JOIN LATERAL (
        SELECT n, (100 + abs(hashint8extended(o.order_id * {ITEM_ID_STRIDE} + n, 13)) % 20000)::numeric / 100 AS p
          FROM generate_series(1, CASE WHEN abs(hashint8extended(o.order_id, 4)) % 100 = 0 THEN 0
                                       ELSE 1 + abs(hashint8extended(o.order_id, 5)) % 5 END) AS n) AS it
 WHERE o.order_id BETWEEN {id_lo} AND {id_hi}
"""


def load(conninfo: str, db: str, *, days: int, orders_per_day: int, today: dt.date, workers: int = 2,
         log=print) -> Loaded:
    """Fill `db` (created with the canonical schema, empty) with the profile."""
    t0 = time.monotonic()
    first_day = today - dt.timedelta(days=days - 1)
    cap = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S+00")
    n_orders = days * orders_per_day
    with psycopg.connect(conninfo, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = 'public'::regnamespace"
            " JOIN pg_index x ON x.indexrelid = c.oid"
            " WHERE i.schemaname = 'public' AND i.tablename IN ('orders', 'order_items') AND NOT x.indisprimary"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')

    # Chunks of whole days, so each worker's order ids (and item ids) are contiguous.
    days_per_chunk = max(1, min(days, 1_000_000 // orders_per_day))
    chunks = [(d, min(days, d + days_per_chunk)) for d in range(0, days, days_per_chunk)]

    def one(chunk):
        d0, d1 = chunk
        lo, hi = d0 * orders_per_day + 1, d1 * orders_per_day
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("SET session_replication_role = replica")
            c.execute("SET jit = off")
            c.execute(_orders_sql(first_day, orders_per_day, lo, hi, cap))
            c.execute(_items_sql(lo, hi))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(one, ch) for ch in chunks]:
            f.result()
    t_rows = time.monotonic() - t0

    def build(index):
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(index[1])

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(build, ix) for ix in indexes]:
            f.result()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) orders")
        conn.execute("VACUUM (ANALYZE) order_items")
        conn.execute("CHECKPOINT")
        n_items = conn.execute("SELECT count(*) FROM order_items").fetchone()[0]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    secs = time.monotonic() - t0
    log(f"  {db}: {n_orders:,} orders, {n_items:,} items, {days} days x {orders_per_day:,}/day, "
        f"{size / 2**30:.2f} GiB; rows {t_rows:.0f}s, indexes + vacuum {secs - t_rows:.0f}s")
    return Loaded(db, days, orders_per_day, n_orders, n_items, first_day, today, secs, size)
