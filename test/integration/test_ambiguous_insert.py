"""Ambiguous insert failures (SPEC §3): when the answer to an INSERT is lost,
salesd cannot know whether the rows landed.  A plain MergeTree insert is not
deduplicated, so the retry must first re-read the days' latest rows and send
only what is still missing: never two rows of a day with the same version.

A small HTTP relay in front of the real ClickHouse loses the answer to the
first INSERT into daily_sales_stats, either after forwarding it (the rows
landed) or before (they did not)."""

import signal
import time
from decimal import Decimal

import pytest

from harness.relay import DROP, FORWARD, FORWARD_THEN_DROP, Relay


class LossyRelay(Relay):
    """Loses the answer to the first INSERT into `table`: "after-forward"
    (the rows landed) or "before-forward" (they did not)."""

    def __init__(self, upstream_url, mode, table="daily_sales_stats"):
        self.to_lose = 1
        self.lost = 0

        def decide(path, body):
            if f"INSERT%20INTO%20{table}" not in path or self.to_lose == 0:
                return FORWARD
            self.to_lose -= 1
            self.lost += 1
            return FORWARD_THEN_DROP if mode == "after-forward" else DROP

        super().__init__(upstream_url, decide)


@pytest.mark.parametrize("mode", ["after-forward", "before-forward"])
def test_lost_insert_answer_is_retried_without_duplicates(pg_db, ch_db, salesd, mode):
    pg_db.execute(
        "INSERT INTO orders VALUES"
        " (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT), (2, 1, 'completed', '2026-01-11 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (1, 1, 1, 2, 10.00, 1.00, DEFAULT), (2, 2, 1, 1, 0.10, 0.05, DEFAULT)"
    )
    cfg = salesd.write_config(pg_db, ch_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    relay = LossyRelay(ch_db.url, mode)
    try:
        cfg = salesd.write_config(pg_db, ch_db, {"clickhouse.url": relay.url, "clickhouse.retries": 2})
        r = salesd.run("once", config=cfg)
        assert r.returncode == 0, r.stderr
        assert relay.lost == 1
    finally:
        relay.close()

    days = int(ch_db.rows("SELECT count() FROM daily_sales_stats FINAL FORMAT TabSeparated")[0][0])
    raw = int(ch_db.rows("SELECT count() FROM daily_sales_stats FORMAT TabSeparated")[0][0])
    assert days >= 4  # the two order days, yesterday and today
    assert raw == days  # exactly one row per day: nothing was inserted twice
    dup = ch_db.rows(
        "SELECT date, version, count() AS n FROM daily_sales_stats GROUP BY date, version HAVING n > 1"
        " FORMAT TabSeparated"
    )
    assert dup == []
    got = ch_db.rows(
        "SELECT toString(date), toString(total_revenue) FROM daily_sales_stats FINAL"
        " WHERE date IN ('2026-01-10', '2026-01-11') ORDER BY date FORMAT TabSeparated"
    )
    assert [(d, Decimal(v)) for d, v in got] == [("2026-01-10", Decimal("20.00")), ("2026-01-11", Decimal("0.10"))]
    run = ch_db.rows("SELECT status, days_written FROM salesd_runs FORMAT TabSeparated")
    assert run == [["success", str(days)]]


def test_lost_run_row_answer_is_not_written_twice(pg_db, ch_db, salesd):
    """The daemon keeps a run row it could not confirm and sends it with the
    next run's; if the lost insert had landed, it must not be sent again."""
    cfg = salesd.write_config(pg_db, ch_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    relay = LossyRelay(ch_db.url, "after-forward", table="salesd_runs")
    try:
        cfg = salesd.write_config(
            pg_db, ch_db, {"clickhouse.url": relay.url, "run_on_start": False, "schedule": "0 0 1 1 *"}
        )
        proc = salesd.start("run", config=cfg)
        proc.wait_for("ready")
        proc.send_signal(signal.SIGUSR1)
        proc.wait_for("salesd_runs row could not be written")
        assert relay.lost == 1
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while proc.stderr.count("(trigger signal): success") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.stop() == 0, proc.stderr[-3000:]
    finally:
        relay.close()
    rows = ch_db.rows("SELECT run_id, count() FROM salesd_runs GROUP BY run_id FORMAT TabSeparated")
    assert len(rows) == 2
    assert all(n == "1" for _, n in rows)
