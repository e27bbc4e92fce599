"""salesd's Postgres queries stay proportional to the days they touch.

A year of generated history, then a normal (incremental) run with
auto_explain logging every plan of the salesd role: the per-day aggregate
must read items through the order_items(order_id) index, one range scan per
day rather than one probe per order, never scan order_items sequentially,
and read a number of items proportional to the affected days, not to the
history.  No statement of the run may scan the whole orders table either.
When a day's order ids do not follow order_date (backdated orders), the
aggregate falls back to per-order probes rather than read the id range.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from harness import oracle, shop

DAYS = 365
ORDERS_PER_DAY = 300
ITEMS_PER_ORDER = 3

# One log entry starts with the stderr log prefix: "2026-11-25 07:57:19.326 UTC [18512] ".
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] ", re.M)


def _plans_from_log(text: str) -> list[dict]:
    """The JSON plans auto_explain wrote (log_format = json)."""
    starts = [m.start() for m in _ENTRY.finditer(text)] + [len(text)]
    plans = []
    for a, b in zip(starts, starts[1:]):
        entry = text[a:b]
        head, sep, body = entry.partition("plan:\n")
        if not sep or "LOG:" not in head:
            continue
        body = "\n".join(line[1:] if line.startswith("\t") else line for line in body.splitlines())
        plans.append(json.loads(body))
    return plans


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans(plan: dict) -> list[tuple[str, str | None, str | None, int]]:
    """(node type, relation, index, rows read) of every scan node.  A
    Bitmap Index Scan has no relation: it is attributed to its Bitmap Heap
    Scan parent's relation."""
    out = []

    def walk(node, parent_rel=None):
        rel = node.get("Relation Name")
        typ = node["Node Type"]
        rows = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
        if "Scan" in typ:
            out.append((typ, rel or parent_rel, node.get("Index Name"), rows))
        for child in node.get("Plans", []):
            walk(child, rel if typ == "Bitmap Heap Scan" else None)

    walk(plan)
    return out



def _explained_run(pg_db, salesd, cfg) -> list[dict]:
    """Runs `salesd once` with auto_explain logging every plan of the salesd
    role in this database, with actual row counts; returns the plans.
    Scoped to this database so no other test sees it."""
    role, db = pg_db.user, pg_db.name
    for setting, value in (
        ("session_preload_libraries", "auto_explain"),
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_format", "json"),
        ("auto_explain.log_analyze", "on"),
        ("auto_explain.log_timing", "off"),
        ("auto_explain.log_nested_statements", "on"),
        ("log_min_messages", "log"),
    ):
        pg_db.execute(f'ALTER ROLE {role} IN DATABASE "{db}" SET {setting} = \'{value}\'')
    log_path = pg_db.server.log_path
    offset = log_path.stat().st_size
    try:
        r = salesd.run("once", config=cfg, timeout=300)
    finally:
        pg_db.execute(f'ALTER ROLE {role} IN DATABASE "{db}" RESET ALL')
    assert r.returncode == 0, f"{r.stdout}{r.stderr}"
    with open(log_path, "rb") as f:
        f.seek(offset)
        log = f.read().decode("utf-8", "replace")
    plans = _plans_from_log(log)
    assert plans, f"auto_explain logged no plan; log tail:\n{log[-3000:]}"
    return plans

def test_incremental_run_uses_indexes_and_reads_only_affected_days(pg_db, ch18_db, salesd):
    stats = shop.generate(
        pg_db.superuser_conninfo,
        days=DAYS,
        orders_per_day=ORDERS_PER_DAY,
        items_per_order=ITEMS_PER_ORDER,
        seed=42,
    )
    pg_db.execute("ANALYZE")
    total_items = pg_db.query("SELECT count(*) FROM order_items")[0][0]
    assert total_items == stats.items

    cfg = salesd.write_config(pg_db, ch18_db)
    for cmd in ("init-schema", "once"):
        r = salesd.run(cmd, config=cfg, timeout=300)
        assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    first = oracle.ch_versions(ch18_db)
    runs_before = {x["run_id"] for x in oracle.ch_runs(ch18_db)}
    today = dt.datetime.now(dt.timezone.utc).date()
    assert len(first) >= DAYS

    # One item of a day about 100 days back changes.
    changed_day = today - dt.timedelta(days=100)
    oid = pg_db.query(
        "SELECT o.order_id FROM orders o JOIN order_items i USING (order_id) "
        "WHERE o.status = 'completed' AND o.order_date >= %s::date AND o.order_date < %s::date + 1 "
        "ORDER BY o.order_id LIMIT 1",
        (changed_day, changed_day),
    )[0][0]
    pg_db.execute("UPDATE order_items SET quantity = quantity + 1 WHERE order_item_id = "
                  "(SELECT min(order_item_id) FROM order_items WHERE order_id = %s)", (oid,))

    # Show every statement of the salesd role in this database, with actual
    # row counts.  Scoped to this database so no other test sees it.
    plans = _explained_run(pg_db, salesd, cfg)

    runs = [x for x in oracle.ch_runs(ch18_db) if x["run_id"] not in runs_before]
    assert len(runs) == 1, runs
    run = runs[0]
    affected = run["days_recomputed"]
    # today, yesterday (reconcile_days 1), the changed day, and the days of
    # rows near the watermark (the newest hour of the generated shop).
    assert 3 <= affected <= 5, f"an incremental run recomputed {affected} days: {run}"

    all_scans = [(p["Query Text"], s) for p in plans for s in _scans(p["Plan"])]
    seq_items = [q for q, (typ, rel, _, _) in all_scans if rel == "order_items" and typ == "Seq Scan"]
    assert not seq_items, f"Seq Scan on order_items in: {seq_items}"

    # The aggregate: the statement that sums the items, reading order_items
    # by its order_id index (orders come by order_date or by the day's
    # order_id range, whichever the planner finds cheaper).
    agg = [
        p
        for p in plans
        if "sum(i.quantity)" in p.get("Query Text", "")
        and any(rel == "order_items" and idx == "order_items_order_id_idx" for _, rel, idx, _ in _scans(p["Plan"]))
    ]
    assert len(agg) == 1, "not one statement sums order_items read by order_items_order_id_idx:\n" + "\n".join(
        f"{p['Query Text'][:200]!r}: {_scans(p['Plan'])}" for p in plans
    )
    # Not one order_items index probe per order: each affected day's items
    # come in one range scan (a few for a day split by a planner's choice).
    item_loops = [
        (node["Node Type"], int(node.get("Actual Loops", 1)))
        for node in _nodes(agg[0]["Plan"])
        if node.get("Relation Name") == "order_items"
    ]
    loops = sum(n for _, n in item_loops)
    assert loops <= 2 * affected, f"order_items probed {loops} times for {affected} affected days: {item_loops}"

    # Rows read from order_items by the whole run: proportional to the
    # affected days (about ORDERS_PER_DAY * ITEMS_PER_ORDER each), far
    # below the history.
    per_day = ORDERS_PER_DAY * ITEMS_PER_ORDER
    items_read = sum(rows for _, (_, rel, _, rows) in all_scans if rel == "order_items")
    print(
        f"plan check: {len(plans)} statements logged, {affected} days recomputed, "
        f"{items_read} of {total_items} order_items rows read (scans {item_loops}); "
        f"aggregate scans: {_scans(agg[0]['Plan'])}"
    )
    assert items_read <= 2 * affected * per_day, (
        f"read {items_read} order_items rows for {affected} affected days (~{per_day} items a day)"
    )
    assert items_read < total_items / 20, f"read {items_read} of {total_items} order_items rows"
    # The same for orders: finding the affected days and aggregating them
    # must not read the whole orders table either.  The aggregate reads a
    # day's orders twice (counted by order_date, then its order_id range
    # joined to the items), the affected days' query the changed ones: 3x a
    # day's orders, still ~1/25 of this history.  (Per-order probes into
    # order_items are caught by the loops check above, not by this bound.)
    total_orders = pg_db.query("SELECT count(*) FROM orders")[0][0]
    orders_read = sum(rows for _, (_, rel, _, rows) in all_scans if rel == "orders")
    seq_orders = [q[:400] for q, (typ, rel, _, _) in all_scans if rel == "orders" and typ == "Seq Scan"]
    assert not seq_orders, f"Seq Scan on orders ({orders_read} of {total_orders} rows read) in: {seq_orders}"
    print(f"plan check: {orders_read} of {total_orders} orders rows read")
    assert orders_read <= 3 * affected * ORDERS_PER_DAY, f"read {orders_read} orders rows for {affected} affected days"
    # And the result is right.
    orders, items = oracle.read_source(pg_db.query)
    exp = oracle.compute(orders, items, "UTC")
    got = oracle.ch_metrics(ch18_db)
    assert got[changed_day] == exp[changed_day]
    after = oracle.ch_versions(ch18_db)
    assert {d for d in after if first.get(d) != after[d]} <= {changed_day, today, today - dt.timedelta(days=1)}
    assert after[changed_day] > first[changed_day]


def test_first_run_aggregates_the_history_in_one_pass(pg_db, ch18_db, salesd):
    """With no watermark every day is affected: the aggregate must join
    items to orders in one pass, not probe order_items once per order
    (about a second a day at 100,000 orders a day)."""
    shop.generate(pg_db.superuser_conninfo, days=120, orders_per_day=200, items_per_order=3, seed=43)
    pg_db.execute("ANALYZE")
    total_orders = pg_db.query("SELECT count(*) FROM orders")[0][0]
    cfg = salesd.write_config(pg_db, ch18_db)
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode == 0, r.stderr
    plans = _explained_run(pg_db, salesd, cfg)
    agg = [p for p in plans if "sum(i.quantity)" in p.get("Query Text", "")]
    assert len(agg) == 1, [p.get("Query Text", "")[:200] for p in plans]
    item_scans = [
        (node["Node Type"], int(node.get("Actual Loops", 1)))
        for node in _nodes(agg[0]["Plan"])
        if node.get("Relation Name") == "order_items"
    ]
    loops = sum(n for _, n in item_scans)
    print(f"first run: {total_orders} orders; order_items scans of the aggregate: {item_scans}")
    assert item_scans and loops <= 4, f"order_items probed {loops} times for {total_orders} orders: {item_scans}"
    orders, items = oracle.read_source(pg_db.query)
    exp = oracle.compute(orders, items, "UTC")
    got = oracle.ch_metrics(ch18_db)
    assert {d: got[d] for d in exp} == exp


def test_incremental_run_when_order_ids_do_not_follow_dates(pg_db, ch18_db, salesd):
    """Two of today's orders are backdated by 100 days: that day's order ids
    then span 100 days of orders.  The aggregate must not read the items of
    that whole id range (it probes each order's items instead), and every
    day stays exact."""
    shop.generate(pg_db.superuser_conninfo, days=120, orders_per_day=100, items_per_order=3, seed=44)
    pg_db.execute("ANALYZE")
    cfg = salesd.write_config(pg_db, ch18_db)
    for cmd in ("init-schema", "once"):
        r = salesd.run(cmd, config=cfg, timeout=300)
        assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    runs_before = {x["run_id"] for x in oracle.ch_runs(ch18_db)}
    today = dt.datetime.now(dt.timezone.utc).date()
    back = today - dt.timedelta(days=100)
    pg_db.execute(
        "UPDATE orders SET order_date = order_date - interval '100 days' WHERE order_id IN"
        " (SELECT order_id FROM orders WHERE status = 'completed' AND order_date >= %s::date"
        "  AND order_date < %s::date + 1 ORDER BY order_id LIMIT 2)",
        (today, today),
    )
    plans = _explained_run(pg_db, salesd, cfg)
    runs = [x for x in oracle.ch_runs(ch18_db) if x["run_id"] not in runs_before]
    assert len(runs) == 1, runs
    run = runs[0]
    affected = run["days_recomputed"]
    assert 3 <= affected <= 5, run
    items_read = sum(
        rows for p in plans for (_, rel, _, rows) in _scans(p["Plan"]) if rel == "order_items"
    )
    total_items = pg_db.query("SELECT count(*) FROM order_items")[0][0]
    print(f"backdated orders: {affected} days recomputed, {items_read} of {total_items} order_items rows read")
    assert items_read <= 2 * affected * 100 * 3, f"read {items_read} order_items rows for {affected} affected days"
    orders, items = oracle.read_source(pg_db.query)
    exp = oracle.compute(orders, items, "UTC")
    got = oracle.ch_metrics(ch18_db)
    assert got[back] == exp[back] and got[today] == exp[today]
    assert {d: got[d] for d in exp} == exp
