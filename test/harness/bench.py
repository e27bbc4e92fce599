"""`make bench` / `make bench-large`: salesd against the bare query and the peer.

On throwaway Postgres 15 + ClickHouse 18.16 servers (test/harness/servers.py)
it loads a generated shop (test/harness/bench_data.py, rows made inside
Postgres) and measures, interleaved in one run so machine noise hits every
side alike (A/B/A/B..., median and min of --reps):

- floor e2e: one `psql` process running the best plain SQL aggregate of the
  affected days (today + yesterday, UTC; the candidate shape and settings
  are picked per case by timing them first, and printed), its output piped
  into one `curl` HTTP insert into a table shaped like daily_sales_stats.
- salesd once: wall time and peak RSS (/usr/bin/time), watermark present.
- SIGUSR1 -> visible: a running daemon; signal to the new value in
  daily_sales_stats FINAL (polled every 5 ms).
- peer: test/harness/bench_peer.py (psycopg2 + Decimal, today only), wall
  time and peak RSS of its own process.
- history scaling: floor and salesd once on a 10x longer history at the same
  orders/day (a second database).
- first run: empty salesd_state/daily_sales_stats, `salesd once` over the
  whole history vs one psql GROUP BY over the whole history + its insert.
- freshness (small profile): daemon with notify.channel and the default
  debounce; a writer at 1 commit/s then 20 commits/s; commit -> visible
  latency percentiles, runs made, lost changes.
- daemon RSS: VmRSS after its first run and a few idle seconds, VmHWM.

Before every measured run one of today's items gets quantity + 1, so today
really changes (and total_items_sold tells when the change is visible).
Prints the tables and writes them to build/bench-<profile>.txt; asserts
nothing.

    build/venv/bin/python test/harness/bench.py --salesd build/salesd --profile small
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from harness import bench_data, servers  # noqa: E402
from harness.demo import cleanup, secret_file, table  # noqa: E402
from harness.servers import REPO, ClickHouseServer, PostgresServer, clean_env, spawn, stop_process  # noqa: E402

PEER = Path(__file__).resolve().parent / "bench_peer.py"

# Profiles.  scale_*: the history-scaling pair (10x the days at the same
# orders/day); "main" is the profile's own database.
PROFILES = {
    "small": dict(days=30, per_day=10_000, scale_base=None, scale_hist=(300, "shop_hist"),
                  reps=5, first_reps=3, freshness=True),
    # large orders a day without the large profile's 3 GiB: the per-day
    # aggregate at 100,000 orders a day, history scaling 2 vs 10 days
    "medium": dict(days=10, per_day=100_000, scale_base=(2, "shop_base"), scale_hist=None,
                   reps=5, first_reps=2, freshness=False),
    "large": dict(days=60, per_day=100_000, scale_base=(6, "shop_base"), scale_hist=None,
                  reps=5, first_reps=2, freshness=False),
}

# Postgres settings for the bench server on top of the harness's (which are
# tuned for tests: shared_buffers 32MB); a shop's server has more memory.
PG_EXTRA = {
    "shared_buffers": "1GB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
}


class BenchPostgres(PostgresServer):
    """The harness's Postgres with PG_EXTRA appended to its command line
    (a later -c wins)."""

    def _launch(self):
        real = servers.spawn

        def spawn_more(cmd, *args, **kw):
            for k, v in PG_EXTRA.items():
                cmd = list(cmd) + ["-c", f"{k}={v}"]
            return real(cmd, *args, **kw)

        servers.spawn = spawn_more
        try:
            super()._launch()
        finally:
            servers.spawn = real


# ---------------------------------------------------------------- floor SQL

SETTINGS_DEFAULT = {"jit": "off"}
SETTINGS_TUNED = {"jit": "off", "random_page_cost": "1.1", "work_mem": "64MB"}

_COND = "o.status = 'completed'{rng}"
SHAPES = {
    # one join, orders counted distinct
    "join": (
        "SELECT (o.order_date AT TIME ZONE 'UTC')::date AS d, count(DISTINCT o.order_id) AS n,"
        " coalesce(sum(i.quantity), 0) AS q, coalesce(sum(i.price * i.quantity), 0) AS r,"
        " coalesce(sum(i.cost_price * i.quantity), 0) AS c"
        " FROM orders o LEFT JOIN order_items i ON i.order_id = o.order_id"
        " WHERE {cond} GROUP BY 1"
    ),
    # per order first, then per day
    "per-order": (
        "SELECT d, count(*) AS n, coalesce(sum(q), 0) AS q, coalesce(sum(r), 0) AS r, coalesce(sum(c), 0) AS c"
        " FROM (SELECT (o.order_date AT TIME ZONE 'UTC')::date AS d, sum(i.quantity) AS q,"
        "              sum(i.price * i.quantity) AS r, sum(i.cost_price * i.quantity) AS c"
        "         FROM orders o LEFT JOIN order_items i ON i.order_id = o.order_id"
        "        WHERE {cond} GROUP BY o.order_id) AS x GROUP BY d"
    ),
    # orders counted and items summed separately, joined by day
    "split": (
        "SELECT a.d, a.n, coalesce(b.q, 0) AS q, coalesce(b.r, 0) AS r, coalesce(b.c, 0) AS c"
        " FROM (SELECT (o.order_date AT TIME ZONE 'UTC')::date AS d, count(*) AS n FROM orders o"
        "        WHERE {cond} GROUP BY 1) AS a"
        " LEFT JOIN (SELECT (o.order_date AT TIME ZONE 'UTC')::date AS d, sum(i.quantity) AS q,"
        "                   sum(i.price * i.quantity) AS r, sum(i.cost_price * i.quantity) AS c"
        "              FROM orders o JOIN order_items i ON i.order_id = o.order_id"
        "             WHERE {cond} GROUP BY 1) AS b ON b.d = a.d"
    ),
    # per day: its orders counted with their first and last order_id, then
    # the orders and items of that id range joined (ids grow with dates)
    "ranges": (
        "SELECT a.d, a.n, coalesce(b.q, 0) AS q, coalesce(b.r, 0) AS r, coalesce(b.c, 0) AS c"
        " FROM (SELECT (o.order_date AT TIME ZONE 'UTC')::date AS d, count(*) AS n, min(o.order_id) AS lo,"
        "              max(o.order_id) AS hi FROM orders o WHERE {cond} GROUP BY 1) AS a"
        " CROSS JOIN LATERAL (SELECT sum(i.quantity) AS q, sum(i.price * i.quantity) AS r,"
        "                            sum(i.cost_price * i.quantity) AS c"
        "              FROM orders o JOIN order_items i ON i.order_id = o.order_id"
        "             WHERE o.order_id BETWEEN a.lo AND a.hi AND i.order_id BETWEEN a.lo AND a.hi"
        "               AND (o.order_date AT TIME ZONE 'UTC')::date = a.d AND {cond}) AS b"
    ),
}
# Index nested loop (one order_items probe per order): the best plan for a
# few days, hopeless for the whole history (millions of probes), so it is a
# candidate only for the few-days cases.
SETTINGS_NESTLOOP = dict(SETTINGS_TUNED, enable_hashjoin="off", enable_mergejoin="off")
CANDIDATES = [
    ("join", SETTINGS_DEFAULT),
    ("join", SETTINGS_TUNED),
    ("per-order", SETTINGS_TUNED),
    ("split", SETTINGS_TUNED),
]
# Merge join of each day's order_id range: the LATERAL's generic estimates
# would pick a probe per order or a hash join of the range
SETTINGS_MERGE = dict(SETTINGS_TUNED, enable_hashjoin="off", enable_nestloop="off")
CANDIDATES_FEW_DAYS = CANDIDATES + [
    ("join", SETTINGS_NESTLOOP),
    ("split", SETTINGS_NESTLOOP),
    ("ranges", SETTINGS_MERGE),
]


def floor_sql(shape: str, lo: dt.date | None, hi: dt.date | None) -> str:
    rng = "" if lo is None else f" AND o.order_date >= '{lo} 00:00:00+00' AND o.order_date < '{hi} 00:00:00+00'"
    core = SHAPES[shape].format(cond=_COND.format(rng=rng))
    sql = (
        "SELECT d, n, q, r, c, r - c, CASE WHEN n = 0 THEN 0 ELSE round(r / n, 2) END,"
        " extract(epoch FROM now())::bigint, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
        f" FROM ({core}) AS t ORDER BY d"
    )
    return " ".join(sql.split())


def pgoptions(settings: dict) -> str:
    return " ".join(f"-c {k}={v}" for k, v in settings.items())


# ---------------------------------------------------------------- helpers


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def timed(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> dict:
    """Runs cmd to completion under /usr/bin/time: wall time and peak RSS of
    that one process.  Not our own wait4: Linux keeps ru_maxrss across
    execve, so a child forked from this (large) Python process would report
    our peak, not its own."""
    fd, out_path = tempfile.mkstemp(prefix="salesd-bench-time-")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", out_path, *cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or clean_env(), timeout=timeout)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... failed ({r.returncode}):\n"
                               f"{r.stderr.decode(errors='replace')[-3000:]}")
        rss_kib, user, system = Path(out_path).read_text().split()[-3:]
    finally:
        os.unlink(out_path)
    return {"wall": wall, "cpu": float(user) + float(system), "rss_kib": int(rss_kib)}


class ChPoll:
    """A keep-alive HTTP connection to ClickHouse for tight polling."""

    def __init__(self, ch: ClickHouseServer, database: str):
        self.ch, self.database = ch, database
        self.conn = None

    def scalar(self, sql: str):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.ch.host, self.ch.http_port, timeout=30)
                self.conn.request("POST", f"/?database={self.database}", body=sql.encode(),
                                  headers={"X-ClickHouse-User": self.ch.user, "X-ClickHouse-Key": self.ch.password})
                resp = self.conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200:
                    raise RuntimeError(f"clickhouse: HTTP {resp.status}: {body[:300]}")
                return body.strip()
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise

    def today_items(self, day: dt.date):
        v = self.scalar(f"SELECT total_items_sold FROM daily_sales_stats FINAL WHERE date = '{day}'")
        return int(v) if v else None

    def close(self):
        if self.conn is not None:
            self.conn.close()


class Shop:
    """One Postgres database + its ClickHouse database + salesd configs."""

    def __init__(self, bench, loaded: bench_data.Loaded, chdb: str):
        self.b, self.loaded, self.db, self.chdb = bench, loaded, loaded.db, chdb
        pg, ch = bench.pg, bench.ch
        ch.create_database(chdb)
        ddl = (REPO / "sql" / "clickhouse" / "001_daily_sales_stats.sql").read_text()
        for t in ("floor_daily_sales_stats", "peer_daily_sales_stats"):
            ch.query(ddl.replace("CREATE TABLE IF NOT EXISTS daily_sales_stats ", f"CREATE TABLE IF NOT EXISTS {t} "), database=chdb)
        self.conn = psycopg.connect(pg.conninfo(self.db), autocommit=True)
        today = bench.today
        self.item_id, = self.conn.execute(
            "SELECT min(i.order_item_id) FROM order_items i JOIN orders o ON o.order_id = i.order_id"
            " WHERE o.status = 'completed' AND o.order_date >= %s::date AND o.order_date < %s::date + 1",
            (today, today)).fetchone()
        self.cfg = self.write_cfg(f"salesd-{chdb}.yaml", "")

    def source_items(self) -> int:
        return int(self.conn.execute(
            "SELECT coalesce(sum(i.quantity), 0) FROM orders o JOIN order_items i ON i.order_id = o.order_id"
            " WHERE o.status = 'completed' AND o.order_date >= %s::date AND o.order_date < %s::date + 1",
            (self.b.today, self.b.today)).fetchone()[0])

    def write_cfg(self, name: str, extra: str) -> Path:
        b = self.b
        p = b.workdir / name
        p.write_text(
            f"instance: bench-{self.chdb}\n"
            "log_level: warning\n"
            f"{extra}"
            "postgres:\n"
            f"  conninfo: \"{b.pg.conninfo(self.db, user=b.pg.role)}\"\n"
            f"  password_file: \"{b.pg_secret}\"\n"
            "  tombstones_table: public.salesd_tombstones\n"
            "clickhouse:\n"
            f"  url: \"{b.ch.url}\"\n"
            f"  database: {self.chdb}\n"
            f"  user: \"{b.ch.user}\"\n"
            f"  password_file: \"{b.ch_secret}\"\n"
            "http:\n"
            "  listen: \"\"\n"
        )
        return p

    def bump(self) -> None:
        """Today's total_items_sold + 1 (a committed UPDATE)."""
        self.conn.execute("UPDATE order_items SET quantity = quantity + 1 WHERE order_item_id = %s", (self.item_id,))

    def salesd(self, *args: str, cfg: Path | None = None, binary: str | None = None) -> dict:
        return timed([binary or self.b.binary, "-c", str(cfg or self.cfg), *args])

    def floor(self, shape: str, settings: dict, lo, hi) -> float:
        """psql | curl: the whole pipeline's wall time."""
        b = self.b
        env = clean_env({"PGPASSWORD": b.pg.password, "PGOPTIONS": pgoptions(settings)})
        sql = floor_sql(shape, lo, hi)
        url = (f"{b.ch.url}/?database={self.chdb}&query=INSERT%20INTO%20floor_daily_sales_stats%20FORMAT%20TabSeparated")
        t0 = time.perf_counter()
        p1 = subprocess.Popen([str(b.pg.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                               "-h", b.pg.host, "-p", str(b.pg.port), "-U", b.pg.role, "-d", self.db, "-c", sql],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        p2 = subprocess.Popen(["curl", "-sS", "--fail", "-H", f"X-ClickHouse-User: {b.ch.user}",
                               "-H", f"X-ClickHouse-Key: {b.ch.password}", "--data-binary", "@-", url],
                              stdin=p1.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        p1.stdout.close()
        out2, err2 = p2.communicate(timeout=3600)
        err1 = p1.stderr.read()
        p1.wait()
        wall = time.perf_counter() - t0
        p1.stderr.close()
        if p1.returncode != 0 or p2.returncode != 0:
            raise RuntimeError(f"floor pipeline failed: psql {p1.returncode} {err1.decode()[-500:]}; "
                               f"curl {p2.returncode} {err2.decode()[-500:]}")
        return wall

    def calibrate(self, lo, hi, tries: int) -> tuple[str, dict, list[str]]:
        """The fastest candidate (shape, settings) for this range: each run
        `tries` times in one session, the first a warm-up, min of the rest."""
        notes, best = [], None
        for shape, settings in (CANDIDATES if lo is None else CANDIDATES_FEW_DAYS):
            with psycopg.connect(self.b.pg.conninfo(self.db, user=self.b.pg.role, password=self.b.pg.password),
                                 autocommit=True) as c:
                for k, v in settings.items():
                    c.execute(f"SET {k} = '{v}'")
                sql = floor_sql(shape, lo, hi)
                ts = []
                for _ in range(tries):
                    t0 = time.perf_counter()
                    c.execute(sql).fetchall()
                    ts.append(time.perf_counter() - t0)
            t = min(ts[1:]) if len(ts) > 1 else ts[0]
            notes.append(f"{shape} [{pgoptions(settings)}] {t * 1000:.0f} ms")
            if best is None or t < best[0]:
                best = (t, shape, settings)
        return best[1], best[2], notes

    def close(self):
        self.conn.close()


class Bench:
    def __init__(self, a):
        self.a = a
        self.binary = str(Path(a.salesd).resolve())
        self.profile = PROFILES[a.profile]
        self.workdir = Path(tempfile.mkdtemp(prefix="salesd-bench-"))
        self.pg, self.ch = BenchPostgres(), ClickHouseServer()
        self.today = dt.datetime.now(dt.timezone.utc).date()
        self.procs: list[subprocess.Popen] = []
        self.lines: list[str] = []

    def say(self, s: str = "") -> None:
        print(s, flush=True)

    def out(self, s: str = "") -> None:
        self.lines.append(s)
        print(s, flush=True)

    # ---------------------------------------------------------- daemon

    def start_daemon(self, shop: Shop, name: str, extra: str) -> tuple[subprocess.Popen, Path]:
        cfg = shop.write_cfg(name + ".yaml", "schedule: \"0 0 1 1 *\"\nrun_on_start: false\n" + extra)
        cfg.write_text(cfg.read_text().replace("log_level: warning", "log_level: info"))
        log = self.workdir / (name + ".log")
        proc = spawn([self.binary, "-c", str(cfg), "run"], log, deathsig=signal.SIGTERM)
        self.procs.append(proc)
        time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        return proc, log

    def stop_daemon(self, proc: subprocess.Popen) -> None:
        stop_process(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    @staticmethod
    def proc_status(pid: int) -> dict:
        out = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
        return out

    def signal_to_visible(self, proc, shop: Shop, poll: ChPoll, want: int, timeout=60.0) -> float:
        t0 = time.perf_counter()
        os.kill(proc.pid, signal.SIGUSR1)
        while True:
            v = poll.today_items(self.today)
            now = time.perf_counter()
            if v == want:
                return now - t0
            if now - t0 > timeout:
                raise RuntimeError(f"SIGUSR1: today's total_items_sold still {v}, want {want}, after {timeout}s")
            time.sleep(0.005)

    # ---------------------------------------------------------- main

    def run(self) -> int:
        a, P = self.a, self.profile
        t_start = time.monotonic()
        self.pg.start()
        self.ch.start()
        self.pg_secret = secret_file(self.workdir, "pg-password", self.pg.password)
        self.ch_secret = secret_file(self.workdir, "ch-password", self.ch.password)
        with self.pg.connect("postgres") as c:
            pg_version = c.execute("SHOW server_version").fetchone()[0]
        ch_version = self.ch.version()
        cpu = "?"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        du = shutil.disk_usage(tempfile.gettempdir())
        self.out(f"salesd bench, profile {a.profile}: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on "
                 f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), "
                 f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM")
        self.out(f"Postgres {pg_version} ({', '.join(f'{k}={v}' for k, v in PG_EXTRA.items())}, others as the test "
                 f"harness: fsync off, autovacuum off), ClickHouse {ch_version}; salesd {self.binary}")
        self.out(f"affected days: {self.today - dt.timedelta(days=1)} and {self.today} (UTC; reconcile_days 1); "
                 f"{a.reps} interleaved repetitions per measurement; disk free at start {du.free / 2**30:.0f} GiB")

        # ---- data
        self.say("loading data (generated inside Postgres) ...")
        self.pg.create_database("shop")
        main_l = bench_data.load(self.pg.conninfo("shop"), "shop", days=P["days"], orders_per_day=P["per_day"],
                                 today=self.today, log=self.out)
        if P["scale_hist"]:
            days, db = P["scale_hist"]
        else:
            days, db = P["scale_base"]
        self.pg.create_database(db)
        alt_l = bench_data.load(self.pg.conninfo(db), db, days=days, orders_per_day=P["per_day"],
                                today=self.today, log=self.out)
        main = Shop(self, main_l, "bench_main")
        alt = Shop(self, alt_l, "bench_alt")
        base, hist = (main, alt) if P["scale_hist"] else (alt, main)
        self.out(f"data: main {main_l.days} days x {main_l.orders_per_day:,} orders/day = {main_l.orders:,} orders, "
                 f"{main_l.items:,} items ({main_l.size_bytes / 2**30:.2f} GiB); "
                 f"history scaling: {base.loaded.days} days vs {hist.loaded.days} days at the same orders/day "
                 f"({alt_l.days}-day database {alt_l.size_bytes / 2**30:.2f} GiB); "
                 f"load {main_l.seconds + alt_l.seconds:.0f}s")

        # ---- salesd ready: schema + first run, so the watermark exists
        for s in (main, alt):
            s.salesd("init-schema")
            s.salesd("once")
        chk = subprocess.run([self.binary, "-c", str(main.cfg), "check-config"], capture_output=True, text=True,
                             env=clean_env())
        debounce = next((ln.split(":", 1)[1].split("#")[0].strip() for ln in chk.stdout.splitlines()
                         if ln.strip().startswith("debounce:")), "?")

        # ---- floor calibration
        lo, hi = self.today - dt.timedelta(days=1), self.today + dt.timedelta(days=1)
        self.out("floor query: the fastest candidate per case (run in one session, min after a warm-up):")
        floors = {}
        for key, shop, rlo, rhi, tries in (("days", main, lo, hi, 4), ("days-alt", alt, lo, hi, 4),
                                            ("full", main, None, None, 3 if a.profile == "small" else 2)):
            shape, settings, notes = shop.calibrate(rlo, rhi, tries)
            floors[key] = (shape, settings)
            self.out(f"  floor candidates, {key}: " + "; ".join(notes) + f" -> {shape}")

        # sanity: floor and salesd agree on today
        main.bump()
        main.salesd("once")
        main.floor(*floors["days"], lo, hi)
        cols = "total_orders, total_items_sold, total_revenue, total_cost, total_profit, average_order_value"
        got = self.ch.rows(f"SELECT {cols} FROM daily_sales_stats FINAL WHERE date = '{self.today}'", database="bench_main")
        flo = self.ch.rows(f"SELECT {cols} FROM floor_daily_sales_stats FINAL WHERE date = '{self.today}'",
                           database="bench_main")
        agree = "yes" if got == flo else f"NO: salesd {got} floor {flo}"

        # ---- interleaved 2-day runs (+ daemon SIGUSR1, + peer, + history scaling)
        daemon, dlog = self.start_daemon(main, "daemon-signal", "")
        poll = ChPoll(self.ch, "bench_main")
        want = main.source_items() + 1
        main.bump()
        self.signal_to_visible(daemon, main, poll, want)  # the daemon's first run
        time.sleep(3)
        idle = self.proc_status(daemon.pid)

        R = {k: [] for k in ("floor", "once", "sigusr1", "peer", "floor_base", "once_base", "floor_hist", "once_hist",
                             "once_cmp")}
        once_rss, peer_rss = [], []
        peer_env = clean_env({"PGPASSWORD": self.pg.password, "CH_PASSWORD": self.ch.password})
        peer_cmd = [a.peer_python, str(PEER), "--dsn", self.pg.conninfo("shop", user=self.pg.role),
                    "--day", str(self.today), "--ch-url", self.ch.url, "--ch-db", "bench_main", "--ch-user", self.ch.user,
                    "--table", "peer_daily_sales_stats"]
        base_key = "days" if base is main else "days-alt"
        hist_key = "days" if hist is main else "days-alt"
        for i in range(a.reps):
            self.say(f"round {i + 1}/{a.reps} ...")
            main.bump()
            R["floor"].append(main.floor(*floors["days"], lo, hi))
            main.bump()
            m = main.salesd("once")
            R["once"].append(m["wall"])
            once_rss.append(m["rss_kib"])
            if a.compare:
                main.bump()
                R["once_cmp"].append(main.salesd("once", binary=str(Path(a.compare).resolve()))["wall"])
            want = main.source_items() + 1
            main.bump()
            R["sigusr1"].append(self.signal_to_visible(daemon, main, poll, want))
            main.bump()
            m = timed(peer_cmd, env=peer_env)
            R["peer"].append(m["wall"])
            peer_rss.append(m["rss_kib"])
            for tag, s, key in (("base", base, base_key), ("hist", hist, hist_key)):
                s.bump()
                R[f"floor_{tag}"].append(s.floor(*floors[key], lo, hi))
                s.bump()
                m = s.salesd("once")
                R[f"once_{tag}"].append(m["wall"])
                if s is main:
                    once_rss.append(m["rss_kib"])
        end = self.proc_status(daemon.pid)
        poll.close()
        last_once = self.ch.rows("SELECT days_recomputed, days_written FROM salesd_runs WHERE trigger = 'cli'"
                                 " ORDER BY finished_at DESC LIMIT 1", database="bench_main")
        self.stop_daemon(daemon)

        # ---- first run: whole history, no watermark
        F = {"floor_full": [], "first": []}
        first_rss = []
        for i in range(P["first_reps"]):
            self.say(f"first run {i + 1}/{P['first_reps']} ...")
            F["floor_full"].append(main.floor(*floors["full"], None, None))
            for t in ("daily_sales_stats", "salesd_state"):
                self.ch.query(f"DROP TABLE IF EXISTS {t}", database="bench_main")
            main.salesd("init-schema")
            m = main.salesd("once")
            F["first"].append(m["wall"])
            first_rss.append(m["rss_kib"])

        # ---- freshness
        fresh = None
        if P["freshness"] and not a.no_freshness:
            fresh = self.freshness(main)

        # ---- report
        ms = lambda xs: f"{med(xs) * 1000:,.0f}"  # noqa: E731
        mn = lambda xs: f"{min(xs) * 1000:,.0f}"  # noqa: E731
        n = a.reps
        rows = [
            ["floor e2e: psql + curl insert, 2 days", ms(R["floor"]), mn(R["floor"]), "",
             f"{floors['days'][0]} [{pgoptions(floors['days'][1])}]"],
            ["salesd once, 2 days", ms(R["once"]), mn(R["once"]), f"{max(once_rss) / 1024:.1f}", "watermark present"],
            *([["salesd once, 2 days, --compare binary", ms(R["once_cmp"]), mn(R["once_cmp"]), "", a.compare]]
              if a.compare else []),
            ["SIGUSR1 -> visible in FINAL", ms(R["sigusr1"]), mn(R["sigusr1"]), f"{end.get('VmHWM', 0) / 1024:.1f}",
             "running daemon; peak = its VmHWM"],
            ["peer (psycopg2 + Decimal, today)", ms(R["peer"]), mn(R["peer"]), f"{max(peer_rss) / 1024:.1f}",
             os.path.relpath(a.peer_python, REPO)],
            [f"floor e2e, {base.loaded.days}-day history", ms(R["floor_base"]), mn(R["floor_base"]), "",
             f"{floors[base_key][0]} [{pgoptions(floors[base_key][1])}]"],
            [f"salesd once, {base.loaded.days}-day history", ms(R["once_base"]), mn(R["once_base"]), "", ""],
            [f"floor e2e, {hist.loaded.days}-day history", ms(R["floor_hist"]), mn(R["floor_hist"]), "",
             f"{floors[hist_key][0]} [{pgoptions(floors[hist_key][1])}]"],
            [f"salesd once, {hist.loaded.days}-day history", ms(R["once_hist"]), mn(R["once_hist"]), "", ""],
            [f"floor: GROUP BY whole history ({main.loaded.days} d) + insert", ms(F["floor_full"]), mn(F["floor_full"]),
             "", f"{floors['full'][0]} [{pgoptions(floors['full'][1])}]"],
            ["salesd first run (no watermark)", ms(F["first"]), mn(F["first"]), f"{max(first_rss) / 1024:.1f}", ""],
        ]
        self.out("")
        self.out(f"runs (ms; median and min of {n}, first runs of {P['first_reps']}; peak RSS MiB)")
        self.out(table(["measurement", "median", "min", "peak RSS", "notes"], rows, right={1, 2, 3}))

        big = a.profile != "small"

        def ratios(f):
            """The ratio from medians and from minimums."""
            return f(med), f(min)

        r_once = ratios(lambda g: g(R["once"]) / g(R["floor"]))
        s_salesd = ratios(lambda g: g(R["once_hist"]) / g(R["once_base"]))
        s_floor = ratios(lambda g: g(R["floor_hist"]) / g(R["floor_base"]))
        r_scale = (s_salesd[0] / s_floor[0], s_salesd[1] / s_floor[1])
        r_sig = ratios(lambda g: g(R["sigusr1"]) / g(R["once"]))
        r_first = ratios(lambda g: g(F["first"]) / g(F["floor_full"]))
        speedup = ratios(lambda g: g(R["peer"]) / g(R["once"]))
        mem = max(peer_rss) / max(once_rss)
        f2 = lambda r: (f"{r[0]:.2f}", f"{r[1]:.2f}")  # noqa: E731
        goals = [
            ["salesd once / floor e2e", *f2(r_once), "<= 1.10"],
            *([["--compare binary's once / floor e2e", *f2(ratios(lambda g: g(R["once_cmp"]) / g(R["floor"]))), ""],
               ["salesd once / --compare binary's once", *f2(ratios(lambda g: g(R["once"]) / g(R["once_cmp"]))), ""]]
              if a.compare else []),
            [f"history scaling ({hist.loaded.days} d / {base.loaded.days} d): salesd {s_salesd[0]:.2f}, "
             f"floor {s_floor[0]:.2f}; salesd / floor", *f2(r_scale), "<= 1.10"],
            ["SIGUSR1 -> visible / once", *f2(r_sig), "<= 1.10"],
            ["first run / GROUP BY floor", *f2(r_first), "<= 1.20"],
            ["peer / salesd once (speed-up)", *f2(speedup), ">= 3" if big else ">= 5"],
            ["peer peak RSS / salesd once peak RSS", f"{mem:.2f}", "", ">= 5 (salesd <= 1/5)"],
            ["daemon idle RSS after first run (MiB)", f"{idle.get('VmRSS', 0) / 1024:.1f}", "", "<= 10"],
            ["salesd peak RSS of a run (MiB; once, max)", f"{max(once_rss + first_rss) / 1024:.1f}", "",
             "<= 16 (large)" if big else "<= 16 at large"],
        ]
        self.out("")
        self.out("goals (issue 12; ratios from this run, of the medians and of the minimums)")
        self.out(table(["goal", "medians", "mins", "target"], goals, right={1, 2}))
        self.out(f"daemon: VmRSS {idle.get('VmRSS', 0) / 1024:.1f} MiB idle after its first run, "
                 f"{end.get('VmRSS', 0) / 1024:.1f} MiB after {n + 1} signalled runs, VmHWM {end.get('VmHWM', 0) / 1024:.1f} MiB")
        self.out(f"today's metrics, salesd vs floor: agree = {agree}; last salesd once recomputed "
                 f"{last_once[0][0] if last_once else '?'} days, wrote {last_once[0][1] if last_once else '?'}")
        if fresh:
            self.out("")
            self.out(f"freshness (notify.channel salesd_changes, debounce default = {debounce}; "
                     "commit -> value visible in daily_sales_stats FINAL, polled every 10 ms; ms)")
            self.out(table(["writer", "commits", "p50", "p95", "p99", "max", "runs", "lost", "target p99"], fresh,
                           right={1, 2, 3, 4, 5, 6}))
        self.out("")
        self.out("floor queries (psql -X -q -A -t, settings through PGOPTIONS; output piped into curl --data-binary @- "
                 "'INSERT INTO floor_daily_sales_stats FORMAT TabSeparated'):")
        for key in ("days", "full"):
            shape, settings = floors[key]
            self.out(f"  {key} [{pgoptions(settings)}]:")
            self.out("    " + floor_sql(shape, lo if key == "days" else None, hi if key == "days" else None))
        self.out(f"total bench time {time.monotonic() - t_start:.0f}s")
        for s in (main, alt):
            s.close()
        out = Path(a.out or REPO / "build" / f"bench-{a.profile}.txt")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(self.lines) + "\n")
        self.say(f"written to {out}")
        return 0

    def freshness(self, shop: Shop):
        proc, log = self.start_daemon(shop, "daemon-notify", "notify:\n  channel: salesd_changes\n")
        poll = ChPoll(self.ch, shop.chdb)
        try:
            deadline = time.monotonic() + 10
            while "listening" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            # start from a settled state: the daemon's value = the source's
            value = shop.source_items()
            shop.bump()
            value += 1
            servers.wait_until(lambda: poll.today_items(self.today) == value, timeout=30, interval=0.05,
                               what="the notify daemon's first run")
            rows = []
            for label, rate, secs, target in (("1 commit/s", 1, 30, "<= 1000"), ("20 commits/s", 20, 15, "<= 1500")):
                self.say(f"freshness: {label} for {secs}s ...")
                runs0 = int(self.ch.query("SELECT count() FROM salesd_runs", database=shop.chdb))
                lat, lost, final = self.fresh_phase(shop, poll, value, rate, secs)
                value = final
                time.sleep(1.0)
                runs1 = int(self.ch.query("SELECT count() FROM salesd_runs", database=shop.chdb))
                f = lambda p: f"{pct(lat, p) * 1000:,.0f}"  # noqa: E731
                rows.append([label, str(rate * secs), f(50), f(95), f(99),
                             f"{max(lat) * 1000:,.0f}" if lat else "n/a", str(runs1 - runs0), lost, target])
            return rows
        finally:
            poll.close()
            self.stop_daemon(proc)

    def fresh_phase(self, shop: Shop, poll: ChPoll, base_value: int, rate: int, secs: int):
        n = rate * secs
        commit_t = [None] * n
        seen_t = [None] * n
        done = threading.Event()
        errors = []

        def writer():
            try:
                with psycopg.connect(self.pg.conninfo(shop.db)) as c:
                    t0 = time.perf_counter()
                    for k in range(n):
                        wait = t0 + k / rate - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                        c.execute("UPDATE order_items SET quantity = quantity + 1 WHERE order_item_id = %s",
                                  (shop.item_id,))
                        c.commit()
                        commit_t[k] = time.perf_counter()
            except Exception as e:  # reported below
                errors.append(e)
            finally:
                done.set()

        th = threading.Thread(target=writer)
        th.start()
        last = base_value
        settle_deadline = None
        while True:
            v = poll.today_items(self.today)
            now = time.perf_counter()
            if v is not None and v > last:
                for k in range(last - base_value, min(v - base_value, n)):
                    seen_t[k] = now
                last = v
            if done.is_set():
                if settle_deadline is None:
                    settle_deadline = now + 10.0
                if last >= base_value + n or now > settle_deadline:
                    break
            time.sleep(0.01)
        th.join()
        if errors:
            raise errors[0]
        lat = [max(0.0, s - c) for s, c in zip(seen_t, commit_t) if s is not None and c is not None]
        source = shop.source_items()
        final = poll.today_items(self.today)
        missing = sum(1 for s in seen_t if s is None)
        lost = "no" if final == source and missing == 0 else f"YES: {final} visible, source {source}"
        return lat, lost, source


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--salesd", required=True)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="small")
    ap.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 5)")
    ap.add_argument("--peer-python", default=sys.executable,
                    help="the Python that runs the peer (needs psycopg2; default: this one)")
    ap.add_argument("--no-freshness", action="store_true")
    ap.add_argument("--compare", default=None, metavar="SALESD",
                    help="another salesd binary whose `once` joins the interleaved rounds (A/B of two builds)")
    ap.add_argument("--out", default=None, help="default build/bench-<profile>.txt")
    a = ap.parse_args()
    if a.reps is None:
        a.reps = PROFILES[a.profile]["reps"]
    chk = subprocess.run([a.peer_python, "-c", "import psycopg2"], capture_output=True)
    if chk.returncode != 0:
        print(f"bench: {a.peer_python} cannot import psycopg2 (the peer needs it; `make venv` installs it)",
              file=sys.stderr)
        return 1
    if not os.access("/usr/bin/time", os.X_OK):
        print("bench: /usr/bin/time is missing (apt-get install time)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    b = Bench(a)
    try:
        return b.run()
    except KeyboardInterrupt:
        print("bench: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        for p in list(b.procs):
            stop_process(p)
        cleanup("bench", (b.ch, b.pg), b.workdir)


if __name__ == "__main__":
    sys.exit(main())
