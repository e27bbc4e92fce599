"""
### salesd_monitor

Watches the salesd daemon, which computes `daily_sales_stats` on its own
schedule; Airflow no longer computes anything.  Every 30 minutes three
independent sensors check:

| task | asks | passes when |
|---|---|---|
| `daemon_healthy` | `GET /healthz` on connection `salesd_http` | HTTP 200, `status` is in `healthy_statuses` (default `ok`), and the daemon's continuous audit reports no mismatch since the last DAG run |
| `heartbeat_fresh` | `salesd_heartbeat` via `clickhouse_http` | the newest `ts` is at most `heartbeat_max_age_seconds` old |
| `stats_fresh` | `salesd_runs`, `daily_sales_stats` via `clickhouse_http` | the last successful run finished at most `schedule_period_seconds + grace_seconds` ago, and today's row (in `timezone`) exists once a run has succeeded today |

A sensor that is not satisfied pokes again (reschedule mode, no worker slot
held) until its timeout.  `daemon_healthy` fails at once, without waiting,
when the daemon itself answers 503 `failing`: it says so only after 3 failed
runs or 2 schedule periods without success, so waiting would only delay the
alert.  It also fails at once when the daemon's continuous audit (SPEC
§10, `/healthz` `"audit"`) found a stored day differing from the source
since the last DAG run (the newest mismatch time a run has seen is kept in
an XCom of `daemon_healthy`, so each mismatch fails one run): the daemon's next
run recomputes that day, but drift means something wrote to the table or
the source changed behind the watermark, and a human should know.  Set
`fail_on_audit_mismatch` to false to only log it.  A refused connection, a
timeout, any other status or an unreadable answer means "not yet": systemd
restarts a dead daemon within seconds.

Any failure calls the alert callback: an ERROR log line, and a POST to the
Slack-compatible webhook of connection `salesd_alert_webhook` if it exists.

Timeouts are set at parse time from the environment of the scheduler and
workers: `SALESD_MONITOR_POKE_INTERVAL` (default 60 s),
`SALESD_MONITOR_TIMEOUT` (600 s), `SALESD_MONITOR_HTTP_TIMEOUT` (10 s per
request).  See docs/airflow.md in the salesd repository.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta, timezone

try:
    import salesd_common  # noqa: F401
except ImportError:  # a bare DagBag does not put the DAGs folder on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import salesd_common

from salesd_common import (
    CLICKHOUSE_CONN_ID,
    DAG,
    SALESD_CONN_ID,
    AirflowFailException,
    Param,
    SalesdHttpSensor,
    ch_query_params,
    ch_rows,
    env_seconds,
    excerpt,
    salesd_alert,
)

POKE_INTERVAL = env_seconds("SALESD_MONITOR_POKE_INTERVAL", 60)
TIMEOUT = env_seconds("SALESD_MONITOR_TIMEOUT", 600)
HTTP_TIMEOUT = env_seconds("SALESD_MONITOR_HTTP_TIMEOUT", 10)

_UINT = r"[0-9]+"

# Every value a query needs comes from a param whose schema admits only
# identifier-like text, so rendering it into SQL cannot change the query.
HEARTBEAT_SQL = "SELECT count(), toUInt32(max(ts)), toUInt32(now()) FROM salesd_heartbeat FORMAT TabSeparated"
STATS_SQL = (
    "SELECT"
    " (SELECT count() FROM daily_sales_stats WHERE date = toDate(now(), '{{ params.timezone }}')),"
    " (SELECT count() FROM salesd_runs WHERE status = 'success'),"
    " (SELECT toUInt32(max(finished_at)) FROM salesd_runs WHERE status = 'success'),"
    " toUInt32(now()),"
    " toUInt32(toStartOfDay(now(), '{{ params.timezone }}'))"
    " FORMAT TabSeparated"
)


def check_daemon(response, context):
    """/healthz: pass on 200 with an accepted status; fail fast on the
    daemon's own verdict (503 `failing`); anything else: poke again."""
    try:
        body = json.loads(response.text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code} without a JSON object: {excerpt(response.text)}"
    status = body.get("status")
    accepted = list(context["params"]["healthy_statuses"])
    if response.status_code == 200 and status in accepted:
        _check_audit(body, context)
        return None
    if response.status_code == 503 and status == "failing":
        last_run = body.get("last_run") if isinstance(body.get("last_run"), dict) else {}
        raise AirflowFailException(
            excerpt(
                f"salesd instance '{body.get('instance')}' reports 'failing': "
                f"last success {body.get('last_success')}, last run {last_run.get('status')} "
                f"at {last_run.get('started_at')}: {last_run.get('error') or 'no error text'}"
            )
        )
    return f"HTTP {response.status_code}, status '{status}' (accepted: {', '.join(accepted)})"


AUDIT_XCOM_KEY = "audit_last_mismatch_at"


def _check_audit(body, context):
    """Fails when the daemon's audit reports a mismatch newer than the one
    the previous DAG run saw (kept in an XCom of this task; without one, any
    mismatch the daemon reports since it started)."""
    audit = body.get("audit")
    last = audit.get("last_mismatch") if isinstance(audit, dict) else None
    if not isinstance(last, dict) or not isinstance(last.get("at"), str):
        return
    try:
        at = datetime.fromisoformat(last["at"].replace("Z", "+00:00"))
    except ValueError:
        return
    ti = context.get("ti")
    seen = None
    if ti is not None:
        seen = ti.xcom_pull(task_ids=ti.task_id, key=AUDIT_XCOM_KEY, include_prior_dates=True)
        ti.xcom_push(key=AUDIT_XCOM_KEY, value=last["at"])
    try:
        if isinstance(seen, str) and datetime.fromisoformat(seen.replace("Z", "+00:00")) >= at:
            return  # already reported by an earlier DAG run
    except ValueError:
        pass
    columns = last.get("columns") if isinstance(last.get("columns"), list) else []
    message = excerpt(
        f"salesd instance '{body.get('instance')}' audit: {audit.get('mismatches')} mismatched day(s) since it "
        f"started; the last at {last['at']}: day {last.get('day')} differs from the source in "
        f"{', '.join(str(c) for c in columns) or 'unknown columns'} (its next run recomputes the day; "
        f"run 'salesd verify' to see every difference)"
    )
    if context["params"].get("fail_on_audit_mismatch", True):
        raise AirflowFailException(message)
    salesd_common.log.warning("%s", message)


def check_heartbeat(response, context):
    """The newest heartbeat of any instance is recent enough."""
    (count, newest, now), = _one_row(response, 3)
    max_age = context["params"]["heartbeat_max_age_seconds"]
    if count == 0:
        return "salesd_heartbeat is empty: no salesd instance has ever written a heartbeat"
    age = now - newest
    if age > max_age:
        return f"newest heartbeat {_utc(newest)} is {age} s old (allowed: {max_age} s)"
    return None


def check_stats(response, context):
    """The last successful run is recent, and it left today's row behind."""
    (today_rows, successes, last_success, now, midnight), = _one_row(response, 5)
    params = context["params"]
    allowed = params["schedule_period_seconds"] + params["grace_seconds"]
    if successes == 0:
        return "salesd_runs has no successful run"
    age = now - last_success
    if age > allowed:
        return f"last successful run finished {_utc(last_success)}, {age} s ago (allowed: {allowed} s)"
    # The daemon writes today's row in every successful run; before the
    # first success of the day (in the daemon's timezone) it cannot exist.
    if today_rows == 0 and last_success >= midnight:
        return f"no row for today ({params['timezone']}) in daily_sales_stats after a successful run today"
    return None


def _one_row(response, columns):
    rows = ch_rows(response, columns, (_UINT,) * columns)
    if len(rows) != 1:
        raise ValueError(f"expected one row from clickhouse, got {len(rows)}")
    return [[int(v) for v in rows[0]]]


def _utc(unix_seconds):
    return datetime.fromtimestamp(unix_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_IDENT = r"^[A-Za-z0-9_]+$"

with DAG(
    dag_id="salesd_monitor",
    description="Checks that the salesd daemon is healthy and its ClickHouse data is fresh",
    doc_md=__doc__,
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["salesd", "monitoring"],
    default_args={
        "owner": "data-platform",
        "retries": 0,
        "on_failure_callback": salesd_alert,
    },
    params={
        "database": Param("default", type="string", pattern=_IDENT, description="ClickHouse database of salesd's tables"),
        "heartbeat_max_age_seconds": Param(
            300, type="integer", minimum=1, description="Oldest acceptable heartbeat; salesd writes one every heartbeat_interval (60 s)"
        ),
        "schedule_period_seconds": Param(
            21600, type="integer", minimum=1, description="Longest gap between two salesd runs (its cron schedule; default every 6 h)"
        ),
        "grace_seconds": Param(1800, type="integer", minimum=0, description="Allowance on top of the period for a run's duration and retries"),
        "timezone": Param(
            "UTC", type="string", pattern=r"^[A-Za-z0-9_+\-/]+$", description="salesd's `timezone`: decides which day is today"
        ),
        "healthy_statuses": Param(
            ["ok"],
            type="array",
            items={"type": "string", "enum": ["ok", "standby"]},
            minItems=1,
            description="/healthz statuses that pass; add 'standby' when salesd_http points at an HA standby",
        ),
        "fail_on_audit_mismatch": Param(
            True, type="boolean", description="Fail when the daemon's continuous audit found drift since the last DAG run"
        ),
    },
) as dag:
    daemon_healthy = SalesdHttpSensor(
        task_id="daemon_healthy",
        http_conn_id=SALESD_CONN_ID,
        endpoint="healthz",
        check=check_daemon,
        http_timeout=HTTP_TIMEOUT,
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    )
    heartbeat_fresh = SalesdHttpSensor(
        task_id="heartbeat_fresh",
        http_conn_id=CLICKHOUSE_CONN_ID,
        endpoint="",
        request_params=ch_query_params(HEARTBEAT_SQL, "{{ params.database }}"),
        check=check_heartbeat,
        http_timeout=HTTP_TIMEOUT,
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    )
    stats_fresh = SalesdHttpSensor(
        task_id="stats_fresh",
        http_conn_id=CLICKHOUSE_CONN_ID,
        endpoint="",
        request_params=ch_query_params(STATS_SQL, "{{ params.database }}"),
        check=check_stats,
        http_timeout=HTTP_TIMEOUT,
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    )
