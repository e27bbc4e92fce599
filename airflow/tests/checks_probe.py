"""Run by an Airflow venv's python: feed canned HTTP answers to the DAGs'
check functions and print each verdict, so the tests can hold a table of
answers (including ClickHouse's "200 with an exception in the body") and
expected verdicts without a server for every odd case.

Input (stdin): a JSON list of {"dag", "check", "status", "body", "params",
"xcom"}.  Output: one line after the marker, a JSON list of
{"verdict": "pass" | "wait" | "fail", "reason": text}."""

import importlib
import json
import sys
from pathlib import Path

MARKER = "CHECKS_PROBE "
DAGS = Path(__file__).resolve().parents[1] / "dags"


class Answer:
    def __init__(self, status, body):
        self.status_code = status
        self.text = body


class TaskInstance:
    def __init__(self, xcom):
        self.xcom = xcom

    task_id = "probe"

    def xcom_pull(self, task_ids=None, **_):
        return self.xcom

    def xcom_push(self, key, value):
        pass


def main():
    sys.path.insert(0, str(DAGS))
    common = importlib.import_module("salesd_common")
    results = []
    for case in json.load(sys.stdin):
        module = importlib.import_module(case["dag"])
        dag = next(v for v in vars(module).values() if isinstance(v, common.DAG) and v.dag_id == case["dag"])
        params = {k: dag.params[k] for k in dag.params.keys()}
        params.update(case.get("params") or {})
        context = {"params": params, "ti": TaskInstance(case.get("xcom"))}
        check = getattr(module, case["check"])
        try:
            reason = check(Answer(case["status"], case["body"]), context)
            verdict = "pass" if reason is None else "wait"
        except common.AirflowFailException as exc:
            verdict, reason = "fail", str(exc)
        except ValueError as exc:  # SalesdHttpSensor turns these into "wait"
            verdict, reason = "wait", str(exc)
        results.append({"verdict": verdict, "reason": reason})
    print(MARKER + json.dumps(results))


if __name__ == "__main__":
    main()
