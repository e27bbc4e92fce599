"""Independent oracle for salesd's daily metrics (SPEC §2).

The tests never trust salesd's own SQL: they read the source rows back from
Postgres and recompute every day here, with Python's exact `decimal` and
`zoneinfo`, then compare with what ClickHouse holds.  Money is handled as
integer cents wherever a rounding decision is made, so the oracle itself has
no precision limits to reason about.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")
UINT32_MAX = 2**32 - 1
# Decimal(15, 2): at most 13 integer digits.
DECIMAL_15_2_MAX = Decimal("9999999999999.99")

METRIC_COLUMNS = (
    "total_orders",
    "total_items_sold",
    "total_revenue",
    "total_cost",
    "total_profit",
    "average_order_value",
)


@dataclasses.dataclass(frozen=True)
class DayMetrics:
    total_orders: int = 0
    total_items_sold: int = 0
    total_revenue: Decimal = Decimal("0.00")
    total_cost: Decimal = Decimal("0.00")
    total_profit: Decimal = Decimal("0.00")
    average_order_value: Decimal = Decimal("0.00")

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, c) for c in METRIC_COLUMNS)

    def is_zero(self) -> bool:
        return self == DayMetrics()

    def overflowing_columns(self) -> list[str]:
        """Columns whose value does not fit the ClickHouse type."""
        bad = []
        for c in ("total_orders", "total_items_sold"):
            if not 0 <= getattr(self, c) <= UINT32_MAX:
                bad.append(c)
        for c in ("total_revenue", "total_cost", "total_profit", "average_order_value"):
            if abs(getattr(self, c)) > DECIMAL_15_2_MAX:
                bad.append(c)
        return bad


def _to_cents(value) -> int:
    """Exact integer cents of a numeric(12,2) value (Decimal, int or str)."""
    d = Decimal(value) if not isinstance(value, Decimal) else value
    cents = d * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"value {value!r} has more than 2 decimal places")
    return int(cents)


def _cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def round_half_away_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to an integer, ties away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return -q if numerator < 0 else q


def local_day(ts: dt.datetime, tz: str | ZoneInfo) -> dt.date:
    """The calendar day of an aware timestamp in timezone tz."""
    if ts.tzinfo is None:
        raise ValueError("order_date must be timezone-aware (timestamptz)")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return ts.astimezone(zone).date()


def _field(row, name: str, index: int):
    if isinstance(row, Mapping):
        return row[name]
    if hasattr(row, name):
        return getattr(row, name)
    return row[index]


def compute(
    orders: Iterable,
    items: Iterable,
    tz: str = "UTC",
    completed_statuses: Sequence[str] = ("completed",),
) -> dict[dt.date, DayMetrics]:
    """Expected metrics for every day that has at least one completed order.

    orders: rows (order_id, status, order_date) as tuples, mappings or objects
    with those attribute names; items: rows (order_id, quantity, price,
    cost_price).  Days without completed orders are absent: use metrics_for()
    to get zero rows for them.
    """
    zone = ZoneInfo(tz)
    statuses = set(completed_statuses)
    day_of_order: dict[int, dt.date] = {}
    per_day: dict[dt.date, list[int]] = {}  # orders, items, revenue, cost (cents)
    for o in orders:
        if _field(o, "status", 1) not in statuses:
            continue
        day = local_day(_field(o, "order_date", 2), zone)
        day_of_order[int(_field(o, "order_id", 0))] = day
        per_day.setdefault(day, [0, 0, 0, 0])[0] += 1
    for it in items:
        day = day_of_order.get(int(_field(it, "order_id", 0)))
        if day is None:
            continue
        qty = int(_field(it, "quantity", 1))
        acc = per_day[day]
        acc[1] += qty
        acc[2] += _to_cents(_field(it, "price", 2)) * qty
        acc[3] += _to_cents(_field(it, "cost_price", 3)) * qty
    result = {}
    for day, (n, qty, rev, cost) in per_day.items():
        aov = round_half_away_div(rev, n) if n else 0
        result[day] = DayMetrics(
            total_orders=n,
            total_items_sold=qty,
            total_revenue=_cents_to_decimal(rev),
            total_cost=_cents_to_decimal(cost),
            total_profit=_cents_to_decimal(rev - cost),
            average_order_value=_cents_to_decimal(aov),
        )
    return result


def metrics_for(expected: Mapping[dt.date, DayMetrics], days: Iterable[dt.date]) -> dict[dt.date, DayMetrics]:
    """expected restricted to days, with a zero row for days without orders."""
    return {d: expected.get(d, DayMetrics()) for d in days}


def source_days(orders: Iterable, tz: str = "UTC") -> set[dt.date]:
    """Days (in tz) that have any order at all, whatever its status: the days
    salesd's first run must fill."""
    zone = ZoneInfo(tz)
    return {local_day(_field(o, "order_date", 2), zone) for o in orders}


def read_source(query, orders_table: str = "orders", items_table: str = "order_items"):
    """Reads the rows the oracle needs through query(sql) -> list[tuple]
    (e.g. pg_db.query).  Returns (orders, items)."""
    orders = query(f"SELECT order_id, status, order_date FROM {orders_table}")
    items = query(f"SELECT order_id, quantity, price, cost_price FROM {items_table}")
    return orders, items


def parse_ch_row(fields: Sequence[str]) -> tuple[dt.date, DayMetrics]:
    """Parses one TSV row `date, total_orders, total_items_sold, total_revenue,
    total_cost, total_profit, average_order_value` as printed by either
    ClickHouse backend (`3.10` or `3.1`): values, never text."""
    day = dt.date.fromisoformat(fields[0])
    m = DayMetrics(
        total_orders=int(fields[1]),
        total_items_sold=int(fields[2]),
        total_revenue=Decimal(fields[3]).quantize(CENT),
        total_cost=Decimal(fields[4]).quantize(CENT),
        total_profit=Decimal(fields[5]).quantize(CENT),
        average_order_value=Decimal(fields[6]).quantize(CENT),
    )
    return day, m


# ---- reading what salesd wrote (ClickHouse), for comparison ----------------
# ch is any object with rows(sql) -> list[list[str]] (the ch_db fixture).

STATS_SELECT = (
    "SELECT toString(date), total_orders, total_items_sold, total_revenue, total_cost, "
    "total_profit, average_order_value, version FROM daily_sales_stats FINAL ORDER BY date"
)


def ch_latest(ch) -> dict[dt.date, tuple[DayMetrics, int]]:
    """The latest row of every day (FINAL): {day: (metrics, version)}."""
    out = {}
    for r in ch.rows(STATS_SELECT):
        day, m = parse_ch_row(r[:7])
        out[day] = (m, int(r[7]))
    return out


def ch_metrics(ch) -> dict[dt.date, DayMetrics]:
    return {d: m for d, (m, _) in ch_latest(ch).items()}


def ch_versions(ch) -> dict[dt.date, int]:
    return {d: v for d, (_, v) in ch_latest(ch).items()}


def ch_count(ch, table: str = "daily_sales_stats") -> int:
    """Physical row count, without FINAL: every version ever written."""
    return int(ch.rows(f"SELECT count() FROM {table}")[0][0])


def ch_all_versions(ch) -> list[tuple[dt.date, int]]:
    return [(dt.date.fromisoformat(r[0]), int(r[1])) for r in ch.rows("SELECT toString(date), version FROM daily_sales_stats")]


def ch_watermark(ch) -> str | None:
    rows = ch.rows("SELECT value FROM salesd_state FINAL WHERE name = 'watermark'")
    return rows[0][0] if rows else None


RUN_COLUMNS = ("run_id", "instance", "trigger", "started_at", "finished_at", "status", "days_recomputed", "days_written", "error")


def ch_runs(ch) -> list[dict]:
    rows = ch.rows(
        "SELECT run_id, instance, trigger, toString(started_at), toString(finished_at), status, "
        "days_recomputed, days_written, error FROM salesd_runs ORDER BY started_at, finished_at"
    )
    out = []
    for r in rows:
        d = dict(zip(RUN_COLUMNS, r))
        d["days_recomputed"] = int(d["days_recomputed"])
        d["days_written"] = int(d["days_written"])
        out.append(d)
    return out


def _self_check() -> None:
    assert round_half_away_div(5, 2) == 3
    assert round_half_away_div(-5, 2) == -3
    assert round_half_away_div(4, 3) == 1
    assert round_half_away_div(-1, 3) == 0
    assert round_half_away_div(1, 2) == 1
    utc = dt.timezone.utc
    orders = [
        (1, "completed", dt.datetime(2024, 3, 10, 4, 59, 59, tzinfo=utc)),  # NY: 3-09 23:59:59
        (2, "completed", dt.datetime(2024, 3, 10, 5, 0, 0, tzinfo=utc)),  # NY: 3-10 00:00
        (3, "cancelled", dt.datetime(2024, 3, 10, 6, 0, 0, tzinfo=utc)),
        (4, "completed", dt.datetime(2024, 3, 10, 7, 0, 0, tzinfo=utc)),  # no items
    ]
    items = [(1, 3, Decimal("0.10"), Decimal("0.20")), (2, 1, Decimal("0.05"), Decimal("0")), (3, 1, Decimal("9"), Decimal("1"))]
    got = compute(orders, items, "America/New_York")
    assert got[dt.date(2024, 3, 9)] == DayMetrics(1, 3, Decimal("0.30"), Decimal("0.60"), Decimal("-0.30"), Decimal("0.30"))
    assert got[dt.date(2024, 3, 10)] == DayMetrics(2, 1, Decimal("0.05"), Decimal("0.00"), Decimal("0.05"), Decimal("0.03"))
    assert metrics_for(got, [dt.date(2024, 3, 11)])[dt.date(2024, 3, 11)].is_zero()


if __name__ == "__main__":
    _self_check()
    print("oracle self-check ok")
