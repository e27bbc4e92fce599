"""Shared pieces of the salesd DAGs (salesd_monitor, salesd_rerun): the
Airflow 2.10 / 3.x import shims (the DAG class and TaskFlow's `dag` and
`task`), the sensor class every check is built on, parsing of ClickHouse
answers, and the alert callback.

Nothing here talks to the network at import time: the DAG files import this
module while the scheduler parses them, which must stay fast and offline.
This file defines no DAG; .airflowignore keeps the DAG processor from
parsing it on its own.
"""

from __future__ import annotations

import json
import logging
import os
import re

import requests

from airflow.providers.http.hooks.http import HttpHook
from airflow.providers.http.sensors.http import HttpSensor

try:  # Airflow 3.x: the task SDK
    from airflow.sdk import DAG, BaseHook, Param, dag, task
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
    )
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.decorators import dag, task
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
    )
    from airflow.hooks.base import BaseHook
    from airflow.models.param import Param

__all__ = [
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "BaseHook",
    "Param",
    "dag",
    "task",
    "SALESD_CONN_ID",
    "CLICKHOUSE_CONN_ID",
    "ALERT_CONN_ID",
    "SalesdHttpSensor",
    "ch_query_params",
    "ch_rows",
    "env_seconds",
    "excerpt",
    "transport_error",
    "salesd_alert",
]

SALESD_CONN_ID = "salesd_http"
CLICKHOUSE_CONN_ID = "clickhouse_http"
ALERT_CONN_ID = "salesd_alert_webhook"

log = logging.getLogger("salesd.airflow")

# Longest piece of a foreign answer (ClickHouse exception, daemon body) that
# goes into a log line, an exception or an alert.
_EXCERPT = 300


def env_seconds(name: str, default: int) -> int:
    """A positive number of seconds from the environment, read at parse time.

    A sensor's timeout and poke_interval are not templated, so DAG params
    cannot change them; tests and operators set these variables instead.  A
    bad value fails the DAG import loudly rather than being ignored.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) <= 0:
        raise ValueError(f"{name} must be a positive whole number of seconds, got '{raw}'")
    return int(raw)


def excerpt(text: str) -> str:
    """One line, at most _EXCERPT characters, for logs and alerts."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def ch_query_params(sql: str, database: str) -> dict:
    """URL parameters for a read-only query over ClickHouse's HTTP interface.

    wait_end_of_query makes the server buffer the result, so an error is a
    500 rather than a 200 with the exception at the end of the body; the
    checks still parse the body and never trust the status alone."""
    return {"query": sql, "database": database, "wait_end_of_query": "1"}


# How ClickHouse starts the exception it appends to a failed answer:
# "Code: 60, e.displayText() = DB::Exception: …" (18.16), "Code: 60. DB::Exception: …"
# (current).  Matched at a line start only: a run's error column may quote one.
_CH_EXCEPTION = re.compile(r"(?:^|\n)Code: [0-9]+[.,] ")


def ch_rows(response, columns: int, patterns: tuple[str, ...] | None = None) -> list[list[str]]:
    """Parse a TabSeparated answer into rows of exactly `columns` fields.

    Raises ValueError with the reason when the answer is not such a table:
    a non-200 status, an exception text in the body (ClickHouse can answer
    200 and append `Code: …, DB::Exception` when a query fails late), or a
    row of the wrong shape.  `patterns` gives one regular expression per
    column that each field must match in full."""
    text = response.text
    failed = _CH_EXCEPTION.search(text)
    if response.status_code != 200 or failed:
        shown = text[failed.start():] if failed else text  # the exception, not the rows before it
        raise ValueError(f"clickhouse answered HTTP {response.status_code}: {excerpt(shown)}")
    rows = []
    for line in text.split("\n"):
        if line == "":
            continue
        fields = line.split("\t")
        if len(fields) != columns or (
            patterns and not all(re.fullmatch(p, f) for p, f in zip(patterns, fields))
        ):
            raise ValueError(f"unexpected answer from clickhouse: {excerpt(text)}")
        rows.append(fields)
    return rows


def transport_error(exc: requests.exceptions.RequestException) -> str:
    """A short account of a request that got no HTTP answer: requests'
    own messages nest three exceptions deep and bury the cause."""
    url = getattr(getattr(exc, "request", None), "url", None) or "the server"
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        cause = "timed out"
    elif "Connection refused" in text:
        cause = "connection refused"
    elif "Name or service not known" in text or "Temporary failure in name resolution" in text:
        cause = "host name not found"
    else:
        cause = f"{type(exc).__name__}: {excerpt(text)}"
    return f"no answer from {url.split('?', 1)[0]}: {cause}"


class SalesdHttpSensor(HttpSensor):
    """An HttpSensor whose verdict comes from a `check` function.

    check(response, context) returns None when the condition holds, or a
    short reason why it does not yet (the sensor pokes again); it raises
    AirflowFailException when waiting cannot help (the task fails at once,
    no retries).  Every answer reaches the check, whatever its status
    (check_response is off), and transport errors (connection refused or
    reset, timeouts) count as "not yet" instead of failing the task: a
    daemon being restarted by systemd or a ClickHouse fail-over must not
    page anyone.  On timeout the last reason goes into the error, so the
    alert says what was wrong and not just that time ran out.
    """

    def __init__(self, *, check, http_timeout: int = 10, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        extra = {"check_response": False, "timeout": http_timeout}
        extra.update(kwargs.pop("extra_options", None) or {})
        super().__init__(response_check=self._verdict, extra_options=extra, **kwargs)
        self.salesd_check = check
        self._last_reason = "no answer yet"

    def _verdict(self, response, **context) -> bool:
        try:
            reason = self.salesd_check(response, context)
        except ValueError as exc:  # an unparseable answer: maybe a transient error page
            reason = str(exc)
        if reason is None:
            return True
        self._last_reason = reason
        self.log.warning("%s: not yet: %s", self.task_id, reason)
        return False

    def poke(self, context) -> bool:
        try:
            return super().poke(context)
        except requests.exceptions.RequestException as exc:
            self._last_reason = f"connection '{self.http_conn_id}': {transport_error(exc)}"
            self.log.warning("%s: not yet: %s", self.task_id, self._last_reason)
            return False

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            raise AirflowSensorTimeout(f"{exc} Last check: {self._last_reason}") from exc


def _failure_text(context) -> str:
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    what = f"{type(exc).__name__}: {exc}" if exc is not None else "no exception recorded"
    return (
        f"salesd alert: task '{ti.task_id}' of DAG '{ti.dag_id}' failed "
        f"(run '{context.get('run_id')}', try {ti.try_number}): {excerpt(what)}"
    )


def salesd_alert(context) -> None:
    """Failure callback of every salesd task: log the failure at ERROR, then
    post it to a Slack-compatible webhook when the connection
    `salesd_alert_webhook` exists.  Never raises: a broken webhook must not
    hide the original failure."""
    text = _failure_text(context)
    log.error("%s", text)
    try:
        conn = BaseHook.get_connection(ALERT_CONN_ID)
    except AirflowNotFoundException:
        log.info("no connection '%s': alert not sent to a webhook", ALERT_CONN_ID)
        return
    except Exception as exc:  # a secrets backend failing must not mask the alert
        log.error("cannot read connection '%s': %s", ALERT_CONN_ID, excerpt(exc))
        return
    endpoint = conn.extra_dejson.get("endpoint", "")
    try:
        hook = HttpHook(method="POST", http_conn_id=ALERT_CONN_ID)
        response = hook.run(
            endpoint,
            data=json.dumps({"text": text}),
            headers={"Content-Type": "application/json"},
            extra_options={"check_response": False, "timeout": 10},
        )
    except Exception as exc:
        log.error("posting the alert to connection '%s' failed: %s", ALERT_CONN_ID, excerpt(exc))
        return
    if 200 <= response.status_code < 300:
        log.info("alert posted to connection '%s' (HTTP %d)", ALERT_CONN_ID, response.status_code)
    else:
        log.error(
            "webhook of connection '%s' answered HTTP %d: %s",
            ALERT_CONN_ID,
            response.status_code,
            excerpt(response.text),
        )
