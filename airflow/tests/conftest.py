"""Fixtures for the Airflow DAG tests: real Airflow from the pinned venvs
(build/airflow-venv, build/airflow-venv-2.10; the `airflow` fixture is
parametrized over both lines), a SQLite metadata DB in a temp AIRFLOW_HOME,
connections as AIRFLOW_CONN_* variables, and the real salesd daemon,
Postgres and ClickHouse 18.16 from the test harness (class-scoped, so one
daemon serves a scenario on both lines).

The tests run under build/venv's pytest and drive Airflow through its CLI
(`airflow dags test`), as an operator would; nothing of Airflow is imported
into the pytest process."""

import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "airflow" / "dags"
AIRFLOW_VENV = Path(os.environ.get("SALESD_AIRFLOW_VENV") or REPO / "build" / "airflow-venv")
AIRFLOW210_VENV = Path(os.environ.get("SALESD_AIRFLOW210_VENV") or REPO / "build" / "airflow-venv-2.10")

# The integration suite's fixtures (pg_db, ch18_db, salesd, ...), loaded
# under another module name: both files are called conftest.py.
_spec = importlib.util.spec_from_file_location(
    "salesd_integration_conftest", REPO / "test" / "integration" / "conftest.py"
)
_integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _integration
_spec.loader.exec_module(_integration)
from harness.servers import ClickHouseError  # noqa: E402  (on sys.path now)

_server_pool = _integration._server_pool
pg_server = _integration.pg_server
pg_db = _integration.pg_db
ch18_db = _integration.ch18_db
salesd = _integration.salesd
pytest_terminal_summary = _integration.pytest_terminal_summary
free_port = _integration.free_port

# Variables of the caller's shell that would change what Airflow or the
# DAGs do; the tests set what they need explicitly.
_LEAKY_ENV = re.compile(r"^(AIRFLOW.*|SALESD_.*|PG[A-Z_]*|PYTHONPATH|[Hh][Tt][Tt][Pp][Ss]?_[Pp][Rr][Oo][Xx][Yy]|ALL_PROXY|all_proxy)$")


def venv_python(venv):
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make airflow-venv airflow-venv-2.10` first")
    return python


def _base_env(home):
    env = {k: v for k, v in os.environ.items() if not _LEAKY_ENV.match(k)}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


# The Airflow lines the DAGs are tested on: every test that uses the
# `airflow` fixture runs once per line.
AIRFLOW_LINES = {"airflow-3": (AIRFLOW_VENV, "3."), "airflow-2.10": (AIRFLOW210_VENV, "2.10.")}


class AirflowLine:
    """One installed Airflow (a venv) with a metadata DB migrated once."""

    def __init__(self, name, venv, template_db, version):
        self.name = name
        self.venv = venv
        self.template_db = template_db
        self.version = version


@pytest.fixture(scope="session")
def airflow_lines(tmp_path_factory):
    """line name -> AirflowLine, migrated on first use (`airflow db migrate`
    takes 1.6 s on 2.10.5, 2.5 s on 3.3.2); each test gets a copy."""
    lines = {}

    def get(name):
        if name not in lines:
            venv, prefix = AIRFLOW_LINES[name]
            python = venv_python(venv)
            version = subprocess.run(
                [str(python), "-c", "import importlib.metadata as m; print(m.version('apache-airflow'))"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.strip()
            # Both parameters on one venv would test one line twice.
            assert version.startswith(prefix), f"{venv} has Airflow {version}, expected {prefix}x"
            home = tmp_path_factory.mktemp(f"{name}-template")
            res = subprocess.run(
                [str(venv / "bin" / "airflow"), "db", "migrate"],
                env=_base_env(home),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert res.returncode == 0, f"{name}: airflow db migrate failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            lines[name] = AirflowLine(name, venv, home / "airflow.db", version)
        return lines[name]

    return get


class DagRun:
    """Outcome of one `airflow dags test`."""

    def __init__(self, proc, states, seconds):
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.states = states  # task_id -> final state
        self.seconds = seconds

    def __repr__(self):
        return f"<DagRun rc={self.returncode} states={self.states} {self.seconds:.1f}s>"

    def tail(self, n=6000):
        return self.output[-n:]


class Airflow:
    """`airflow dags test` of one Airflow line in a private AIRFLOW_HOME
    with the given connections and environment."""

    def __init__(self, home, line):
        self.home = home
        self.line = line
        self.version = line.version
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(line.template_db, home / "airflow.db")
        self.env = _base_env(home)

    def connection(self, conn_id, **fields):
        self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({"conn_type": "http", **fields})

    def dags_test(self, dag_id, conf=None, env=None, timeout=240):
        cmd = [str(self.line.venv / "bin" / "airflow"), "dags", "test", dag_id]
        if conf:
            cmd += ["-c", json.dumps(conf)]
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - t0
        return DagRun(proc, self.task_states(dag_id), seconds)

    def task_states(self, dag_id):
        """Final task states of the DAG's newest run, from the metadata DB."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if row is None:
                return {}
            return dict(
                db.execute(
                    "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, row[0])
                ).fetchall()
            )


@pytest.fixture(params=list(AIRFLOW_LINES))
def airflow(request, tmp_path, airflow_lines):
    """Airflow of one line; a test using it runs on 3.3.2 and on 2.10.5."""
    return Airflow(tmp_path / "airflow-home", airflow_lines(request.param))


class Webhook:
    """A Slack-compatible webhook receiver on loopback that records posts."""

    def __init__(self):
        self.posts = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/secretpath"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def texts(self):
        return [json.loads(body)["text"] for _, _, body in self.posts]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


class Daemon:
    """build/salesd run with its HTTP endpoint on a free loopback port."""

    def __init__(self, salesd, pg_db, ch_db, token, **overrides):
        self.port = free_port()
        self.token = token
        token_file = salesd.tmp_path / "http-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        overrides.setdefault("http.listen", f"127.0.0.1:{self.port}")
        overrides.setdefault("http.token_file", str(token_file))
        self.config = salesd.write_config(pg_db, ch_db, **overrides)
        self.proc = salesd.start("run", config=self.config)

    def healthz(self):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/healthz")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read())

    def wait_healthy(self, timeout=60):
        """Until /healthz answers ok: the HTTP endpoint is up.  It says ok
        from the start (no failed run yet); wait_recorded waits for the run."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError(f"salesd exited ({self.proc.returncode}):\n{self.proc.stderr[-4000:]}")
            try:
                last = self.healthz()
                if last[0] == 200 and last[1].get("status") == "ok":
                    return last[1]
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"salesd not healthy within {timeout}s: {last}\n{self.proc.stderr[-4000:]}")

    def wait_recorded(self, ch_db, timeout=60):
        """Until ClickHouse holds a heartbeat and a successful run of this
        daemon.  /healthz says ok before the start-up run has finished (it
        creates the tables), and a loaded ClickHouse may take a retry to
        store the run's row; the scenarios (the daemon stopped at once,
        say) need both stored."""
        sql = (
            "SELECT (SELECT count() FROM salesd_heartbeat),"
            " (SELECT count() FROM salesd_runs WHERE status = 'success') FORMAT TabSeparated"
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                counts = ch_db.query(sql).split()
            except ClickHouseError as exc:
                if exc.code != 60:  # 60: a table does not exist yet
                    raise
                counts = [str(exc)]
            if len(counts) == 2 and "0" not in counts:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"salesd's heartbeat and run not in ClickHouse within {timeout}s (counts {counts}):\n"
                    f"{self.proc.stderr[-4000:]}"
                )
            time.sleep(0.1)

    def stop(self):
        return self.proc.stop()


def _daemon_factory(salesd, pg_db, ch_db):
    def start(token=None, **overrides):
        d = Daemon(salesd, pg_db, ch_db, token or "tok-" + os.urandom(12).hex(), **overrides)
        d.wait_healthy()
        d.wait_recorded(ch_db)
        return d

    return start


# Class-scoped twins of pg_db, ch18_db and salesd: a test class shares one
# daemon (and its databases) between its tests, so the scenario that each
# test runs on both Airflow lines is set up once.  The daemon is stopped and
# the databases dropped when the class is done.


@pytest.fixture(scope="class")
def class_pg_db(pg_server, request):
    name = _integration._db_name(request)
    pg_server.create_database(name)
    db = _integration.PgDb(pg_server, name)
    yield db
    db.close()
    pg_server.drop_database(name)


@pytest.fixture(scope="class")
def class_ch18_db(_server_pool, request):
    yield from _integration._ch_db(_server_pool.get(_integration.ClickHouseServer.backend), request)


@pytest.fixture(scope="class")
def class_salesd(tmp_path_factory):
    s = _integration.Salesd(tmp_path_factory.mktemp("salesd"))
    yield s
    s.cleanup()


@pytest.fixture(scope="class")
def class_daemon(class_salesd, class_pg_db, class_ch18_db):
    """A factory shared by the tests of one class: class_daemon(**config_overrides)
    starts salesd and waits until it is healthy and its first run and
    heartbeat are in ClickHouse."""
    return _daemon_factory(class_salesd, class_pg_db, class_ch18_db)
