"""Fixtures for salesd's integration tests: one Postgres and one server per
ClickHouse backend for the whole pytest session (started on first use), a
fresh database on each for every test, and a `salesd` helper that writes a
config for those databases and runs the real binary."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.servers import (  # noqa: E402
    BACKENDS,
    REPO,
    ClickHouseCluster,
    ClickHouseServer,
    PostgresPrimary,
    PostgresServer,
    PostgresStandby,
    _preexec,
    clean_env,
    free_port,
    stop_process,
)

CH_BACKENDS = ["clickhouse-18.16", "chdb-26"]

__all__ = ["free_port", "CH_BACKENDS"]


class _ServerPool:
    """Servers shared by the session, started lazily so a run that needs only
    one backend starts only that one."""

    def __init__(self):
        self.servers = {}
        self.start_times = []

    def get(self, kind):
        server = self.servers.get(kind)
        if server is None:
            if kind == "postgres":
                server = PostgresServer()
            elif kind == "cluster":
                server = ClickHouseCluster()
            elif kind == "postgres-primary":
                server = PostgresPrimary()
            elif kind == "postgres-standby":
                server = PostgresStandby(self.get("postgres-primary"))
            else:
                server = BACKENDS[kind]()
            server.start()
            self.servers[kind] = server
            self.start_times.append((kind, server.start_seconds))
        return server

    def stop_all(self):
        errors = []
        for server in reversed(list(self.servers.values())):
            try:
                server.stop()
            except Exception as exc:
                errors.append(f"{server!r}: {exc}")
        self.servers.clear()
        if errors:
            raise RuntimeError("stopping servers failed: " + "; ".join(errors))


_pool = _ServerPool()


@pytest.fixture(scope="session")
def _server_pool():
    yield _pool
    _pool.stop_all()


def pytest_terminal_summary(terminalreporter):
    if _pool.start_times:
        took = ", ".join(f"{kind} {secs:.2f}s" for kind, secs in _pool.start_times)
        terminalreporter.write_line(f"server start times: {took}")


def _db_name(request):
    """Readable and unique: t_<test name>_<random>, within Postgres' 63."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"t_{stem}_{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# Postgres
# --------------------------------------------------------------------------


class PgDb:
    """A fresh Postgres database with the canonical schema (sql/postgres/)."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.host = server.host
        self.port = server.port
        self.user = server.role
        self.password = server.password
        self.conninfo = server.conninfo(name, user=server.role, password=server.password)
        self.conninfo_nopw = server.conninfo(name, user=server.role)
        self.superuser_conninfo = server.conninfo(name)
        self._conn = None

    def connect(self, autocommit=True):
        """A new superuser connection of the caller's own (close it)."""
        return self.server.connect(self.name, autocommit=autocommit)

    def _shared(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def execute(self, sql, params=None):
        """Run one statement (or several, without params) as superuser in
        autocommit mode; returns the row count."""
        cur = self._shared().execute(sql, params)
        return cur.rowcount

    def query(self, sql, params=None):
        """Rows of one query as superuser, as a list of tuples."""
        return self._shared().execute(sql, params).fetchall()

    def apply_sql(self, path):
        self.server.apply_sql(self.name, path)
        self.server.grant_read(self.name)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@pytest.fixture(scope="session")
def pg_server(_server_pool):
    return _server_pool.get("postgres")


@pytest.fixture(scope="session")
def pg_standby_server(_server_pool):
    """A primary (`.primary`) and its streaming hot standby (SPEC §9),
    started on first use and shared by the session; the single pg_server
    is another instance."""
    return _server_pool.get("postgres-standby")


@pytest.fixture
def pg_db(pg_server, request):
    name = _db_name(request)
    pg_server.create_database(name)
    db = PgDb(pg_server, name)
    yield db
    db.close()
    pg_server.drop_database(name)


# --------------------------------------------------------------------------
# ClickHouse
# --------------------------------------------------------------------------


class ChDb:
    """A fresh database on one ClickHouse backend.  `query`/`rows` run as
    the passwordless default user; salesd gets `user`/`password`."""

    def __init__(self, server, database):
        self.server = server
        self.backend = server.backend
        self.url = server.url
        self.database = database
        self.user = server.user
        self.password = server.password

    def query(self, sql, data=None, **kw):
        """Output text of `sql` run in this database; with `data`, `sql`
        goes into the URL and `data` is the body (INSERT ... FORMAT)."""
        return self.server.query(sql, database=self.database, data=data, **kw)

    def rows(self, sql, **kw):
        """A TabSeparated result as lists of unescaped strings (None for
        NULL)."""
        text = self.query(sql, **kw)
        return [[_tsv_unescape(f) for f in line.split("\t")] for line in text.split("\n") if line != ""]


_TSV_ESCAPES = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "'": "'", "\\": "\\"}


def _tsv_unescape(field):
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    return re.sub(r"\\(.)", lambda m: _TSV_ESCAPES.get(m.group(1), "\\" + m.group(1)), field)


@pytest.fixture(scope="session", params=CH_BACKENDS, ids=CH_BACKENDS)
def ch_server(request, _server_pool):
    return _server_pool.get(request.param)


def _ch_db(server, request):
    name = _db_name(request)
    server.create_database(name)
    db = ChDb(server, name)
    yield db
    server.drop_database(name)


@pytest.fixture
def ch_db(ch_server, request):
    yield from _ch_db(ch_server, request)


@pytest.fixture
def ch18_db(_server_pool, request):
    yield from _ch_db(_server_pool.get(ClickHouseServer.backend), request)


class ClusterDb(ChDb):
    """A fresh database on every replica of the session's ClickHouse
    cluster (SPEC §9).  salesd gets every replica's URL (`url` is the list)
    and the cluster's name (plus `salesd_settings`, more clickhouse.* keys
    for the configs Salesd writes); `query`/`rows` read replica
    `read_from` (the second by default: what salesd writes through the
    first must arrive there); `on[i]` is a ChDb of replica i."""

    def __init__(self, cluster, database, read_from=1):
        super().__init__(cluster.replicas[read_from], database)
        self.cluster = cluster
        self.url = cluster.urls
        self.salesd_settings = {"cluster": cluster.name}
        self.on = [ChDb(r, database) for r in cluster.replicas]


@pytest.fixture(scope="session")
def ch_cluster(_server_pool):
    """ZooKeeper and two ClickHouse 18.16 replicas, started once per
    session on first use.  A test that kills or stops a replica brings it
    back (writable) before it ends."""
    return _server_pool.get("cluster")


@pytest.fixture
def cluster_db(ch_cluster, request):
    name = _db_name(request)
    ch_cluster.replicas[0].query(f"CREATE DATABASE IF NOT EXISTS `{name}` ON CLUSTER `{ch_cluster.name}`")
    yield ClusterDb(ch_cluster, name)
    for replica in ch_cluster.replicas:
        if replica.running:
            replica.drop_database(name)


class PrivateServers:
    """Servers of a test's own, for tests that stop, restart or freeze a
    server (outages, timeouts) and so must not use the shared ones."""

    def __init__(self, request):
        self.request = request
        self.servers = []

    def _start(self, server):
        self.servers.append(server)
        return server.start()

    def postgres(self):
        """A new PostgresServer with a fresh schema database: a PgDb whose
        `.server` can halt()/restart()/freeze()/thaw()."""
        server = self._start(PostgresServer())
        name = _db_name(self.request)
        server.create_database(name)
        return PgDb(server, name)

    def clickhouse(self, backend="clickhouse-18.16"):
        """A new server of that backend with a fresh database: a ChDb."""
        server = self._start(BACKENDS[backend]())
        return ChDb(server, server.create_database(_db_name(self.request)))

    def stop_all(self):
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def private_servers(request):
    ps = PrivateServers(request)
    yield ps
    ps.stop_all()


# --------------------------------------------------------------------------
# salesd
# --------------------------------------------------------------------------


def _set_path(cfg, dotted, value):
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    if value is None:
        node.pop(keys[-1], None)
    elif isinstance(value, dict):
        if not isinstance(node.get(keys[-1]), dict):
            node[keys[-1]] = {}
        for k, v in value.items():
            _set_path(node[keys[-1]], k, v)
    else:
        node[keys[-1]] = value


class SalesdProcess:
    """A salesd started in the background; output goes to files."""

    def __init__(self, proc, stdout_path, stderr_path):
        self.proc = proc
        self.pid = proc.pid
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    @property
    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    @property
    def returncode(self):
        return self.proc.poll()

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=None):
        return self.proc.wait(timeout)

    def wait_for(self, pattern, timeout=30.0, stream="stderr"):
        """Wait until `pattern` (a regex) appears in the output; returns the
        match.  Fails early if the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr if stream == "stderr" else self.stdout
            m = rx.search(text)
            if m:
                return m
            if self.proc.poll() is not None:
                text = self.stderr if stream == "stderr" else self.stdout
                m = rx.search(text)
                if m:
                    return m
                raise AssertionError(
                    f"salesd exited ({self.proc.returncode}) before {pattern!r} appeared; stderr:\n{self.stderr[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout}s; stderr:\n{self.stderr[-4000:]}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal, wait up to `timeout`, then SIGKILL; returns the exit
        status (negative: killed by that signal)."""
        return stop_process(self.proc, sig, timeout)


class Salesd:
    """Writes configs for the test's databases and runs build/salesd."""

    def __init__(self, tmp_path):
        self.bin = Path(os.environ.get("SALESD_BIN") or REPO / "build" / "salesd")
        self.tmp_path = Path(tmp_path)
        self.processes = []
        self.config = None  # the dict behind the last config written
        self._n = 0

    def _secret_file(self, name, value):
        path = self.tmp_path / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return path

    def write_config(self, pg_db=None, ch_db=None, overrides=None, *, filename="salesd.yaml", **kw):
        """Write a YAML config for these databases and return its path.
        Overrides (a dict and/or keyword arguments) use nested dicts or
        dotted keys; a value of None removes the key.  Passwords go into
        0600 files next to the config, never into the YAML."""
        import yaml

        cfg = {
            "instance": "salesd-test",
            "timezone": "UTC",
            "log_level": "info",
            "http": {"listen": ""},
        }
        if pg_db is not None:
            cfg["postgres"] = {
                "conninfo": pg_db.conninfo_nopw,
                "password_file": str(self._secret_file("pg-password", pg_db.password)),
            }
        if ch_db is not None:
            cfg["clickhouse"] = {
                "url": ch_db.url,
                "database": ch_db.database,
                "user": ch_db.user,
                "password_file": str(self._secret_file("ch-password", ch_db.password)),
                "timeout": "5s",
                "retries": 1,
            }
            cfg["clickhouse"].update(getattr(ch_db, "salesd_settings", {}))
        for key, value in list((overrides or {}).items()) + list(kw.items()):
            _set_path(cfg, key, value)
        path = self.tmp_path / filename
        path.write_text(yaml.safe_dump(cfg, default_flow_style=False, sort_keys=False))
        self.config = cfg
        return path

    def _cmd(self, args, config):
        cmd = [str(self.bin)]
        if config is not None:
            cmd += ["-c", str(config)]
        return cmd + [str(a) for a in args]

    def run(self, *args, config=None, env=None, timeout=60, input=None):
        """Run salesd to completion: `salesd -c CONFIG ARGS...`."""
        return subprocess.run(
            self._cmd(args, config),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(env),
            cwd=self.tmp_path,
            timeout=timeout,
            preexec_fn=_preexec(),
        )

    def start(self, *args, config=None, env=None):
        """Start salesd in the background (e.g. start("run", config=cfg))."""
        self._n += 1
        out = self.tmp_path / f"salesd-{self._n}.stdout"
        err = self.tmp_path / f"salesd-{self._n}.stderr"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(
                self._cmd(args, config),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                env=clean_env(env),
                cwd=self.tmp_path,
                start_new_session=True,
                preexec_fn=_preexec(),
            )
        handle = SalesdProcess(proc, out, err)
        self.processes.append(handle)
        return handle

    def cleanup(self):
        for handle in self.processes:
            if handle.alive():
                handle.stop(signal.SIGTERM, timeout=5)


@pytest.fixture
def salesd(tmp_path):
    s = Salesd(tmp_path)
    yield s
    s.cleanup()
