"""The watermark against real concurrency (SPEC §4): a transaction that is
open during a run and commits afterwards must still be seen by the next run,
even with no overlap and no reconcile window to hide a mistake."""

from decimal import Decimal

STRICT = {"overlap": "0s", "reconcile_days": 0}


def day_revenue(ch_db, day):
    rows = ch_db.rows(
        f"SELECT toString(total_revenue), total_orders FROM daily_sales_stats FINAL WHERE date = '{day}'"
        " FORMAT TabSeparated"
    )
    return [(Decimal(r[0]), int(r[1])) for r in rows]


def watermark(ch_db):
    rows = ch_db.rows("SELECT value FROM salesd_state FINAL WHERE name = 'watermark' FORMAT TabSeparated")
    return rows[0][0] if rows else None


def test_late_commit_is_not_lost(pg_db, ch_db, salesd):
    cfg = salesd.write_config(pg_db, ch_db, STRICT)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    pg_db.execute(
        "INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT)"
    )
    assert salesd.run("once", config=cfg).returncode == 0
    assert day_revenue(ch_db, "2026-01-10") == [(Decimal("10.00"), 1)]

    # A shop transaction starts (its rows are stamped with its start time),
    # then another one commits a later change, then salesd runs.
    late = pg_db.connect(autocommit=False)
    late.execute(
        "INSERT INTO orders VALUES (2, 1, 'completed', '2026-01-05 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (2, 2, 1, 3, 5.00, 1.00, DEFAULT)"
    )
    pg_db.execute("UPDATE order_items SET price = 11.00 WHERE order_item_id = 1")
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    assert day_revenue(ch_db, "2026-01-10") == [(Decimal("11.00"), 1)]
    assert day_revenue(ch_db, "2026-01-05") == []  # not committed yet: not visible, not written

    # the watermark stopped before the open transaction's start
    xact_start = pg_db.query(
        "SELECT to_char(xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM pg_stat_activity"
        " WHERE pid = %s",
        (late.info.backend_pid,),
    )[0][0]
    assert watermark(ch_db) < xact_start

    late.commit()
    late.close()
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    assert day_revenue(ch_db, "2026-01-05") == [(Decimal("15.00"), 1)]
    # with nothing open any more, the watermark catches up with the newest change
    newest = pg_db.query(
        "SELECT to_char(greatest((SELECT max(updated_at) FROM orders), (SELECT max(updated_at) FROM order_items))"
        " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    )[0][0]
    assert watermark(ch_db) == newest


def test_without_the_guard_role_salesd_warns_and_relies_on_overlap(pg_db, ch_db, salesd):
    pg_db.execute(f"REVOKE pg_read_all_stats FROM {pg_db.user}")
    try:
        cfg = salesd.write_config(pg_db, ch_db)
        assert salesd.run("init-schema", config=cfg).returncode == 0
        r = salesd.run("once", config=cfg)
        assert r.returncode == 0, r.stderr
        assert "grant it pg_read_all_stats" in r.stderr
    finally:
        pg_db.execute(f"GRANT pg_read_all_stats TO {pg_db.user}")


def test_a_row_stamped_in_the_future_does_not_hide_later_changes(pg_db, ch_db, salesd):
    """An application server with a wrong clock stamps a row a day ahead.
    The watermark must not follow it into the future (SPEC §4 step 5: capped
    by the source's own clock), or every change until then is missed."""
    cfg = salesd.write_config(pg_db, ch_db, {"reconcile_days": 0})
    assert salesd.run("init-schema", config=cfg).returncode == 0
    pg_db.execute(
        "INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (1, 1, 1, 1, 10.00, 1.00, DEFAULT);"
        "INSERT INTO orders VALUES (2, 1, 'completed', '2026-01-20 12:00+00', now() + interval '1 day');"
        "INSERT INTO order_items VALUES (2, 2, 1, 1, 7.00, 1.00, now() + interval '1 day')"
    )
    assert salesd.run("once", config=cfg).returncode == 0
    wm = watermark(ch_db)
    db_now = pg_db.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")[0][0]
    assert wm is not None and wm <= db_now, (wm, db_now)
    # A change made now, to another day: the next run must see it.
    pg_db.execute("UPDATE order_items SET price = 12.00 WHERE order_item_id = 1")
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    assert day_revenue(ch_db, "2026-01-10") == [(Decimal("12.00"), 1)]
