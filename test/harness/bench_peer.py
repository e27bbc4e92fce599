"""The peer salesd replaces, for `make bench`: an Airflow-style PythonOperator
task body.  It pulls one day's completed orders with their items from
Postgres (psycopg2, as Airflow's PostgresHook does), sums them in Python with
decimal.Decimal and inserts the day's row into ClickHouse with one HTTP
POST.  Run as its own process (bench.py measures it with /usr/bin/time).

    bench_peer.py --dsn "host=... dbname=shop user=salesd" --day 2026-11-30 \\
        --ch-url http://127.0.0.1:8123 --ch-db bench --table peer_daily_sales_stats
Passwords: PGPASSWORD and CH_PASSWORD in the environment.
"""

import argparse
import datetime as dt
import decimal
import os
import time
import urllib.parse
import urllib.request

import psycopg2


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--day", required=True)
    ap.add_argument("--ch-url", required=True)
    ap.add_argument("--ch-db", required=True)
    ap.add_argument("--ch-user", default="default")
    ap.add_argument("--table", required=True)
    a = ap.parse_args()
    day = dt.date.fromisoformat(a.day)
    lo = dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc)
    hi = lo + dt.timedelta(days=1)

    conn = psycopg2.connect(a.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT o.order_id, i.quantity, i.price, i.cost_price"
                " FROM orders o LEFT JOIN order_items i ON i.order_id = o.order_id"
                " WHERE o.status = 'completed' AND o.order_date >= %s AND o.order_date < %s",
                (lo, hi),
            )
            rows = cur.fetchall()
    finally:
        conn.close()

    orders = set()
    items = 0
    revenue = decimal.Decimal(0)
    cost = decimal.Decimal(0)
    for order_id, quantity, price, cost_price in rows:
        orders.add(order_id)
        if quantity is not None:
            items += quantity
            revenue += price * quantity
            cost += cost_price * quantity
    n = len(orders)
    aov = (revenue / n).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP) if n else decimal.Decimal("0.00")
    now = time.time()
    line = f"{day}\t{n}\t{items}\t{revenue}\t{cost}\t{revenue - cost}\t{aov}\t{int(now)}\t{int(now * 1e6)}\n"

    q = urllib.parse.urlencode({"database": a.ch_db, "query": f"INSERT INTO {a.table} FORMAT TabSeparated"})
    headers = {"X-ClickHouse-User": a.ch_user}
    if os.environ.get("CH_PASSWORD"):
        headers["X-ClickHouse-Key"] = os.environ["CH_PASSWORD"]
    req = urllib.request.Request(f"{a.ch_url}/?{q}", data=line.encode(), method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
