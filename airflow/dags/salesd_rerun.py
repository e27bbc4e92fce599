"""
### salesd_rerun

Trigger by hand to make salesd run now (for example after fixing data in the
shop database), instead of waiting for its schedule.

1. `request_run` (a TaskFlow task) notes the newest rows of `salesd_runs`
   (via connection `clickhouse_http`), then sends `POST /run` to the daemon
   (connection `salesd_http`) with `Authorization: Bearer <password of
   salesd_http>`.
   The daemon answers 202 and queues one run, like SIGUSR1.  A 401/403
   (wrong or missing token) fails at once.
2. `wait_for_run` pokes ClickHouse until a run with trigger `http` that was
   not there before appears in `salesd_runs`.  It passes on `success` and
   fails at once on `failed` or `skipped` (another instance holds the lock),
   with the run's error text.

Failures call the same alert callback as salesd_monitor.  Timing comes from
the environment at parse time: `SALESD_RERUN_POKE_INTERVAL` (default 15 s),
`SALESD_RERUN_TIMEOUT` (3600 s; the first run after an empty ClickHouse fills
the whole history), `SALESD_RERUN_HTTP_TIMEOUT` (10 s per request).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

try:
    import salesd_common  # noqa: F401
except ImportError:  # a bare DagBag does not put the DAGs folder on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import salesd_common  # noqa: F401

from airflow.providers.http.hooks.http import HttpHook
from salesd_common import (
    CLICKHOUSE_CONN_ID,
    SALESD_CONN_ID,
    AirflowException,
    AirflowFailException,
    BaseHook,
    Param,
    SalesdHttpSensor,
    ch_query_params,
    ch_rows,
    dag,
    env_seconds,
    excerpt,
    salesd_alert,
    task,
)

POKE_INTERVAL = env_seconds("SALESD_RERUN_POKE_INTERVAL", 15)
TIMEOUT = env_seconds("SALESD_RERUN_TIMEOUT", 3600)
HTTP_TIMEOUT = env_seconds("SALESD_RERUN_HTTP_TIMEOUT", 10)

_UINT = r"[0-9]+"
_RUN_ID = r"[0-9A-Za-z-]{1,64}"

# The runs that share the newest start second.  A run that is new to us
# starts at that second or later and is not one of these (the daemon's own
# clock on both sides, so clock skew against Airflow does not matter).
BASELINE_SQL = (
    "SELECT toUInt32(started_at), run_id FROM salesd_runs"
    " WHERE started_at = (SELECT max(started_at) FROM salesd_runs) FORMAT TabSeparated"
)
NEW_RUNS_SQL = (
    "SELECT run_id, trigger, status, error FROM salesd_runs"
    " WHERE toUInt32(started_at) >= {{ ti.xcom_pull(task_ids='request_run')['since'] | int }}"
    " FORMAT TabSeparated"
)


@task(multiple_outputs=False)
def request_run(params=None):
    """Record the baseline, then ask the daemon for a run.  Returns the
    baseline: the task's XCom, which wait_for_run's query reads.  Airflow
    passes `params` (the DAG run's params) by name."""
    clickhouse = HttpHook(method="GET", http_conn_id=CLICKHOUSE_CONN_ID)
    answer = clickhouse.run(
        "",
        data=ch_query_params(BASELINE_SQL, params["database"]),
        extra_options={"check_response": False, "timeout": HTTP_TIMEOUT},
    )
    try:
        rows = ch_rows(answer, 2, (_UINT, _RUN_ID))
    except ValueError as exc:
        raise AirflowException(f"cannot read salesd_runs before requesting a run: {exc}") from exc
    baseline = {"since": int(rows[0][0]) if rows else 0, "exclude": [r[1] for r in rows]}

    token = BaseHook.get_connection(SALESD_CONN_ID).password
    if not token:
        raise AirflowFailException(
            f"connection '{SALESD_CONN_ID}' has no password: set it to the bearer token "
            "the daemon reads from http.token_file"
        )
    daemon = HttpHook(method="POST", http_conn_id=SALESD_CONN_ID)
    session = daemon.get_conn()
    # A login on the connection would make requests send Basic auth in
    # place of our header; salesd only knows the bearer token.
    session.auth = None
    response = session.post(
        daemon.url_from_endpoint("run"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code in (401, 403):
        raise AirflowFailException(
            f"salesd refused POST /run with HTTP {response.status_code}: the password of connection "
            f"'{SALESD_CONN_ID}' must be the token in the daemon's http.token_file"
        )
    if response.status_code != 202:
        raise AirflowException(f"POST /run answered HTTP {response.status_code}: {excerpt(response.text)}")
    print(f"salesd queued a run (HTTP 202); waiting for a run newer than {baseline}")
    return baseline


def _unescape_tsv(field):
    return (
        field.replace("\\\\", "\0").replace("\\t", "\t").replace("\\n", "\n").replace("\\'", "'").replace("\0", "\\")
    )


def check_new_run(response, context):
    """Pass when a run we asked for succeeded; fail at once when it ended
    otherwise: waiting longer will not change a finished run."""
    baseline = context["ti"].xcom_pull(task_ids="request_run")
    known = set(baseline["exclude"])
    rows = ch_rows(response, 4, (_RUN_ID, r"[a-z]+", r"[a-z]+", r".*"))
    ours = [r for r in rows if r[0] not in known and r[1] == "http"]
    if any(r[2] == "success" for r in ours):
        return None
    for run_id, _, status, error in ours:
        if status in ("failed", "skipped"):
            raise AirflowFailException(
                excerpt(f"the requested salesd run '{run_id}' ended '{status}': {_unescape_tsv(error)}")
            )
    return "no run requested over HTTP has finished yet"


@dag(
    dag_id="salesd_rerun",
    description="Asks the salesd daemon to run now and waits for the run to succeed",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["salesd", "operations"],
    default_args={
        "owner": "data-platform",
        "retries": 0,
        "on_failure_callback": salesd_alert,
    },
    params={
        "database": Param("default", type="string", pattern=r"^[A-Za-z0-9_]+$", description="ClickHouse database of salesd's tables"),
    },
)
def salesd_rerun():
    wait = SalesdHttpSensor(
        task_id="wait_for_run",
        http_conn_id=CLICKHOUSE_CONN_ID,
        endpoint="",
        request_params=ch_query_params(NEW_RUNS_SQL, "{{ params.database }}"),
        check=check_new_run,
        http_timeout=HTTP_TIMEOUT,
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    )
    # The baseline travels as request_run's XCom: the sensor's query
    # template pulls it (a templated SQL string cannot take an XComArg).
    request_run() >> wait


rerun_dag = salesd_rerun()
