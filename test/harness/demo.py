"""`make demo`: salesd end to end on throwaway servers.

Starts a private Postgres 15 and ClickHouse 18.16 (temp dirs, loopback
ports), loads a generated sample shop, runs `salesd init-schema` and
`salesd once`, prints the resulting daily_sales_stats (FINAL) and the run's
salesd_runs row, checks them against the independent oracle, and removes
everything again, also on Ctrl-C or an error.

    build/venv/bin/python test/harness/demo.py --salesd build/salesd
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import oracle, shop  # noqa: E402
from harness.servers import ClickHouseServer, PostgresServer, clean_env  # noqa: E402


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def fmt(r):
        return "  ".join(str(v).rjust(w) if i in right else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def secret_file(d: Path, name: str, value: str) -> Path:
    p = d / name
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return p


def cleanup(who: str, servers, workdir: Path) -> None:
    """Stop the servers (each even if another fails) and remove workdir."""
    for server in servers:
        try:
            server.stop()
        except Exception as exc:  # keep cleaning up
            print(f"{who}: stopping {server!r}: {exc}", file=sys.stderr)
    for p in sorted(workdir.glob("*")):
        p.unlink()
    workdir.rmdir()


def run_salesd(binary: str, cfg: Path, *args: str) -> None:
    cmd = [binary, "-c", str(cfg), *args]
    print(f"\n$ salesd -c {cfg.name} {' '.join(args)}", flush=True)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=clean_env(), timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"demo: salesd {' '.join(args)} failed with exit status {r.returncode}")


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--salesd", required=True, help="the salesd binary")
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--orders-per-day", type=int, default=400)
    ap.add_argument("--timezone", default="Europe/Berlin")
    a = ap.parse_args()
    binary = str(Path(a.salesd).resolve())
    if not os.access(binary, os.X_OK):
        print(f"demo: {binary} is not an executable; run `make` first", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _terminate)

    workdir = Path(tempfile.mkdtemp(prefix="salesd-demo-"))
    pg = PostgresServer()
    ch = ClickHouseServer()
    try:
        print("starting Postgres 15 and ClickHouse 18.16 on loopback ...", flush=True)
        pg.start()
        ch.start()
        print(f"  postgres   127.0.0.1:{pg.port}  ({pg.start_seconds:.1f}s)")
        print(f"  clickhouse {ch.url}  ({ch.start_seconds:.1f}s, version {ch.version()})")
        pg.create_database("shop")
        ch.create_database("salesd")
        stats = shop.generate(
            pg.conninfo("shop"), days=a.days, orders_per_day=a.orders_per_day, tz=a.timezone, seed=2024
        )
        print(f"sample shop: {stats.orders} orders, {stats.items} items, {stats.first_day} .. {stats.last_day} ({a.timezone})")

        cfg = workdir / "salesd.yaml"
        cfg.write_text(
            "instance: demo\n"
            f"timezone: {a.timezone}\n"
            "postgres:\n"
            f"  conninfo: \"{pg.conninfo('shop', user=pg.role)}\"\n"
            f"  password_file: \"{secret_file(workdir, 'pg-password', pg.password)}\"\n"
            "  tombstones_table: public.salesd_tombstones\n"
            "clickhouse:\n"
            f"  url: \"{ch.url}\"\n"
            "  database: salesd\n"
            f"  user: \"{ch.user}\"\n"
            f"  password_file: \"{secret_file(workdir, 'ch-password', ch.password)}\"\n"
            "http:\n"
            "  listen: \"\"\n"
        )
        run_salesd(binary, cfg, "init-schema")
        run_salesd(binary, cfg, "once")

        cols = ["date", "total_orders", "total_items_sold", "total_revenue", "total_cost", "total_profit", "average_order_value", "version"]
        rows = ch.rows(f"SELECT {', '.join(cols)} FROM daily_sales_stats FINAL ORDER BY date", database="salesd")
        print("\ndaily_sales_stats FINAL")
        print(table(cols, rows, right=set(range(1, len(cols)))))

        rcols = ["run_id", "instance", "trigger", "started_at", "finished_at", "status", "days_recomputed", "days_written", "error"]
        runs = ch.rows(f"SELECT {', '.join(rcols)} FROM salesd_runs ORDER BY started_at", database="salesd")
        print("\nsalesd_runs")
        print(table(rcols, runs, right={6, 7}))

        class _Ch:
            def rows(self, sql):
                return ch.rows(sql, database="salesd")

        import psycopg

        with psycopg.connect(pg.conninfo("shop")) as conn:
            orders, items = oracle.read_source(lambda q: conn.execute(q).fetchall())
        want = oracle.compute(orders, items, a.timezone)
        got = oracle.ch_metrics(_Ch())
        bad = [d for d in got if got[d] != want.get(d, oracle.DayMetrics())]
        print(f"\nindependent oracle (Python decimal): {len(got)} days compared, {len(bad)} differ")
        return 0 if not bad else 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup("demo", (ch, pg), workdir)


if __name__ == "__main__":
    sys.exit(main())
