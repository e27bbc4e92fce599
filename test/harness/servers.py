"""Real servers for salesd's tests, each in its own temp dir on a free
127.0.0.1 port: PostgreSQL 15, Debian's ClickHouse 18.16 and the chdb-backed
ClickHouse HTTP adapter (the current engine).  Every server is started by
pid and stopped by that pid only; an atexit hook and a parent-death signal
make sure none outlives the test process, even when a test crashes."""

import atexit
import ctypes
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("SALESD_PG_BIN", "/usr/lib/postgresql/15/bin"))
CLICKHOUSE_SERVER = os.environ.get("SALESD_CLICKHOUSE_SERVER", "/usr/sbin/clickhouse-server")
CLICKHOUSE_ETC = Path("/etc/clickhouse-server")
CHDB_ADAPTER = Path(__file__).resolve().parent / "chdb_http.py"

# Environment variables that would silently change how a client or salesd
# connects; the harness never passes them on to the programs it starts.
_LEAKY_ENV = re.compile(r"^(PG[A-Z_]*|SALESD_.*|CREDENTIALS_DIRECTORY|NOTIFY_SOCKET|WATCHDOG_.*|LISTEN_.*)$")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

_live = []  # servers started and not yet stopped, for the atexit hook


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    """Poll `predicate()` until it returns something true and return that;
    AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def clean_env(extra=None):
    """os.environ without the variables that would redirect a client."""
    env = {k: v for k, v in os.environ.items() if not _LEAKY_ENV.match(k)}
    if extra:
        env.update(extra)
    return env


_CLONE_NEWNET = 0x40000000


def _preexec(user=None, deathsig=signal.SIGKILL, netns=None):
    """Child set-up run between fork and exec: join the network namespace
    `netns` (a path such as /run/netns/NAME) when given, drop to `user` (a
    pwd entry) when given, then ask the kernel to signal the child when we
    die.  The death signal is set last because changing credentials clears
    it."""

    def fn():
        if netns is not None:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns}")
            os.close(fd)
        if user is not None:
            os.setgid(user.pw_gid)
            os.initgroups(user.pw_name, user.pw_gid)
            os.setuid(user.pw_uid)
        _libc.prctl(_PR_SET_PDEATHSIG, int(deathsig), 0, 0, 0)

    return fn


def spawn(cmd, log_path, user=None, deathsig=signal.SIGKILL, env=None, cwd=None, netns=None):
    """Start `cmd` in its own session with stdout and stderr appended to
    `log_path` (inside the network namespace `netns` when given); returns
    the Popen."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env if env is not None else clean_env(),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_preexec(user, deathsig, netns),
        )
    finally:
        log.close()


def _print_stacks(pid):
    """A process that does not stop when told to is a bug worth a look:
    print every thread's stack (gdb, when installed) into the test's output
    before it is killed."""
    gdb = shutil.which("gdb")
    if not gdb:
        return
    try:
        out = subprocess.run(
            [gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    print(f"pid {pid} did not stop; its threads:\n{out[-20000:]}", file=sys.stderr)


def stop_process(proc, sig=signal.SIGTERM, timeout=15.0):
    """Signal the process by its pid, wait, SIGKILL after `timeout`.
    Returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            os.kill(proc.pid, signal.SIGCONT)  # in case it was frozen
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _print_stacks(proc.pid)
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
    return proc.returncode


def _tail(path, limit=4000):
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def _stop_all_live():
    for server in list(reversed(_live)):
        try:
            server.stop()
        except Exception as exc:  # keep stopping the others
            print(f"harness: stopping {server!r} failed: {exc}", file=sys.stderr)


atexit.register(_stop_all_live)


def _all_threads_stopped(pid):
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread just exited
        if state not in ("T", "t"):
            return False
    return True


_swept = False


def _sweep_stale_tmpdirs():
    """Remove temp dirs left by a harness process that was killed (SIGKILL
    leaves no chance to clean up); its servers died with it."""
    root = Path(tempfile.gettempdir())
    for d in [d for kind in ("pg", "clickhouse", "chdb") for d in root.glob(f"salesd-{kind}-*")]:
        try:
            pid = int((d / ".owner").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # not ours, or being created
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


class _Server:
    """Start/stop bookkeeping shared by all servers.  A subclass prepares
    its temp dir (`_prepare`: ports, config, data), launches and waits
    (`_launch`), and may finish the set-up once it runs (`_setup`)."""

    name = "server"
    stop_signal = signal.SIGTERM
    run_as = None  # pwd entry of the OS user the server runs as, None: us

    def __init__(self):
        self.proc = None
        self.tmpdir = None
        self.start_seconds = None
        self.keep_tmpdir = bool(os.environ.get("SALESD_KEEP_TMP"))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        pid = self.proc.pid if self.proc else None
        return f"<{type(self).__name__} pid={pid} dir={self.tmpdir}>"

    def start(self, attempts=3):
        """Start in a new temp dir and wait until ready.  A failed try is
        cleaned up and retried with new ports (another process may have
        taken a port between free_port() and the server's bind)."""
        t0 = time.monotonic()
        for attempt in range(attempts):
            self._make_tmpdir()
            try:
                self._prepare()
                self._launch()
                self._setup()
                break
            except Exception:
                self.stop()
                if attempt == attempts - 1:
                    raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _prepare(self):
        pass

    def _launch(self):
        raise NotImplementedError

    def _setup(self):
        pass

    def _make_tmpdir(self):
        global _swept
        if not _swept:
            _swept = True
            _sweep_stale_tmpdirs()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"salesd-{self.name}-"))
        (self.tmpdir / ".owner").write_text(f"{os.getpid()}\n")
        if self.run_as is not None:
            os.chown(self.tmpdir, self.run_as.pw_uid, self.run_as.pw_gid)
        _live.append(self)
        return self.tmpdir

    def _check_alive(self, what, log):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with status {self.proc.returncode} while starting; log {log}:\n{_tail(log)}"
            )

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def halt(self):
        """Stop the server process but keep its data, config and ports, so
        restart() brings the same server back (outage tests)."""
        stop_process(self.proc, self.stop_signal)

    def restart(self):
        if self.running:
            self.halt()
        self._launch()

    def freeze(self):
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung
        server, for timeout tests); thaw() resumes it."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        # The stop is asynchronous: wait until every thread is stopped, or a
        # request sent right now may still be answered.
        deadline = time.monotonic() + 10
        while not _all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} (pid {self.proc.pid}) did not stop")
            time.sleep(0.01)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        try:
            stop_process(self.proc, self.stop_signal)
        finally:
            self.proc = None
            if self in _live:
                _live.remove(self)
            if self.tmpdir is not None and not self.keep_tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


class PostgresServer(_Server):
    """PostgreSQL 15.  As root the cluster belongs to, and runs as, the
    `postgres` OS user (the server refuses root); otherwise as ourselves.
    Local connections and TCP connections of any role but `salesd` are
    trusted; `salesd` must give its password (SCRAM).  By default it listens
    on 127.0.0.1; `host`, `netns` and `client_net` put it on an address of a
    test's own network namespace (harness/netns.py) instead."""

    name = "pg"
    superuser = "postgres"
    stop_signal = signal.SIGINT  # Postgres' fast shutdown: it does not wait for clients
    extra_settings = {}  # subclasses: settings on top of the defaults below

    def __init__(
        self, bin_dir=PG_BIN, password=None, timezone="UTC", role="salesd", host="127.0.0.1", netns=None,
        client_net="127.0.0.1/32",
    ):
        super().__init__()
        self.bin_dir = Path(bin_dir)
        self.host = host
        self.netns = netns
        self.client_net = client_net
        self.port = None
        self.role = role
        self.password = password or "pg-" + secrets.token_hex(12)
        self.timezone = timezone
        self._templates = set()
        self.run_as = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def datadir(self):
        return self.tmpdir / "data"

    @property
    def sockdir(self):
        return self.tmpdir / "sock"

    @property
    def log_path(self):
        return self.tmpdir / "postgres.log"

    def _run_as_owner(self, cmd, timeout=120):
        res = subprocess.run(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env({"LC_ALL": "C"}),
            cwd=self.tmpdir,
            preexec_fn=_preexec(self.run_as),
            timeout=timeout,
        )
        if res.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res

    def _prepare(self):
        self._templates = set()
        self._run_as_owner(["mkdir", "-m", "0700", self.datadir, self.sockdir])
        self._run_as_owner(
            [
                self.bin_dir / "initdb",
                "-D", self.datadir,
                "-U", self.superuser,
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        hba = (
            "local all all trust\n"
            f"host all {self.role} {self.client_net} scram-sha-256\n"
            f"host all all {self.client_net} trust\n"
        )
        (self.datadir / "pg_hba.conf").write_text(hba)
        if self.run_as is not None:
            os.chown(self.datadir / "pg_hba.conf", self.run_as.pw_uid, self.run_as.pw_gid)
        self.port = free_port()

    def _launch(self):
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.sockdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "password_encryption": "scram-sha-256",
            "timezone": self.timezone,
            "log_timezone": "UTC",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "autovacuum": "off",
        }
        settings.update(self.extra_settings)
        cmd = [self.bin_dir / "postgres", "-D", self.datadir]
        for k, v in settings.items():
            cmd += ["-c", f"{k}={v}"]
        # SIGQUIT on our death: immediate shutdown, the backends follow.
        self.proc = spawn(
            cmd, self.log_path, user=self.run_as, deathsig=signal.SIGQUIT, cwd=self.tmpdir, netns=self.netns
        )
        self._wait_ready()

    def _setup(self):
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE ROLE {self.role} LOGIN PASSWORD {_pg_literal(self.password)}")
            conn.execute(f"GRANT pg_read_all_stats TO {self.role}")

    def _wait_ready(self, timeout=60):
        import psycopg

        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self._check_alive("postgres", self.log_path)
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections within {timeout}s: {last}\n{_tail(self.log_path)}")

    def conninfo(self, db, user=None, password=None):
        """libpq keyword conninfo over TCP; superuser (trusted) by default."""
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={db}", f"user={user or self.superuser}"]
        if password is not None:
            parts.append("password=" + _conninfo_value(password))
        return " ".join(parts)

    def connect(self, db, autocommit=True):
        """A psycopg connection to `db` as the superuser."""
        import psycopg

        return psycopg.connect(self.conninfo(db), autocommit=autocommit, connect_timeout=10)

    def schema_files(self):
        return sorted((REPO / "sql" / "postgres").glob("*.sql"))

    def create_database(self, name, schema=True):
        """CREATE DATABASE `name` with every sql/postgres/*.sql applied in
        sorted order (unless schema=False), readable by the salesd role.
        The schema is applied once per session to a template database that
        each new database copies: much faster than re-running the files."""
        with self.connect("postgres") as conn:
            if schema:
                template = self._schema_template()
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        if not schema:
            self.grant_read(name)
        return name

    def _schema_template(self):
        files = self.schema_files()
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        template = "salesd_schema_" + digest.hexdigest()[:12]
        if template not in self._templates:
            with self.connect("postgres") as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{template}"')
                conn.execute(f'CREATE DATABASE "{template}"')
            for path in files:
                self.apply_sql(template, path)
            self.grant_read(template)
            self._templates.add(template)
        return template

    def drop_database(self, name):
        with self.connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def apply_sql(self, db, path):
        """Run one SQL file with psql, stopping at the first error."""
        res = subprocess.run(
            [
                self.bin_dir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", db,
                "-f", str(path),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(f"applying {path} to {db!r} failed: {res.stderr.strip()}")

    def grant_read(self, db, role=None):
        """SELECT on every table and view in schema public, now and later."""
        role = role or self.role
        with self.connect(db) as conn:
            conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
            conn.execute(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {self.superuser} IN SCHEMA public GRANT SELECT ON TABLES TO {role}"
            )

    def create_role(self, name, password=None, read_all_stats=False):
        """An extra login role (cluster-wide) for tests that need one with
        other privileges; returns the name."""
        with self.connect("postgres") as conn:
            pw = f" PASSWORD {_pg_literal(password)}" if password is not None else ""
            conn.execute(f"CREATE ROLE {name} LOGIN{pw}")
            if read_all_stats:
                conn.execute(f"GRANT pg_read_all_stats TO {name}")
        return name


class PostgresPrimary(PostgresServer):
    """A PostgresServer that streams its WAL to standbys (SPEC §9):
    wal_level replica, WAL senders, replication connections trusted."""

    extra_settings = {"wal_level": "replica", "max_wal_senders": "4", "full_page_writes": "on"}

    def _prepare(self):
        super()._prepare()
        with open(self.datadir / "pg_hba.conf", "a") as f:
            f.write(f"host replication all {self.client_net} trust\n")


class PostgresStandby(PostgresServer):
    """A streaming hot standby of a running PostgresPrimary, cloned with
    `pg_basebackup -R -X stream` (which writes standby.signal and the
    primary_conninfo), on a port of its own.  Roles and databases come from
    the primary; the standby is read-only.  `replay_pause()` and
    `replay_resume()` make replication lag on demand; `caught_up()` waits
    until everything the primary inserted so far is replayed."""

    name = "pg"
    extra_settings = {
        "wal_level": "replica",
        "max_wal_senders": "4",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
    }

    def __init__(self, primary):
        super().__init__(bin_dir=primary.bin_dir, password=primary.password, timezone=primary.timezone,
                         role=primary.role)
        self.primary = primary

    def _prepare(self):
        self._templates = set()
        self._run_as_owner(["mkdir", "-m", "0700", self.sockdir])
        self._run_as_owner(
            [
                self.bin_dir / "pg_basebackup",
                "-D", self.datadir,
                "-R", "-X", "stream", "-c", "fast", "--no-sync",
                "-h", self.primary.host, "-p", str(self.primary.port), "-U", self.superuser,
            ]
        )
        self.port = free_port()

    def _setup(self):
        pass  # the salesd role is the primary's

    def replay_lsn(self):
        with self.connect("postgres") as conn:
            return conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]

    def caught_up(self, timeout=30):
        """Wait until the standby has replayed what the primary inserted so far."""
        with self.primary.connect("postgres") as p:
            target = p.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        with self.connect("postgres") as conn:
            wait_until(
                lambda: conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)
                ).fetchone()[0],
                timeout=timeout, interval=0.01, what=f"the standby to replay up to {target}",
            )

    def replay_pause(self):
        with self.connect("postgres") as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            wait_until(
                lambda: conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
                interval=0.01, what="replay paused",
            )

    def replay_resume(self):
        with self.connect("postgres") as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def create_database(self, name, schema=True):
        raise RuntimeError("a standby is read-only: create the database on its primary")


def _pg_literal(s):
    return "'" + s.replace("'", "''") + "'"


def _conninfo_value(s):
    if s and re.fullmatch(r"[^\s'\\]+", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------
# ClickHouse (the real 18.16 server and the chdb adapter)
# --------------------------------------------------------------------------


class ClickHouseError(RuntimeError):
    def __init__(self, status, code, text):
        super().__init__(f"HTTP {status}, code {code}: {text.strip()}")
        self.status = status
        self.code = code
        self.text = text


_CH_CODE = re.compile(r"Code: (\d+)[.,]")


class _ClickHouseBase(_Server):
    """What both ClickHouse backends offer the tests: an HTTP URL, a
    password-protected `salesd` user and a passwordless `default` user."""

    backend = "clickhouse"

    def __init__(self, user="salesd", password=None):
        super().__init__()
        self.host = "127.0.0.1"
        self.http_port = None
        self.user = user
        self.password = password or "ch-" + secrets.token_hex(12)

    @property
    def url(self):
        return f"http://{self.host}:{self.http_port}"

    def http(self, method="GET", path="/", params=None, body=None, headers=None, timeout=60):
        """One raw HTTP request; returns (status, headers, body bytes) for
        any status."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers, err.read()

    def query(self, sql, database=None, data=None, user=None, password=None, settings=None, timeout=60):
        """Run `sql` (the body; with `data`, `sql` goes into the URL and
        `data` is the body, as for INSERT ... FORMAT) and return the output
        text.  Raises ClickHouseError on any non-200 answer.  The request
        always carries wait_end_of_query=1, so the server buffers the result
        and an error late in a query is a 500, never a 200 with the
        exception appended to partial output (18.16 does that otherwise);
        the body is not scanned for exception text, because a result may
        legitimately contain some (salesd_runs.error)."""
        params = {"wait_end_of_query": "1"}
        if database:
            params["database"] = database
        if settings:
            params.update({k: str(v) for k, v in settings.items()})
        headers = {}
        if user is not None:
            headers["X-ClickHouse-User"] = user
            if password is not None:
                headers["X-ClickHouse-Key"] = password
        if data is None:
            body = sql
        else:
            params["query"] = sql
            body = data
        status, hdrs, out = self.http("POST", "/", params, body, headers, timeout)
        text = out.decode("utf-8", "replace")
        if status != 200:
            code = hdrs.get("X-ClickHouse-Exception-Code")
            if code is None:
                m = _CH_CODE.search(text)
                code = m.group(1) if m else "0"
            raise ClickHouseError(status, int(code), text)
        return text

    def rows(self, sql, database=None):
        """Output of a TabSeparated query as lists of (escaped) fields."""
        text = self.query(sql, database)
        return [line.split("\t") for line in text.split("\n") if line != ""] if text else []

    def version(self):
        return self.query("SELECT version()").strip()

    def create_database(self, name):
        self.query(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        return name

    def drop_database(self, name):
        self.query(f"DROP DATABASE IF EXISTS `{name}`")

    def _wait_ping(self, log, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self._check_alive(self.name, log)
            try:
                status, _, body = self.http("GET", "/ping", timeout=2)
                if status == 200 and body == b"Ok.\n":
                    return
                last = f"HTTP {status}: {body[:200]!r}"
            except (OSError, urllib.error.URLError) as exc:
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer /ping within {timeout}s: {last}\n{_tail(log)}")


class ClickHouseServer(_ClickHouseBase):
    """Debian's clickhouse-server 18.16 with a config derived from the
    packaged one: our ports, our temp dir, loopback only."""

    name = "clickhouse"
    backend = "clickhouse-18.16"

    def __init__(self, binary=CLICKHOUSE_SERVER, etc_dir=CLICKHOUSE_ETC, user="salesd", password=None):
        super().__init__(user, password)
        self.binary = binary
        self.etc_dir = Path(etc_dir)
        self.tcp_port = None

    @property
    def log_path(self):
        return self.tmpdir / "log" / "clickhouse-server.log"

    def _write_config(self):
        d = self.tmpdir
        tree = ET.parse(self.etc_dir / "config.xml")
        root = tree.getroot()

        def put(tag, value):
            el = root.find(tag)
            if el is None:
                el = ET.SubElement(root, tag)
            el.text = value

        for tag in (
            "https_port", "tcp_port_secure", "interserver_http_port", "interserver_https_port",
            "mysql_port", "postgresql_port", "grpc_port", "listen_host", "zookeeper",
            "distributed_ddl", "remote_servers", "macros",
        ):
            for el in root.findall(tag):
                root.remove(el)
        logger = root.find("logger")
        if logger is None:
            logger = ET.SubElement(root, "logger")
        for tag, value in (
            ("level", "warning"),
            ("log", str(d / "log" / "clickhouse-server.log")),
            ("errorlog", str(d / "log" / "clickhouse-server.err.log")),
            ("size", "100M"),
            ("count", "1"),
        ):
            el = logger.find(tag)
            if el is None:
                el = ET.SubElement(logger, tag)
            el.text = value
        put("http_port", str(self.http_port))
        put("tcp_port", str(self.tcp_port))
        put("listen_host", "127.0.0.1")
        put("path", f"{d}/data/")
        put("tmp_path", f"{d}/data/tmp/")
        put("user_files_path", f"{d}/data/user_files/")
        put("format_schema_path", f"{d}/data/format_schemas/")
        put("users_config", str(d / "users.xml"))
        put("mark_cache_size", str(256 << 20))
        put("uncompressed_cache_size", str(256 << 20))
        tree.write(d / "config.xml", encoding="utf-8", xml_declaration=True)

        utree = ET.parse(self.etc_dir / "users.xml")
        users = utree.getroot().find("users")
        for el in list(users):
            users.remove(el)

        def user(name, password):
            u = ET.SubElement(users, name)
            if password:
                ET.SubElement(u, "password_sha256_hex").text = hashlib.sha256(password.encode()).hexdigest()
            else:
                ET.SubElement(u, "password").text = ""
            nets = ET.SubElement(u, "networks")
            ET.SubElement(nets, "ip").text = "127.0.0.1"
            ET.SubElement(nets, "ip").text = "::1"
            ET.SubElement(u, "profile").text = "default"
            ET.SubElement(u, "quota").text = "default"

        user("default", "")
        user(self.user, self.password)
        utree.write(d / "users.xml", encoding="utf-8", xml_declaration=True)

    def _prepare(self):
        for sub in ("log", "data"):
            (self.tmpdir / sub).mkdir()
        self.http_port = free_port()
        self.tcp_port = free_port()
        self._write_config()

    def _launch(self):
        self.proc = spawn(
            [self.binary, f"--config-file={self.tmpdir / 'config.xml'}"],
            self.tmpdir / "log" / "stdout.log",
            deathsig=signal.SIGTERM,
            cwd=self.tmpdir,
        )
        self._wait_ping(self.tmpdir / "log" / "clickhouse-server.err.log")


class ChdbServer(_ClickHouseBase):
    """The current ClickHouse engine (chdb) behind test/harness/chdb_http.py,
    run as a child Python process."""

    name = "chdb"
    backend = "chdb-26"

    def __init__(self, user="salesd", password=None, python=None):
        super().__init__(user, password)
        self.python = python or sys.executable

    @property
    def log_path(self):
        return self.tmpdir / "chdb_http.log"

    def _prepare(self):
        self.http_port = None
        users = self.tmpdir / "users"
        fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            # One "name:password" a line; default has no password.
            f.write(f"default:\n{self.user}:{self.password}\n")

    def _launch(self):
        port_file = self.tmpdir / "port"
        port_file.unlink(missing_ok=True)
        self.proc = spawn(
            [
                self.python, CHDB_ADAPTER,
                "--path", self.tmpdir / "data",
                "--port", self.http_port or 0,
                "--port-file", port_file,
                "--users-file", self.tmpdir / "users",
            ],
            self.log_path,
            deathsig=signal.SIGTERM,
            cwd=self.tmpdir,
        )
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            self._check_alive("chdb_http", self.log_path)
            if time.monotonic() > deadline:
                raise RuntimeError(f"chdb_http did not start within 60s\n{_tail(self.log_path)}")
            time.sleep(0.02)
        self.http_port = int(port_file.read_text().strip())
        self._wait_ping(self.log_path)


BACKENDS = {ClickHouseServer.backend: ClickHouseServer, ChdbServer.backend: ChdbServer}


# --------------------------------------------------------------------------
# A replicated ClickHouse cluster: ZooKeeper and two 18.16 replicas
# --------------------------------------------------------------------------

ZOOKEEPER_JARS = Path("/usr/share/java")
ZOOKEEPER_CONF = Path("/etc/zookeeper/conf")


class ZooKeeperServer(_Server):
    """Debian's ZooKeeper 3.8 in the foreground (QuorumPeerMain with a
    standalone zoo.cfg), on a free loopback port.  Ready once it answers
    `ruok` with `imok` (four-letter words, probed with a plain socket)."""

    name = "zookeeper"

    def __init__(self):
        super().__init__()
        self.port = None

    @property
    def log_path(self):
        return self.tmpdir / "zookeeper.log"

    def _prepare(self):
        (self.tmpdir / "data").mkdir()
        self.port = free_port()
        (self.tmpdir / "zoo.cfg").write_text(
            "tickTime=2000\n"
            f"dataDir={self.tmpdir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,stat\n"
            # ClickHouse asks for a 10 s session: allow it
            "minSessionTimeout=4000\n"
            "maxSessionTimeout=60000\n"
        )

    def _launch(self):
        classpath = ":".join(str(p) for p in sorted(ZOOKEEPER_JARS.glob("*.jar"))) + f":{ZOOKEEPER_CONF}"
        self.proc = spawn(
            [
                "java", "-Xmx256m", "-cp", classpath, f"-Dzookeeper.log.dir={self.tmpdir}",
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.tmpdir / "zoo.cfg",
            ],
            self.log_path,
            deathsig=signal.SIGKILL,
            cwd=self.tmpdir,
        )
        deadline = time.monotonic() + 60
        while self.four_letter("ruok") != "imok":
            self._check_alive("zookeeper", self.log_path)
            if time.monotonic() > deadline:
                raise RuntimeError(f"zookeeper did not answer ruok within 60s\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def four_letter(self, word):
        """The answer to a four-letter command, or None when unreachable."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(word.encode())
                chunks = []
                while True:
                    data = sock.recv(4096)
                    if not data:
                        break
                    chunks.append(data)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return None


class ClickHouseReplica(ClickHouseServer):
    """One 18.16 replica of the cluster: ClickHouseServer's config plus
    <zookeeper>, <macros>, <remote_servers> and <distributed_ddl>.  Its
    ports are chosen by the cluster before any replica starts (each one's
    <remote_servers> names all of them) and kept across restarts."""

    def __init__(self, cluster, index, **kw):
        super().__init__(**kw)
        self.cluster = cluster
        self.index = index
        self.name = f"clickhouse-r{index + 1}"
        self.replica_name = f"r{index + 1}"
        self.http_port, self.tcp_port, self.interserver_port = cluster.ports[index]

    def _prepare(self):
        for sub in ("log", "data"):
            (self.tmpdir / sub).mkdir()
        self._write_config()
        tree = ET.parse(self.tmpdir / "config.xml")
        root = tree.getroot()
        ET.SubElement(root, "interserver_http_port").text = str(self.interserver_port)
        ET.SubElement(root, "interserver_http_host").text = "127.0.0.1"
        zk = ET.SubElement(root, "zookeeper")
        node = ET.SubElement(zk, "node")
        ET.SubElement(node, "host").text = "127.0.0.1"
        ET.SubElement(node, "port").text = str(self.cluster.zookeeper.port)
        ET.SubElement(zk, "session_timeout_ms").text = str(self.cluster.session_timeout_ms)
        macros = ET.SubElement(root, "macros")
        ET.SubElement(macros, "shard").text = "01"
        ET.SubElement(macros, "replica").text = self.replica_name
        shard = ET.SubElement(ET.SubElement(ET.SubElement(root, "remote_servers"), self.cluster.name), "shard")
        ET.SubElement(shard, "internal_replication").text = "true"
        for _, tcp, _ in self.cluster.ports:
            rep = ET.SubElement(shard, "replica")
            ET.SubElement(rep, "host").text = "127.0.0.1"
            ET.SubElement(rep, "port").text = str(tcp)
        ET.SubElement(ET.SubElement(root, "distributed_ddl"), "path").text = self.cluster.ddl_path
        tree.write(self.tmpdir / "config.xml", encoding="utf-8", xml_declaration=True)

    def kill(self):
        """SIGKILL: no clean stop, so ZooKeeper keeps the replica's session
        (and counts it alive) until the session times out."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def readonly_tables(self):
        """Replicated tables of this replica that cannot take writes now."""
        return int(self.query("SELECT count() FROM system.replicas WHERE is_readonly OR is_session_expired").strip())

    def inactive_tables(self, since):
        """Replicated tables of this replica whose `is_active` node in
        ZooKeeper is older than `since` (Unix seconds), or missing: after a
        kill -9 and restart the old session's node stays until that session
        expires, and until then the replica does not replicate (18.16 logs
        "appears to be already active" and retries; measured: it does take
        inserts meanwhile)."""
        paths = [row.split("\t")[0] for row in self.query("SELECT replica_path FROM system.replicas").split("\n") if row]
        stale = 0
        for path in paths:
            lit = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
            fresh = self.query(
                f"SELECT count() FROM system.zookeeper WHERE path = {lit} AND name = 'is_active' "
                f"AND toUnixTimestamp(ctime) >= {int(since)}"
            ).strip()
            stale += fresh != "1"
        return stale


class ClickHouseCluster:
    """ZooKeeper and two ClickHouse 18.16 replicas of one shard, cluster
    `sales` in <remote_servers>: SPEC §9's test bed.  Started once per
    pytest session (conftest.py's `ch_cluster`); tests use a database of
    their own, so their tables' ZooKeeper paths never meet."""

    name = "sales"
    ddl_path = "/clickhouse/task_queue/ddl"
    session_timeout_ms = 10000

    def __init__(self, replicas=2, user="salesd", password=None):
        self.user = user
        self.password = password or "ch-" + secrets.token_hex(12)
        self.n = replicas
        self.zookeeper = ZooKeeperServer()
        self.replicas = []
        self.ports = []
        self.start_seconds = None
        self.phase_seconds = {}

    def start(self):
        t0 = time.monotonic()
        self.zookeeper.start()
        self.phase_seconds["zookeeper"] = time.monotonic() - t0
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(self.n)]
        self.replicas = [
            ClickHouseReplica(self, i, user=self.user, password=self.password) for i in range(self.n)
        ]
        t1 = time.monotonic()
        for r in self.replicas:
            r.start(attempts=1)
        self.phase_seconds["replicas"] = time.monotonic() - t1
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self):
        errors = []
        for server in self.replicas + [self.zookeeper]:
            try:
                server.stop()
            except Exception as exc:  # stop the others anyway
                errors.append(f"{server!r}: {exc}")
        if errors:
            raise RuntimeError("stopping the cluster failed: " + "; ".join(errors))

    @property
    def urls(self):
        return [r.url for r in self.replicas]

    def wait_writable(self, index, timeout=90):
        """Polls until replica `index` answers, none of its replicated
        tables is read-only and, after a restart, every one of them is
        active again in ZooKeeper (after a kill -9: once its old session
        expired, 10-20 s with the 10 s session timeout); returns the seconds
        it took."""
        replica = self.replicas[index]
        since = getattr(replica, "restarted_at", None)
        t0 = time.monotonic()

        def writable():
            try:
                return replica.readonly_tables() == 0 and (since is None or replica.inactive_tables(since) == 0)
            except (OSError, ClickHouseError, urllib.error.URLError):
                return False

        wait_until(writable, timeout=timeout, interval=0.2, what=f"{replica.name} to become writable")
        return time.monotonic() - t0

    def restart(self, index):
        """Starts a stopped or killed replica again on its ports and data;
        returns once it answers /ping (it may still be read-only)."""
        replica = self.replicas[index]
        replica.restarted_at = time.time()
        replica._launch()
