"""The shipped Grafana dashboard (contrib/grafana/salesd.json) against real
servers.  No Grafana runs here, so its queries are run the way Grafana would
send them, with the template variables and macros expanded as documented in
docs/dashboards.md:

- every SQL panel query runs on both ClickHouse backends (18.16 and the
  current engine through chdb) after real salesd runs and returns the
  columns its panel expects, with the values the seeded orders give;
- every PromQL expression (and each variable's label_values query) runs
  against the live Prometheus of test_alerting.py, which calls
  check_promql() while it scrapes a daemon, and returns at least one series.

The schema of the JSON itself is checked by `make dashboards-check`
(test/grafana/check-dashboard.cjs, Grafana's @grafana/schema types)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import requests

from harness.servers import REPO, wait_until

DASHBOARD = REPO / "contrib" / "grafana" / "salesd.json"
CLICKHOUSE = "grafana-clickhouse-datasource"

# Each SQL panel's columns, in order; the panels show them by these names.
SQL_COLUMNS = {
    "Revenue": ["revenue"],
    "Orders": ["orders"],
    "Average order value": ["average_order_value"],
    "Profit margin": ["margin_percent"],
    "Daily revenue, cost and profit": ["time", "revenue", "cost", "profit"],
    "Orders and items per day": ["time", "orders", "items"],
    "Average order value per day": ["time", "average_order_value"],
    "Profit margin per day": ["time", "margin_percent"],
    "Days most recently rewritten": ["date", "computed_at", "version", "total_orders", "total_items_sold",
                                     "total_revenue", "total_cost", "total_profit", "average_order_value"],
    "Latest runs (salesd_runs)": ["started_at", "finished_at", "instance", "trigger", "status", "days_recomputed",
                                  "days_written", "error"],
}


def dashboard():
    return json.loads(DASHBOARD.read_text())


def panels():
    for p in dashboard()["panels"]:
        if p["type"] == "row":
            yield from p.get("panels", [])
        else:
            yield p


def targets(ds_type):
    """(panel title, target) of every query on data sources of ds_type."""
    return [(p["title"], t) for p in panels() for t in p.get("targets", []) if t["datasource"]["type"] == ds_type]


# ---- Grafana's expansions (docs/dashboards.md, "How the queries were tested")


def expand_sql(sql, database, start: dt.datetime, end: dt.datetime):
    """The ClickHouse plugin's macros as it expands them: $__dateFilter(c) to
    c >= toDate('FROM') AND c <= toDate('TO'), $__timeFilter(c) to
    c >= toDateTime(FROM) AND c <= toDateTime(TO) in Unix seconds."""
    sql = sql.replace("${ch_database}", database)
    sql = re.sub(r"\$__dateFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= toDate('{start.date()}') AND {m[1]} <= toDate('{end.date()}')", sql)
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= toDateTime({int(start.timestamp())}) AND "
                           f"{m[1]} <= toDateTime({int(end.timestamp())})", sql)
    assert "$" not in sql, f"a macro or variable this test does not expand: {sql}"
    return sql


def expand_promql(expr, job):
    """$job as selected, $instance as its All value (.*), $__rate_interval as
    Grafana computes it for a 1 s scrape interval at this test's zoom (the
    floor is 4 scrape intervals; 1m keeps enough samples in every window)."""
    expr = expr.replace("$job", job).replace("$instance", ".*").replace("$__rate_interval", "1m")
    assert "$" not in expr, f"a variable this test does not expand: {expr}"
    return expr


# ---- the dashboard's own rules, checked without a server


def test_queries_use_final_or_the_view_and_have_expected_columns():
    sql = targets(CLICKHOUSE)
    assert {title for title, _ in sql} == set(SQL_COLUMNS), "SQL_COLUMNS must name every SQL panel"
    for title, t in sql:
        text = t["rawSql"]
        # daily_sales_stats is a ReplacingMergeTree: without FINAL a reader
        # sees every version of a day (SPEC §3)
        for m in re.finditer(r"\bdaily_sales_stats(_latest)?\b(\s+FINAL)?", text):
            assert m[1] or m[2], f"{title}: daily_sales_stats read without FINAL or the view"
        assert t["editorType"] == "sql" and t["datasource"]["uid"] == "${ds_clickhouse}", title
        # a time series query returns its time column first
        if t["format"] == 0:
            assert SQL_COLUMNS[title][0] == "time", title
    for _, t in targets("prometheus"):
        assert t["datasource"]["uid"] == "${ds_prometheus}"
    names = {v["name"] for v in dashboard()["templating"]["list"]}
    assert names == {"ds_clickhouse", "ch_database", "ds_prometheus", "job", "instance"}
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    # panels tile the 24-column grid without overlapping
    cells = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


# ---- every SQL query, on both backends, after real runs


def _seed(pg_db):
    """Three days with completed orders, a cancelled order, and days inside
    reconcile_days without any (zero rows: the divisions must not fail)."""
    pg_db.execute(
        "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES"
        " (1, 1, 'completed', now() - interval '3 days'),"
        " (2, 1, 'completed', now() - interval '1 day'),"
        " (3, 2, 'completed', now() - interval '1 day'),"
        " (4, 2, 'cancelled', now() - interval '2 days'),"
        " (5, 3, 'completed', now())"
    )
    pg_db.execute(
        "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price) VALUES"
        " (1, 1, 1, 2, 10.05, 4.00), (2, 2, 1, 1, 20.00, 15.00), (3, 3, 2, 3, 1.10, 0.70),"
        " (4, 4, 1, 9, 99.00, 1.00), (5, 5, 2, 1, 0.10, 0.05)"
    )


def _run_sql(ch_db, sql):
    """The rows of sql with its column names first (TSVWithNames)."""
    out = ch_db.rows(sql + "\nFORMAT TabSeparatedWithNames")
    return out[0], out[1:]


def test_sql_panels_run_on_both_backends(pg_db, ch_db, salesd):
    _seed(pg_db)
    cfg = salesd.write_config(pg_db, ch_db)
    r = salesd.run("init-schema", config=cfg)
    assert r.returncode == 0, r.stderr
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    # yesterday changes: the second run rewrites that day only
    pg_db.execute("INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price)"
                  " VALUES (6, 2, 3, 1, 5.00, 1.00)")
    r = salesd.run("once", config=cfg)
    assert r.returncode == 0, r.stderr
    # two versions of yesterday are stored (no merge yet): the panels must show one
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).date()
    stored = ch_db.rows(f"SELECT count() FROM daily_sales_stats WHERE date = '{yesterday}'")
    assert int(stored[0][0]) >= 2

    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(days=30), now + dt.timedelta(hours=1)
    results = {}
    for title, t in targets(CLICKHOUSE):
        sql = expand_sql(t["rawSql"], ch_db.database, start, end)
        names, rows = _run_sql(ch_db, sql)
        assert names == SQL_COLUMNS[title], f"{title} on {ch_db.backend}: {names}\n{sql}"
        assert rows, f"{title} on {ch_db.backend}: no rows\n{sql}"
        results[title] = rows

    # completed orders only: 2 x 10.05 + 20.00 + 5.00 + 3 x 1.10 + 0.10
    assert Decimal(results["Revenue"][0][0]) == Decimal("48.50")
    assert results["Orders"] == [["4"]]
    assert Decimal(results["Average order value"][0][0]) == Decimal("12.13")  # 48.50 / 4 = 12.125, half up
    # profit 48.50 - (8.00 + 15.00 + 1.00 + 2.10 + 0.05) = 22.35; 22.35 / 48.50 = 46.082...%
    assert Decimal(results["Profit margin"][0][0]) == Decimal("46.08")
    # one point per day: the view's FINAL, not one per stored version
    per_day = results["Daily revenue, cost and profit"]
    assert len({row[0] for row in per_day}) == len(per_day)
    assert sum(Decimal(row[1]) for row in per_day) == Decimal("48.50")
    assert all(Decimal(row[1]) != 0 for row in results["Profit margin per day"])
    # the last run's day comes first, once
    latest = results["Days most recently rewritten"]
    assert latest[0][0] == str(yesterday)
    assert [row[0] for row in latest].count(str(yesterday)) == 1
    assert {row[4] for row in results["Latest runs (salesd_runs)"]} == {"success"}
    assert len(results["Latest runs (salesd_runs)"]) == 2


# ---- every PromQL expression, on the live Prometheus of test_alerting.py


def _prom_query(prom, expr):
    r = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def _variable_values(prom, query, job):
    """A label_values(selector, label) variable, through the label values API
    as Grafana's Prometheus data source sends it."""
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert m, query
    params = {"match[]": expand_promql(m[1], job)}
    body = requests.get(f"{prom}/api/v1/label/{m[2]}/values", params=params, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]


def check_promql(prom, job, instance):
    """Every PromQL target and variable of the dashboard returns something on
    the Prometheus at `prom`, which scrapes `instance` as `job`."""
    exprs = [(title, expand_promql(t["expr"], job)) for title, t in targets("prometheus")]
    assert len(exprs) >= 15

    missing = []

    def all_answer():
        missing[:] = [f"{title}: {e}" for title, e in exprs if not _prom_query(prom, e)]
        return not missing

    try:
        wait_until(all_answer, timeout=30, what="a series from every dashboard expression")
    except AssertionError as e:
        raise AssertionError(f"{e}; none from:\n" + "\n".join(missing)) from None
    for v in dashboard()["templating"]["list"]:
        if v["type"] == "query":
            values = _variable_values(prom, v["query"]["query"], job)
            assert (job if v["name"] == "job" else instance) in values, (v["name"], values)

