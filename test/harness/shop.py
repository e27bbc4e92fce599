"""Deterministic sample shop for tests, `make demo` and `make bench`.

Fills the canonical orders/order_items tables (sql/postgres/) with N days of M
orders each, from a seeded random generator, so the same arguments always
produce the same rows.  Rows go in through COPY: a year of history (about
100k orders, 300k items) loads in a few seconds.

updated_at: by default every row carries a time shortly after its order_date,
never later than `not_after - 1h`, as if the shop had been running for a
while.  That matters for incremental runs: rows all stamped "now" would make
every day look changed to a second run within the overlap window.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import random
from zoneinfo import ZoneInfo

import psycopg

STATUSES = (("completed", 80), ("pending", 8), ("cancelled", 7), ("refunded", 5))


@dataclasses.dataclass
class ShopStats:
    orders: int
    items: int
    first_day: dt.date | None
    last_day: dt.date | None
    next_order_id: int
    next_item_id: int


def _fmt_ts(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _fmt_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _day_bounds(day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
    return start, end


def generate(
    target,
    *,
    days: int,
    orders_per_day: int,
    items_per_order: int = 3,
    end_day: dt.date | None = None,
    tz: str = "UTC",
    seed: int = 1,
    first_order_id: int = 1,
    first_item_id: int = 1,
    not_after: dt.datetime | None = None,
    updated_at: str = "historic",
    orders_table: str = "orders",
    items_table: str = "order_items",
) -> ShopStats:
    """Inserts the shop into target (a libpq conninfo or a psycopg connection).

    The days are the `days` calendar days (in tz) ending with end_day (default:
    today in tz).  Orders are spread uniformly over each local day but never
    after not_after (default: now).  updated_at is "historic" (see the module
    comment) or "now" (the column default).
    """
    if updated_at not in ("historic", "now"):
        raise ValueError("updated_at must be 'historic' or 'now'")
    zone = ZoneInfo(tz)
    now = not_after or dt.datetime.now(dt.timezone.utc)
    if end_day is None:
        end_day = now.astimezone(zone).date()
    latest_update = now - dt.timedelta(hours=1)
    rng = random.Random(seed)
    status_names = [s for s, _ in STATUSES]
    status_weights = [w for _, w in STATUSES]

    orders_buf = io.StringIO()
    items_buf = io.StringIO()
    order_id, item_id = first_order_id, first_item_id
    n_orders = n_items = 0
    first_seen = last_seen = None
    for k in range(days - 1, -1, -1):
        day = end_day - dt.timedelta(days=k)
        start, end = _day_bounds(day, zone)
        if start >= now:
            continue
        end = min(end, now)
        span_us = int((end - start) / dt.timedelta(microseconds=1))
        first_seen = first_seen or day
        last_seen = day
        offsets = sorted(rng.randrange(span_us) for _ in range(orders_per_day))
        for off in offsets:
            placed = start + dt.timedelta(microseconds=off)
            status = rng.choices(status_names, status_weights)[0]
            changed = min(placed + dt.timedelta(seconds=rng.randrange(3600)), latest_update)
            upd = _fmt_ts(changed) if updated_at == "historic" else "\\N"
            orders_buf.write(f"{order_id}\t{rng.randrange(1, 5000)}\t{status}\t{_fmt_ts(placed)}\t{upd}\n")
            n_items_here = 0 if rng.random() < 0.02 else rng.randint(1, max(1, 2 * items_per_order - 1))
            for _ in range(n_items_here):
                price = rng.randint(50, 20000)
                cost = price * rng.randint(40, 95) // 100
                qty = rng.randint(1, 4)
                items_buf.write(
                    f"{item_id}\t{order_id}\t{rng.randrange(1, 800)}\t{qty}\t"
                    f"{_fmt_cents(price)}\t{_fmt_cents(cost)}\t{upd}\n"
                )
                item_id += 1
                n_items += 1
            order_id += 1
            n_orders += 1

    own = isinstance(target, str)
    conn = psycopg.connect(target) if own else target
    try:
        with conn.cursor() as cur:
            for table, cols, buf in (
                (orders_table, "order_id, customer_id, status, order_date, updated_at", orders_buf),
                (items_table, "order_item_id, order_id, product_id, quantity, price, cost_price, updated_at", items_buf),
            ):
                if updated_at == "now":
                    # \N would violate NOT NULL: drop the column, take its default.
                    cols = cols.rsplit(",", 1)[0]
                    data = "".join(line.rsplit("\t", 1)[0] + "\n" for line in buf.getvalue().splitlines())
                else:
                    data = buf.getvalue()
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    view = memoryview(data.encode())
                    for i in range(0, len(view), 1 << 20):
                        copy.write(view[i : i + (1 << 20)])
        conn.commit()
    finally:
        if own:
            conn.close()
    return ShopStats(n_orders, n_items, first_seen, last_seen, order_id, item_id)


def main() -> None:
    ap = argparse.ArgumentParser(description="load a deterministic sample shop into Postgres")
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--orders-per-day", type=int, default=200)
    ap.add_argument("--items-per-order", type=int, default=3)
    ap.add_argument("--timezone", default="UTC")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    s = generate(
        a.conninfo,
        days=a.days,
        orders_per_day=a.orders_per_day,
        items_per_order=a.items_per_order,
        tz=a.timezone,
        seed=a.seed,
    )
    print(f"loaded {s.orders} orders, {s.items} items, {s.first_day} .. {s.last_day}")


if __name__ == "__main__":
    main()
