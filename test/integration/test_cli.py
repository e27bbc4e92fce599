"""The command line (SPEC §5, §6): exit codes, error messages an operator can
act on, configuration errors with positions, secrets never shown, and
init-schema on both ClickHouse backends."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml

from harness import oracle
from harness.servers import free_port

SECRET_PG = "Pg-S3cret-never-shown-4711"
SECRET_CH = "Ch-S3cret-never-shown-0815"


def write_secret(tmp_path: Path, name: str, value: str) -> Path:
    p = tmp_path / name
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return p


def config_text(pg_conninfo: str, pg_password_file: str, ch_url: str, ch_db, extra: str = "", ch_password_file: str = "") -> str:
    """A complete config written by hand, so line numbers are known."""
    return (
        "timezone: UTC\n"
        "overlap: 0s\n"
        "log_level: info\n"
        "postgres:\n"
        f"  conninfo: \"{pg_conninfo}\"\n"
        f"  password_file: \"{pg_password_file}\"\n"
        "  statement_timeout: 30s\n"
        "clickhouse:\n"
        f"  url: \"{ch_url}\"\n"
        f"  database: \"{ch_db.database}\"\n"
        f"  user: \"{ch_db.user}\"\n"
        f"  password_file: \"{ch_password_file}\"\n"
        "  timeout: 2s\n"
        "  retries: 1\n"
        "http:\n"
        "  listen: \"\"\n" + extra
    )


def make_config(tmp_path, pg_db, ch_db, *, pg_conninfo=None, pg_password=None, ch_url=None, name="salesd.yaml") -> Path:
    pw = write_secret(tmp_path, "pg-password", pg_db.password if pg_password is None else pg_password)
    chpw = write_secret(tmp_path, "ch-password", ch_db.password) if ch_db.password else ""
    p = tmp_path / name
    p.write_text(
        config_text(pg_conninfo or pg_db.conninfo_nopw, str(pw), ch_url or ch_db.url, ch_db, ch_password_file=str(chpw))
    )
    return p


def output(r) -> str:
    return (r.stdout or "") + (r.stderr or "")


def assert_no_secret(r, *secrets):
    text = output(r)
    for s in secrets:
        if s:
            assert s not in text, f"a secret appears in salesd's output:\n{text}"


def ch_snapshot(ch_db):
    """What salesd could have changed in ClickHouse."""
    tables = {r[0] for r in ch_db.rows(f"SELECT name FROM system.tables WHERE database = '{ch_db.database}'")}
    snap = {"tables": tables}
    if "daily_sales_stats" in tables:
        snap["stats"] = oracle.ch_count(ch_db)
    if "salesd_state" in tables:
        snap["watermark"] = oracle.ch_watermark(ch_db)
    return snap


# ---------------------------------------------------------------- basics


def test_help_and_version(salesd):
    r = salesd.run("--help")
    assert r.returncode == 0, output(r)
    for word in ("once", "backfill", "init-schema", "check-config", "run"):
        assert word in r.stdout, f"--help does not mention {word!r}:\n{r.stdout}"
    r = salesd.run("--version")
    assert r.returncode == 0, output(r)
    assert re.search(r"\d+\.\d+", r.stdout), r.stdout


@pytest.mark.parametrize("args", [("frobnicate",), ("--no-such-option",), ("once", "--no-such-option"), ("backfill", "extra")])
def test_usage_errors_exit_64(salesd, tmp_path, args):
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text("timezone: UTC\n")
    r = salesd.run(*args, config=cfg)
    assert r.returncode == 64, f"exit {r.returncode}: {output(r)}"
    assert r.stderr.strip()


def test_missing_config_file_exits_78(salesd, tmp_path):
    missing = tmp_path / "nope.yaml"
    r = salesd.run("check-config", config=missing)
    assert r.returncode == 78, output(r)
    assert str(missing) in r.stderr


# ---------------------------------------------------------------- config errors

BASE = "timezone: UTC\npostgres:\n  conninfo: \"host=127.0.0.1 dbname=shop\"\n"
BASE_LINES = BASE.count("\n")

BAD_CONFIGS = {
    # name: (text appended to BASE, key named, 1-based line, 1-based column or None)
    "unknown top-level key": ("bogus_key: 1\n", "bogus_key", BASE_LINES + 1, 1),
    "unknown nested key": ("clickhouse:\n  colour: red\n", "clickhouse.colour", BASE_LINES + 2, 3),
    "bad duration": ("overlap: 15 minutes\n", "overlap", BASE_LINES + 1, None),
    "bad duration unit": ("clickhouse:\n  timeout: 30x\n", "clickhouse.timeout", BASE_LINES + 2, None),
    "wrong type list for int": ("reconcile_days: [1, 2]\n", "reconcile_days", BASE_LINES + 1, None),
    "wrong type bool": ("run_on_start: maybe\n", "run_on_start", BASE_LINES + 1, None),
    "negative count": ("reconcile_days: -1\n", "reconcile_days", BASE_LINES + 1, None),
    "mapping expected": ("http: 5\n", "http", BASE_LINES + 1, None),
    "bad cron": ("schedule: \"61 * * * *\"\n", "schedule", BASE_LINES + 1, None),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_78_with_position(salesd, tmp_path, case):
    extra, key, line, col = BAD_CONFIGS[case]
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text(BASE + extra)
    for cmd in ("check-config", "once"):
        r = salesd.run(cmd, config=cfg)
        assert r.returncode == 78, f"{cmd}: exit {r.returncode}\n{output(r)}"
        pos = rf"{re.escape(str(cfg))}:{line}:{col if col else r'[0-9]+'}"
        assert re.search(pos, r.stderr), f"{cmd}: no {pos!r} in:\n{r.stderr}"
        assert key in r.stderr, f"{cmd}: key {key!r} not named:\n{r.stderr}"


def test_bad_timezone_exits_78_with_position(salesd, tmp_path):
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text("log_level: info\ntimezone: Mars/Olympus_Mons\n")
    r = salesd.run("check-config", config=cfg)
    assert r.returncode == 78, output(r)
    assert re.search(rf"{re.escape(str(cfg))}:2:[0-9]+", r.stderr), r.stderr
    assert "timezone" in r.stderr and "Mars/Olympus_Mons" in r.stderr, r.stderr


def test_config_errors_are_collected(salesd, tmp_path):
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text("overlap: soon\nlog_level: info\nbogus: 1\nclickhouse:\n  retries: many\n")
    r = salesd.run("check-config", config=cfg)
    assert r.returncode == 78, output(r)
    for line in (1, 3, 5):
        assert re.search(rf"{re.escape(str(cfg))}:{line}:[0-9]+", r.stderr), f"line {line} not reported:\n{r.stderr}"


def test_yaml_syntax_error_exits_78(salesd, tmp_path):
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text("timezone: UTC\npostgres: [\n")
    r = salesd.run("check-config", config=cfg)
    assert r.returncode == 78, output(r)
    assert re.search(rf"{re.escape(str(cfg))}:[23]:[0-9]+", r.stderr), r.stderr


# ---------------------------------------------------------------- check-config


def test_check_config_prints_effective_config_without_secrets(salesd, tmp_path):
    pw = write_secret(tmp_path, "pg-password", SECRET_PG)
    chpw = write_secret(tmp_path, "ch-password", SECRET_CH)
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text(
        "timezone: Europe/Berlin\n"
        "postgres:\n"
        f"  conninfo: \"host=127.0.0.1 port=5999 dbname=shop user=salesd password={SECRET_PG}x\"\n"
        f"  password_file: \"{pw}\"\n"
        "  completed_statuses: [completed, shipped]\n"
        "clickhouse:\n"
        f"  password_file: \"{chpw}\"\n"
    )
    r = salesd.run("check-config", config=cfg, env={"SALESD_CLICKHOUSE_URL": "http://127.0.0.1:18123"})
    assert r.returncode == 0, output(r)
    assert_no_secret(r, SECRET_PG, SECRET_CH)
    eff = yaml.safe_load(r.stdout)
    assert eff["timezone"] == "Europe/Berlin"
    assert eff["schedule"] == "0 */6 * * *"
    assert eff["reconcile_days"] == 1
    assert eff["run_on_start"] is True
    assert eff["postgres"]["orders_table"] == "public.orders"
    assert eff["postgres"]["order_items_table"] == "public.order_items"
    assert eff["postgres"]["tombstones_table"] == ""
    assert eff["postgres"]["completed_statuses"] == ["completed", "shipped"]
    assert eff["postgres"]["lock_key"] == 7345001
    assert "port=5999" in eff["postgres"]["conninfo"]
    assert eff["clickhouse"]["url"] == "http://127.0.0.1:18123", "SALESD_CLICKHOUSE_URL did not override the key"
    assert eff["clickhouse"]["database"] == "default"
    assert eff["clickhouse"]["retries"] == 5
    for section, keys in (("http", ("listen", "token_file")), ("notify", ("channel", "debounce"))):
        for k in keys:
            assert k in eff[section], f"{section}.{k} missing from check-config output"
    # The output is itself a valid config.
    again = tmp_path / "effective.yaml"
    again.write_text(r.stdout)
    r2 = salesd.run("check-config", config=again)
    assert r2.returncode == 0, output(r2)
    assert_no_secret(r2, SECRET_PG, SECRET_CH)


def test_check_config_masks_password_from_environment(salesd, tmp_path):
    cfg = tmp_path / "salesd.yaml"
    cfg.write_text("timezone: UTC\n")
    r = salesd.run(
        "check-config",
        config=cfg,
        env={"SALESD_POSTGRES_CONNINFO": f"postgresql://salesd:{SECRET_PG}@127.0.0.1:5999/shop"},
    )
    assert r.returncode == 0, output(r)
    assert_no_secret(r, SECRET_PG)
    assert "5999" in r.stdout


# ---------------------------------------------------------------- servers unavailable


def test_clickhouse_unreachable_exits_69(salesd, pg_db, ch_db, tmp_path):
    good = make_config(tmp_path, pg_db, ch_db, name="good.yaml")
    assert salesd.run("init-schema", config=good).returncode == 0
    before = ch_snapshot(ch_db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = make_config(tmp_path, pg_db, ch_db, ch_url=url)
    for cmd in ("once", "init-schema"):
        t0 = time.monotonic()
        r = salesd.run(cmd, config=cfg, timeout=90)
        took = time.monotonic() - t0
        assert r.returncode == 69, f"{cmd}: exit {r.returncode}\n{output(r)}"
        assert f"127.0.0.1:{port}" in r.stderr, f"{cmd}: the URL is not named:\n{r.stderr}"
        assert re.search(r"(?m)^<[0-3]>.*127\.0\.0\.1:" + str(port), r.stderr), f"{cmd}: no error-priority log line:\n{r.stderr}"
        assert "clickhouse.url" in r.stderr, f"{cmd}: no hint at the key to check:\n{r.stderr}"
        assert took < 60, f"{cmd} took {took:.0f}s with retries: 1, timeout: 2s"
        assert_no_secret(r, pg_db.password, ch_db.password)
    assert ch_snapshot(ch_db) == before


def test_postgres_unreachable_exits_69(salesd, pg_db, ch_db, tmp_path):
    good = make_config(tmp_path, pg_db, ch_db, name="good.yaml")
    assert salesd.run("init-schema", config=good).returncode == 0
    before = ch_snapshot(ch_db)
    port = free_port()
    cfg = make_config(tmp_path, pg_db, ch_db, pg_conninfo=f"host=127.0.0.1 port={port} dbname=shop user=salesd connect_timeout=3")
    r = salesd.run("once", config=cfg, timeout=90)
    assert r.returncode == 69, f"exit {r.returncode}\n{output(r)}"
    assert "127.0.0.1" in r.stderr and str(port) in r.stderr, f"host/port not named:\n{r.stderr}"
    assert "postgres.conninfo" in r.stderr, f"no hint at the key to check:\n{r.stderr}"
    assert_no_secret(r, pg_db.password, ch_db.password)
    after = ch_snapshot(ch_db)
    assert after == before, f"ClickHouse changed: {before} -> {after}"
    runs = oracle.ch_runs(ch_db)
    assert all(x["status"] == "failed" for x in runs), runs


@pytest.mark.parametrize("how", ["password_file", "conninfo", "PGPASSWORD"])
def test_wrong_postgres_password(salesd, pg_db, ch_db, tmp_path, how):
    good = make_config(tmp_path, pg_db, ch_db, name="good.yaml")
    assert salesd.run("init-schema", config=good).returncode == 0
    before = ch_snapshot(ch_db)
    wrong = "Wr0ng-" + SECRET_PG
    env = None
    if how == "password_file":
        cfg = make_config(tmp_path, pg_db, ch_db, pg_password=wrong)
    else:
        cfg = tmp_path / "salesd.yaml"
        conninfo = pg_db.conninfo_nopw + (f" password={wrong}" if how == "conninfo" else "")
        chpw = write_secret(tmp_path, "ch-password", ch_db.password) if ch_db.password else ""
        cfg.write_text(config_text(conninfo, "", ch_db.url, ch_db, ch_password_file=str(chpw)))
        if how == "PGPASSWORD":
            env = {"PGPASSWORD": wrong}
    r = salesd.run("once", config=cfg, env=env)
    assert r.returncode != 0, output(r)
    assert re.search(r"password|authentication", r.stderr, re.I), f"the cause is not said:\n{r.stderr}"
    assert_no_secret(r, wrong, pg_db.password, ch_db.password)
    assert ch_snapshot(ch_db) == before


# ---------------------------------------------------------------- init-schema

SALESD_TABLES = {"daily_sales_stats", "salesd_runs", "salesd_heartbeat", "salesd_state", "daily_sales_stats_latest"}


def test_init_schema_is_idempotent(salesd, pg_db, ch_db, tmp_path):
    cfg = make_config(tmp_path, pg_db, ch_db)
    r1 = salesd.run("init-schema", config=cfg)
    assert r1.returncode == 0, output(r1)
    assert SALESD_TABLES <= ch_snapshot(ch_db)["tables"]
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, output(r)
    count = oracle.ch_count(ch_db)
    assert count >= 1
    r2 = salesd.run("init-schema", config=cfg)
    assert r2.returncode == 0, output(r2)
    assert oracle.ch_count(ch_db) == count, "init-schema lost data"
    assert_no_secret(r1, pg_db.password, ch_db.password)
    assert_no_secret(r2, pg_db.password, ch_db.password)


def test_init_schema_rejects_wrong_column_type(salesd, pg_db, ch_db, tmp_path):
    cfg = make_config(tmp_path, pg_db, ch_db)
    ch_db.query(
        f"CREATE TABLE `{ch_db.database}`.daily_sales_stats ("
        " date Date, total_orders UInt32, total_items_sold UInt32,"
        " total_revenue Float64, total_cost Decimal(15, 2), total_profit Decimal(15, 2),"
        " average_order_value Decimal(15, 2), computed_at DateTime('UTC'), version UInt64"
        ") ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(date) ORDER BY date"
    )
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode != 0, output(r)
    msg = r.stderr
    assert "daily_sales_stats" in msg and "total_revenue" in msg, msg
    assert re.search(r"Decimal\(15, ?2\)", msg), f"expected type not named:\n{msg}"
    assert "Float64" in msg, f"actual type not named:\n{msg}"
    # And a run refuses to write into it.
    r = salesd.run("once", config=cfg)
    assert r.returncode != 0, output(r)
    assert oracle.ch_count(ch_db) == 0
