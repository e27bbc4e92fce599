"""`make bench`: how long and how much memory salesd's runs take.

On throwaway Postgres 15 + ClickHouse 18.16 servers it loads a large
generated history and measures, per run: wall time, CPU time and peak RSS of
the salesd process (/usr/bin/time), and the rows Postgres
returned from orders and order_items (pg_stat_user_tables).  Runs measured:
the first run (fills the whole history), an incremental run after a few
changed days, and a run with nothing changed.  It prints a table and writes
it to --out; it asserts nothing.

    build/venv/bin/python test/harness/bench.py --salesd build/salesd
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from harness import shop  # noqa: E402
from harness.demo import cleanup, secret_file, table  # noqa: E402
from harness.servers import REPO, ClickHouseServer, PostgresServer, clean_env  # noqa: E402


def rows_read(pg: PostgresServer) -> dict[str, int]:
    """Tuples returned by scans of orders and order_items so far."""
    with psycopg.connect(pg.conninfo("shop"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables WHERE relname IN ('orders', 'order_items')"
        ).fetchall()
    return {name: int(n) for name, n in rows}


def timed_run(binary: str, cfg: Path, *args: str) -> dict:
    """Runs salesd to completion; wall time, CPU and peak RSS of that one
    process, measured by /usr/bin/time.  Not by our own wait4: Linux keeps
    ru_maxrss across execve, so a child forked from this (large) Python
    process would report our peak, not its own."""
    if not os.access("/usr/bin/time", os.X_OK):
        # Fallback without peak RSS (see above for why wait4 cannot give it).
        t0 = time.monotonic()
        proc = subprocess.Popen([binary, "-c", str(cfg), *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
        err = proc.stderr.read()
        _, status, ru = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench: salesd {' '.join(args)} failed:\n{err.decode(errors='replace')}")
        return {"wall": time.monotonic() - t0, "cpu": ru.ru_utime + ru.ru_stime, "rss_kib": None}
    fd, out_path = tempfile.mkstemp(prefix="salesd-bench-time-")
    os.close(fd)
    try:
        t0 = time.monotonic()
        r = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", out_path, binary, "-c", str(cfg), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean_env(),
            timeout=3600,
        )
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise SystemExit(f"bench: salesd {' '.join(args)} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
        rss_kib, user, system = Path(out_path).read_text().split()[-3:]
    finally:
        os.unlink(out_path)
    return {"wall": wall, "cpu": float(user) + float(system), "rss_kib": int(rss_kib)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--salesd", required=True)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--orders-per-day", type=int, default=500)
    ap.add_argument("--items-per-order", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "build" / "bench.txt"))
    a = ap.parse_args()
    binary = str(Path(a.salesd).resolve())
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    workdir = Path(tempfile.mkdtemp(prefix="salesd-bench-"))
    pg, ch = PostgresServer(), ClickHouseServer()
    try:
        pg.start()
        ch.start()
        pg.create_database("shop")
        ch.create_database("bench")
        t0 = time.monotonic()
        s = shop.generate(
            pg.conninfo("shop"),
            days=a.days,
            orders_per_day=a.orders_per_day,
            items_per_order=a.items_per_order,
            seed=7,
        )
        with psycopg.connect(pg.conninfo("shop"), autocommit=True) as conn:
            conn.execute("ANALYZE")
        load = time.monotonic() - t0
        print(f"history: {s.orders} orders, {s.items} items over {a.days} days (loaded in {load:.1f}s)", flush=True)

        cfg = workdir / "salesd.yaml"
        cfg.write_text(
            "instance: bench\n"
            "log_level: warning\n"
            "postgres:\n"
            f"  conninfo: \"{pg.conninfo('shop', user=pg.role)}\"\n"
            f"  password_file: \"{secret_file(workdir, 'pg-password', pg.password)}\"\n"
            "  tombstones_table: public.salesd_tombstones\n"
            "clickhouse:\n"
            f"  url: \"{ch.url}\"\n"
            "  database: bench\n"
            f"  user: \"{ch.user}\"\n"
            f"  password_file: \"{secret_file(workdir, 'ch-password', ch.password)}\"\n"
            "http:\n"
            "  listen: \"\"\n"
        )
        timed_run(binary, cfg, "init-schema")

        results = []

        def measure(label: str, *args: str) -> None:
            before = rows_read(pg)
            m = timed_run(binary, cfg, *args)
            time.sleep(1.0)  # backends flush their table statistics at exit, not instantly
            after = rows_read(pg)
            last = ch.rows(
                "SELECT days_recomputed, days_written FROM salesd_runs ORDER BY started_at DESC, finished_at DESC LIMIT 1",
                database="bench",
            )
            rec, wrote = last[0] if last else ("?", "?")
            results.append(
                [
                    label,
                    f"{m['wall']:.2f}",
                    f"{m['cpu']:.2f}",
                    f"{m['rss_kib'] / 1024:.1f}" if m["rss_kib"] is not None else "n/a (no /usr/bin/time)",
                    str(after.get("orders", 0) - before.get("orders", 0)),
                    str(after.get("order_items", 0) - before.get("order_items", 0)),
                    rec,
                    wrote,
                ]
            )
            print(f"  {label}: {m['wall']:.2f}s", flush=True)

        measure("first run (full history)", "once")
        # A few changes on three old days.
        today = dt.datetime.now(dt.timezone.utc).date()
        with psycopg.connect(pg.conninfo("shop"), autocommit=True) as conn:
            for back in (30, 90, 200):
                day = today - dt.timedelta(days=back)
                conn.execute(
                    "UPDATE order_items SET quantity = quantity + 1 WHERE order_id IN ("
                    "SELECT order_id FROM orders WHERE order_date >= %s::date AND order_date < %s::date + 1 LIMIT 5)",
                    (day, day),
                )
        measure("incremental (3 days changed)", "once")
        measure("incremental (nothing changed)", "once")
        measure("backfill 30 days", "backfill", "--from", str(today - dt.timedelta(days=60)), "--to", str(today - dt.timedelta(days=31)))

        header = ["run", "wall s", "cpu s", "peak RSS MiB", "orders rows read", "order_items rows read", "days recomputed", "days written"]
        text = (
            f"salesd bench {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC: {s.orders} orders, {s.items} items, "
            f"{a.days} days; Postgres 15, ClickHouse {ch.version()}\n\n" + table(header, results, right=set(range(1, 8))) + "\n"
        )
        print("\n" + text)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
        print(f"written to {a.out}")
        return 0
    except KeyboardInterrupt:
        print("bench: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup("bench", (ch, pg), workdir)


if __name__ == "__main__":
    sys.exit(main())
