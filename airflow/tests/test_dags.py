"""The salesd DAGs in real Airflow, every test on both lines (3.3.2 and
2.10.5): they load, the monitor passes against a healthy daemon and fails,
with an alert, when the daemon is down, its heartbeat is stale or its audit
found drift, and the rerun DAG makes the daemon run.  Sensor timeouts are
shortened through the SALESD_* variables the DAGs read at parse time.

The `airflow dags test` scenarios are test classes: each class sets up one
daemon (class-scoped fixtures) and its tests run against it once per line
(the `airflow` fixture is parametrized), so a scenario's set-up is paid once,
not once per line."""

import datetime
import json
import signal
import subprocess
import time

import pytest

from conftest import AIRFLOW_LINES, DAGS, _base_env, venv_python

PROBES = DAGS.parent / "tests"

# Short sensor timing for the failure tests: a 1 s poke and a 3 s timeout
# still give each sensor several pokes in reschedule mode.
FAST = {"SALESD_MONITOR_POKE_INTERVAL": "1", "SALESD_MONITOR_TIMEOUT": "3", "SALESD_MONITOR_HTTP_TIMEOUT": "2"}


def _probe(venv, script, tmp_path, stdin=None, marker=None):
    res = subprocess.run(
        [str(venv_python(venv)), str(PROBES / script), str(DAGS)],
        input=stdin,
        env=_base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"{script} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(marker)]
    assert len(lines) == 1, res.stdout[-3000:]
    return json.loads(lines[0][len(marker):])


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


LINES = list(AIRFLOW_LINES)


@pytest.mark.parametrize("line", LINES)
def test_dagbag_loads_both_dags(line, tmp_path):
    venv, version_prefix = AIRFLOW_LINES[line]
    bag = _probe(venv, "dagbag_probe.py", tmp_path, marker="DAGBAG_PROBE ")
    assert bag["airflow_version"].startswith(version_prefix)
    assert bag["import_errors"] == {}
    # No deprecated import (or anything else) on this line: Airflow 3 warns
    # about airflow.decorators, airflow.models.dag, ...
    assert bag["dag_warnings"] == []
    assert sorted(bag["dags"]) == ["salesd_monitor", "salesd_rerun"]
    # Only the two DAG files are parsed (.airflowignore keeps the helper
    # module out), each well under the 2 s budget.
    assert sorted(p.rsplit("/", 1)[-1] for p in bag["files"]) == ["salesd_monitor.py", "salesd_rerun.py"]
    for path, seconds in bag["files"].items():
        assert seconds < 2.0, f"{path} took {seconds:.2f}s to parse"

    monitor = bag["dags"]["salesd_monitor"]
    assert monitor["schedule_seconds"] == 1800
    assert monitor["catchup"] is False
    assert "salesd" in monitor["tags"]
    assert "daemon_healthy" in monitor["doc_md"] and "SALESD_MONITOR_TIMEOUT" in monitor["doc_md"]
    assert set(monitor["params"]) >= {"database", "heartbeat_max_age_seconds", "schedule_period_seconds", "grace_seconds"}
    assert sorted(monitor["tasks"]) == ["daemon_healthy", "heartbeat_fresh", "stats_fresh"]
    for task_id, task in monitor["tasks"].items():
        assert task["http_sensor"], task_id
        assert task["mode"] == "reschedule", task_id
        assert task["poke_interval"] == 60 and task["timeout"] == 600, task_id
        assert task["check_response"] is False, task_id
        assert task["owner"] == "data-platform" and task["has_failure_callback"], task_id
    assert monitor["tasks"]["daemon_healthy"]["http_conn_id"] == "salesd_http"
    assert monitor["tasks"]["heartbeat_fresh"]["http_conn_id"] == "clickhouse_http"
    assert monitor["tasks"]["stats_fresh"]["http_conn_id"] == "clickhouse_http"

    rerun = bag["dags"]["salesd_rerun"]
    assert rerun["schedule_kind"] == "NullTimetable"  # manual only
    assert sorted(rerun["tasks"]) == ["request_run", "wait_for_run"]
    # The Python step is a TaskFlow task; the wait stays an HttpSensor.
    assert rerun["tasks"]["request_run"]["operator_name"] == "@task"
    assert rerun["tasks"]["request_run"]["python_callable"] == "request_run"
    assert rerun["tasks"]["request_run"]["downstream"] == ["wait_for_run"]
    assert rerun["tasks"]["request_run"]["has_failure_callback"]
    assert rerun["tasks"]["wait_for_run"]["http_sensor"]
    assert rerun["tasks"]["wait_for_run"]["mode"] == "reschedule"
    assert rerun["tasks"]["wait_for_run"]["http_conn_id"] == "clickhouse_http"


@pytest.mark.parametrize("line", LINES)
def test_bad_timeout_setting_is_an_import_error(line, tmp_path):
    env = {**_base_env(tmp_path), "SALESD_MONITOR_TIMEOUT": "ten minutes"}
    res = subprocess.run(
        [str(venv_python(AIRFLOW_LINES[line][0])), str(PROBES / "dagbag_probe.py"), str(DAGS)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    bag = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("DAGBAG_PROBE "))[13:])
    errors = {p.rsplit("/", 1)[-1]: e for p, e in bag["import_errors"].items()}
    assert list(errors) == ["salesd_monitor.py"]
    assert "SALESD_MONITOR_TIMEOUT must be a positive whole number of seconds, got 'ten minutes'" in errors["salesd_monitor.py"]


# --------------------------------------------------------------------------
# Check functions against canned answers
# --------------------------------------------------------------------------

HEALTH_OK = json.dumps({"status": "ok", "instance": "a", "last_success": "2026-11-25T00:00:00Z"})
HEALTH_STANDBY = json.dumps({"status": "standby", "instance": "b"})
HEALTH_FAILING = json.dumps(
    {"status": "failing", "instance": "a", "last_success": None,
     "last_run": {"status": "failed", "started_at": "2026-11-25T06:00:00Z", "error": "cannot connect to postgres"}}
)
CH_EXCEPTION = "1\t1795593350\t1795593351\nCode: 241, e.displayText() = DB::Exception: Memory limit exceeded"
NOW = 1795593350
MIDNIGHT = 1795564800  # 2026-11-25T00:00:00Z

HEALTH_AUDIT_MISMATCH = json.dumps(
    {"status": "ok", "instance": "h1", "audit": {"days_checked": 9, "mismatches": 1, "last_audit": "2026-01-01T00:00:00Z",
     "last_mismatch": {"day": "2025-12-30", "columns": ["total_revenue"], "at": "2026-01-01T00:00:00Z"}}}
)

CHECK_CASES = [
    # (id, dag, check, status, body, params, xcom, verdict, reason fragment)
    ("health-ok", "salesd_monitor", "check_daemon", 200, HEALTH_OK, None, None, "pass", None),
    ("health-standby", "salesd_monitor", "check_daemon", 200, HEALTH_STANDBY, None, None, "wait", "status 'standby'"),
    ("health-standby-accepted", "salesd_monitor", "check_daemon", 200, HEALTH_STANDBY,
     {"healthy_statuses": ["ok", "standby"]}, None, "pass", None),
    ("health-failing-fails-fast", "salesd_monitor", "check_daemon", 503, HEALTH_FAILING, None, None, "fail",
     "reports 'failing'"),
    ("health-503-not-json", "salesd_monitor", "check_daemon", 503, "<html>busy</html>", None, None, "wait", "HTTP 503"),
    ("health-200-not-json", "salesd_monitor", "check_daemon", 200, "ok", None, None, "wait", "without a JSON object"),
    ("health-audit-mismatch-fails", "salesd_monitor", "check_daemon", 200, HEALTH_AUDIT_MISMATCH, None, None, "fail",
     "day 2025-12-30 differs from the source in total_revenue"),
    ("health-audit-mismatch-seen-before", "salesd_monitor", "check_daemon", 200, HEALTH_AUDIT_MISMATCH, None,
     "2026-01-01T00:00:00Z", "pass", None),
    ("health-audit-mismatch-only-logged", "salesd_monitor", "check_daemon", 200, HEALTH_AUDIT_MISMATCH,
     {"fail_on_audit_mismatch": False}, None, "pass", None),
    ("health-404", "salesd_monitor", "check_daemon", 404, '{"error":"not found"}', None, None, "wait", "HTTP 404"),
    ("heartbeat-fresh", "salesd_monitor", "check_heartbeat", 200, f"1\t{NOW - 60}\t{NOW}\n", None, None, "pass", None),
    ("heartbeat-stale", "salesd_monitor", "check_heartbeat", 200, f"1\t{NOW - 301}\t{NOW}\n", None, None, "wait",
     "301 s old (allowed: 300 s)"),
    ("heartbeat-empty", "salesd_monitor", "check_heartbeat", 200, f"0\t0\t{NOW}\n", None, None, "wait", "is empty"),
    # ClickHouse may answer 200 and put the exception after the data.
    ("heartbeat-200-exception", "salesd_monitor", "check_heartbeat", 200, CH_EXCEPTION, None, None, "wait",
     "Memory limit exceeded"),
    ("heartbeat-500", "salesd_monitor", "check_heartbeat", 500,
     "Code: 60, e.displayText() = DB::Exception: Table x.salesd_heartbeat doesn't exist", None, None, "wait",
     "HTTP 500"),
    ("heartbeat-garbage", "salesd_monitor", "check_heartbeat", 200, "Ok.\n", None, None, "wait", "unexpected answer"),
    ("stats-fresh", "salesd_monitor", "check_stats", 200, f"1\t5\t{NOW - 100}\t{NOW}\t{MIDNIGHT}\n", None, None,
     "pass", None),
    ("stats-run-too-old", "salesd_monitor", "check_stats", 200,
     f"1\t5\t{NOW - 23401}\t{NOW}\t{MIDNIGHT}\n", None, None, "wait", "(allowed: 23400 s)"),
    ("stats-no-success", "salesd_monitor", "check_stats", 200, f"0\t0\t0\t{NOW}\t{MIDNIGHT}\n", None, None, "wait",
     "no successful run"),
    ("stats-no-today-row-after-success-today", "salesd_monitor", "check_stats", 200,
     f"0\t5\t{NOW - 100}\t{NOW}\t{MIDNIGHT}\n", None, None, "wait", "no row for today"),
    ("stats-no-today-row-before-first-run-today", "salesd_monitor", "check_stats", 200,
     f"0\t5\t{MIDNIGHT - 600}\t{MIDNIGHT + 1200}\t{MIDNIGHT}\n", None, None, "pass", None),
    ("rerun-new-success", "salesd_rerun", "check_new_run", 200,
     "old-1\tstart\tsuccess\t\nnew-2\thttp\tsuccess\t\n", None, {"since": 1, "exclude": ["old-1"]}, "pass", None),
    ("rerun-only-old", "salesd_rerun", "check_new_run", 200,
     "old-1\thttp\tsuccess\t\n", None, {"since": 1, "exclude": ["old-1"]}, "wait", "has finished yet"),
    ("rerun-other-trigger", "salesd_rerun", "check_new_run", 200,
     "new-3\tschedule\tsuccess\t\n", None, {"since": 1, "exclude": []}, "wait", "has finished yet"),
    ("rerun-failed-fails-fast", "salesd_rerun", "check_new_run", 200,
     "new-2\thttp\tfailed\tcannot connect to \\'pg\\'\\n(hint)\n", None, {"since": 1, "exclude": []}, "fail",
     "ended 'failed': cannot connect to 'pg' (hint)"),
    ("rerun-failed-quoting-clickhouse", "salesd_rerun", "check_new_run", 200,
     "new-2\thttp\tfailed\tinsert failed: Code: 241, e.displayText() = DB::Exception: Memory limit\n",
     None, {"since": 1, "exclude": []}, "fail", "ended 'failed': insert failed: Code: 241"),
    ("rerun-200-exception", "salesd_rerun", "check_new_run", 200,
     "new-2\thttp\tsuccess\t\nCode: 159, e.displayText() = DB::Exception: Timeout exceeded", None,
     {"since": 1, "exclude": []}, "wait", "Timeout exceeded"),
]


@pytest.mark.parametrize("line", LINES)
def test_check_functions(line, tmp_path):
    cases = [
        {"dag": c[1], "check": c[2], "status": c[3], "body": c[4], "params": c[5], "xcom": c[6]} for c in CHECK_CASES
    ]
    results = _probe(AIRFLOW_LINES[line][0], "checks_probe.py", tmp_path, stdin=json.dumps(cases), marker="CHECKS_PROBE ")
    failures = []
    for case, got in zip(CHECK_CASES, results):
        name, verdict, fragment = case[0], case[7], case[8]
        if got["verdict"] != verdict or (fragment is not None and fragment not in (got["reason"] or "")):
            failures.append(f"{name}: expected {verdict} {fragment!r}, got {got}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------
# airflow dags test against the real daemon and ClickHouse 18.16
# --------------------------------------------------------------------------


def _connect(airflow, ch_db, port, token=None):
    salesd_conn = {"host": "127.0.0.1", "port": port}
    if token is not None:
        salesd_conn["password"] = token
    airflow.connection("salesd_http", **salesd_conn)
    # The salesd ClickHouse user has a password: the hook sends Basic auth.
    airflow.connection(
        "clickhouse_http", host="127.0.0.1", port=ch_db.server.http_port, login=ch_db.user, password=ch_db.password
    )


def _http_runs(ch_db):
    return ch_db.rows("SELECT run_id, status FROM salesd_runs WHERE trigger = 'http' ORDER BY started_at, run_id")


def _monitor(airflow, ch_db, daemon, webhook, env=None, **params):
    _connect(airflow, ch_db, daemon.port)
    airflow.connection("salesd_alert_webhook", host=webhook.url)
    run = airflow.dags_test("salesd_monitor", conf={"database": ch_db.database, **params}, env=env)
    print(f"{airflow.line.name} ({airflow.version}): salesd_monitor {run!r}")
    return run


def _assert_alerted(run, webhook, task_id, dag_id, *fragments):
    """The failure of task_id was logged and posted to the webhook, once,
    and the text names the cause (fragments)."""
    prefix = f"salesd alert: task '{task_id}' of DAG '{dag_id}' failed"
    assert prefix in run.output, run.tail()
    assert "alert posted to connection 'salesd_alert_webhook' (HTTP 200)" in run.output, run.tail()
    texts = webhook.texts()
    assert len(texts) == 1, texts
    assert texts[0].startswith(prefix), texts
    for fragment in fragments:
        assert fragment in texts[0], texts
    path, content_type, _ = webhook.posts[0]
    assert path == "/services/T000/B000/secretpath" and content_type == "application/json"
    # The webhook's URL is a secret too: never logged.
    assert "secretpath" not in run.output


class TestHealthyDaemon:
    """One healthy daemon: the monitor passes, the rerun DAG makes it run,
    and a wrong token is refused."""

    @pytest.fixture(scope="class")
    @classmethod
    def healthy(cls, class_daemon):
        return class_daemon()

    def test_monitor_succeeds(self, healthy, class_ch18_db, airflow, webhook):
        run = _monitor(airflow, class_ch18_db, healthy, webhook)
        assert run.returncode == 0, run.tail()
        assert run.states == {"daemon_healthy": "success", "heartbeat_fresh": "success", "stats_fresh": "success"}
        assert "salesd alert" not in run.output
        assert webhook.posts == []

    def test_rerun_makes_the_daemon_run(self, healthy, class_ch18_db, airflow, webhook):
        before = _http_runs(class_ch18_db)
        _connect(airflow, class_ch18_db, healthy.port, token=healthy.token)
        airflow.connection("salesd_alert_webhook", host=webhook.url)
        run = airflow.dags_test(
            "salesd_rerun",
            conf={"database": class_ch18_db.database},
            env={"SALESD_RERUN_POKE_INTERVAL": "1", "SALESD_RERUN_TIMEOUT": "60"},
        )
        print(f"{airflow.line.name} ({airflow.version}): salesd_rerun {run!r}")
        assert run.returncode == 0, run.tail()
        assert run.states == {"request_run": "success", "wait_for_run": "success"}
        assert "salesd queued a run (HTTP 202)" in run.output, run.tail()
        # Exactly one new run with trigger http, successful, in ClickHouse
        # and in the daemon's own log.
        new = [r for r in _http_runs(class_ch18_db) if r not in before]
        assert len(new) == 1 and new[0][1] == "success", (before, new)
        assert f"run {new[0][0]} (trigger http): success" in healthy.proc.stderr
        assert healthy.token not in run.output
        assert webhook.posts == []

    def test_rerun_with_wrong_token_fails_at_once(self, healthy, class_ch18_db, airflow):
        before = _http_runs(class_ch18_db)
        _connect(airflow, class_ch18_db, healthy.port, token="not-the-token")
        run = airflow.dags_test("salesd_rerun", conf={"database": class_ch18_db.database})
        assert run.returncode == 1, run.tail()
        assert run.states.get("request_run") == "failed", run.states
        assert run.states.get("wait_for_run") in ("upstream_failed", None), run.states
        assert "salesd refused POST /run with HTTP 40" in run.output
        assert "not-the-token" not in run.output and healthy.token not in run.output
        assert _http_runs(class_ch18_db) == before
        # The alert still fires without a webhook connection: the log line.
        assert "salesd alert: task 'request_run' of DAG 'salesd_rerun' failed" in run.output
        assert "no connection 'salesd_alert_webhook': alert not sent to a webhook" in run.output


class TestDaemonStopped:
    """The daemon ran once, then stopped: its heartbeat and today's row are
    fresh, but /healthz refuses connections."""

    @pytest.fixture(scope="class")
    @classmethod
    def stopped(cls, class_daemon):
        d = class_daemon()
        assert d.stop() == 0
        return d

    def test_monitor_alerts(self, stopped, class_ch18_db, airflow, webhook):
        run = _monitor(airflow, class_ch18_db, stopped, webhook, env=FAST)
        assert run.returncode == 1, run.tail()
        assert run.states == {"daemon_healthy": "failed", "heartbeat_fresh": "success", "stats_fresh": "success"}, run.tail()
        # A refused connection is "not yet": the sensor poked until its timeout.
        assert run.output.count("daemon_healthy: not yet:") >= 2, run.tail()
        assert "connection refused" in run.output
        assert "Sensor has timed out" in run.output
        _assert_alerted(run, webhook, "daemon_healthy", "salesd_monitor", "connection refused")


def _wait_heartbeat_age(ch_db, seconds, timeout=30):
    """Until the newest heartbeat is at least `seconds` old by ClickHouse's clock."""
    deadline = time.monotonic() + timeout
    while True:
        age = int(ch_db.query("SELECT toUInt32(now()) - toUInt32(max(ts)) FROM salesd_heartbeat").strip())
        if age >= seconds:
            return age
        assert time.monotonic() < deadline, f"heartbeat still {age} s old"
        time.sleep(0.2)


class TestStaleHeartbeat:
    """A healthy daemon that writes a heartbeat only once an hour: with a
    max age of 1 s the heartbeat is stale while everything else is fine."""

    @pytest.fixture(scope="class")
    @classmethod
    def quiet(cls, class_daemon):
        # The daemon writes a heartbeat at start and after runs; with an
        # hour between heartbeats the newest one ages.
        return class_daemon(heartbeat_interval="1h")

    def test_monitor_alerts(self, quiet, class_ch18_db, airflow, webhook):
        _wait_heartbeat_age(class_ch18_db, 2)
        run = _monitor(airflow, class_ch18_db, quiet, webhook, env=FAST, heartbeat_max_age_seconds=1)
        assert run.returncode == 1, run.tail()
        assert run.states == {"daemon_healthy": "success", "heartbeat_fresh": "failed", "stats_fresh": "success"}, run.tail()
        assert "heartbeat_fresh: not yet: newest heartbeat" in run.output
        _assert_alerted(run, webhook, "heartbeat_fresh", "salesd_monitor", "newest heartbeat", "allowed: 1 s")


class TestAuditMismatch:
    """The daemon's continuous audit found a stored day that differs from
    Postgres: the first DAG run of each Airflow fails and alerts, the next
    one (which has seen the mismatch) passes."""

    @pytest.fixture(scope="class")
    @classmethod
    def drifted(cls, class_daemon, class_pg_db, class_ch18_db):
        # A day with sales three days back, outside what every run recomputes
        # (overlap 0s, reconcile_days 0), inside the audit's window.
        class_pg_db.execute(
            "INSERT INTO orders (order_id, customer_id, status, order_date, updated_at)"
            " VALUES (1, 1, 'completed', now() - interval '3 days', now() - interval '1 hour')"
        )
        class_pg_db.execute(
            "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price, updated_at)"
            " VALUES (1, 1, 1, 1, 5.00, 1.00, now() - interval '1 hour')"
        )
        d = class_daemon(overlap="0s", reconcile_days=0, **{"audit.days_per_run": 10, "audit.window": "10d"})
        day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)).date().isoformat()
        deadline = time.monotonic() + 30
        while (d.healthz()[1].get("last_run") or {}).get("status") != "success":  # the start-up run wrote the day
            assert time.monotonic() < deadline, d.proc.stderr[-3000:]
            time.sleep(0.1)
        class_ch18_db.query(
            "INSERT INTO daily_sales_stats SELECT date, total_orders + 1, total_items_sold, total_revenue, total_cost, "
            f"total_profit, average_order_value, computed_at, version + 1 FROM daily_sales_stats FINAL WHERE date = '{day}'"
        )
        d.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while d.healthz()[1]["audit"]["mismatches"] < 1:
            assert time.monotonic() < deadline, d.proc.stderr[-3000:]
            time.sleep(0.1)
        return d, day

    def test_monitor_fails_once(self, drifted, class_ch18_db, airflow, webhook):
        d, day = drifted
        run = _monitor(airflow, class_ch18_db, d, webhook, env=FAST)
        assert run.returncode == 1, run.tail()
        assert run.states == {"daemon_healthy": "failed", "heartbeat_fresh": "success", "stats_fresh": "success"}, run.tail()
        assert f"day {day} differs from the source in total_orders" in run.output, run.tail()
        _assert_alerted(run, webhook, "daemon_healthy", "salesd_monitor", "audit", f"day {day}")
        # The next DAG run has seen this mismatch already: it passes.
        run = _monitor(airflow, class_ch18_db, d, webhook, env=FAST)
        assert run.returncode == 0, run.tail()
        assert len(webhook.texts()) == 1
