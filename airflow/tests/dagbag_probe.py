"""Run by an Airflow venv's python (not pytest's): load airflow/dags/ into a
DagBag the way the DAG processor does and print, as one JSON line after the
marker, what the tests assert on: warnings raised by importing the DAG
files, import errors, per-file parse times and the properties of each DAG
and task that the spec and docs promise."""

import importlib
import json
import sys
import time
import warnings
from datetime import timedelta

MARKER = "DAGBAG_PROBE "


def main(dag_folder):
    t0 = time.monotonic()
    try:  # Airflow 3.x
        from airflow.dag_processing.dagbag import DagBag

        kwargs = {}
    except ImportError:  # Airflow 2.10
        from airflow.models.dagbag import DagBag

        kwargs = {"include_examples": False}
    import airflow
    from airflow.providers.http.sensors.http import HttpSensor

    import_seconds = time.monotonic() - t0
    # Airflow itself is imported; what the DAG files add (a deprecated
    # import on this line, say) is recorded before the DagBag imports them.
    sys.path.insert(0, dag_folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("salesd_common", "salesd_monitor", "salesd_rerun"):
            try:
                importlib.import_module(name)
            except Exception:  # the DagBag below reports it as an import error
                pass
    dag_warnings = [f"{w.category.__name__}: {w.filename}:{w.lineno}: {w.message}" for w in caught]
    t1 = time.monotonic()
    bag = DagBag(dag_folder=dag_folder, **kwargs)
    bag_seconds = time.monotonic() - t1

    dags = {}
    for dag_id, dag in bag.dags.items():
        schedule = getattr(dag, "timetable", None)
        tasks = {}
        for task in dag.tasks:
            tasks[task.task_id] = {
                "class": type(task).__name__,
                # "@task" for a TaskFlow task (decorated Python callable)
                "operator_name": getattr(task, "operator_name", None),
                "python_callable": getattr(getattr(task, "python_callable", None), "__name__", None),
                "http_sensor": isinstance(task, HttpSensor),
                "mode": getattr(task, "mode", None),
                "poke_interval": getattr(task, "poke_interval", None),
                "timeout": getattr(task, "timeout", None),
                "owner": task.owner,
                "retries": task.retries,
                "has_failure_callback": bool(task.on_failure_callback),
                "http_conn_id": getattr(task, "http_conn_id", None),
                "check_response": getattr(task, "extra_options", {}).get("check_response"),
                "downstream": sorted(task.downstream_task_ids),
            }
        # 2.10 keeps the delta as _delta, the 3.x SDK as delta.
        interval = getattr(schedule, "_delta", None) or getattr(schedule, "delta", None)
        dags[dag_id] = {
            "schedule_seconds": interval.total_seconds() if isinstance(interval, timedelta) else None,
            "schedule_kind": type(schedule).__name__,
            "catchup": dag.catchup,
            "tags": sorted(dag.tags),
            "doc_md": dag.doc_md or "",
            "params": sorted(dag.params.keys()),
            "max_active_runs": dag.max_active_runs,
            "tasks": tasks,
        }
    out = {
        "airflow_version": airflow.__version__,
        "import_seconds": import_seconds,
        "bag_seconds": bag_seconds,
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_warnings": dag_warnings,
        "files": {str(s.file): s.duration.total_seconds() for s in bag.dagbag_stats},
        "dags": dags,
    }
    print(MARKER + json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
