"""salesd under a real systemd: a Debian bookworm container booted with
systemd-nspawn (test/harness/nspawn.py) gets the salesd package (`make
deb`) with `dpkg -i`, then, as an operator would, a config for the test's
Postgres and ClickHouse (reached over the shared loopback) and the secrets
as LoadCredential= source files.  The checks are the package's and the
unit's promises: enabled but not started on install, active only after
READY, SIGUSR1 runs, reload re-reads the config, the watchdog replaces a
frozen daemon, a config error or a missing credential does not
restart-loop, stop is clean, an upgrade restarts it, purge leaves only what
the operator made.

The only change to the unit is a drop-in that shortens WatchdogSec= and
RestartSec=, so a hang is caught in seconds rather than half a minute.

Needs root (mount, nspawn, nsenter); skipped otherwise, saying why."""

import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
import yaml

from harness import nspawn, package
from harness.servers import free_port

if os.geteuid() != 0:
    _WHY = "test_systemd_nspawn: skipped: booting systemd in systemd-nspawn needs root (mount, nspawn, nsenter)"
    # -q hides skip reasons, but always prints the warnings summary.
    warnings.warn(_WHY, pytest.PytestWarning, stacklevel=1)
    pytest.skip(_WHY, allow_module_level=True)

INNER_BIN = "/usr/bin/salesd"
INNER_UNIT = "/lib/systemd/system/salesd.service"
INNER_CONFIG = "/etc/salesd/salesd.yaml"
INNER_CREDS = "/etc/salesd/credentials"
# Far from the test's clock, so no scheduled run interferes.
SCHEDULE_A = "0 0 1 1 *"
SCHEDULE_B = "0 0 1 6 *"
WATCHDOG_SEC = 4
TEST_DROPIN = f"""[Service]
WatchdogSec={WATCHDOG_SEC}s
RestartSec=1s
"""


@pytest.fixture(scope="module")
def rootfs():
    path, built = nspawn.ensure_rootfs(log=lambda msg: print(msg, file=sys.stderr))
    if built:
        size = nspawn.dir_size(path) / (1 << 20)
        print(f"nspawn: rootfs built in {built:.1f} s, {size:.0f} MiB", file=sys.stderr)
    return path


class Deployment:
    """salesd installed in a booted container, as an operator would."""

    def __init__(self, container, salesd, pg_db, ch_db):
        self.c = container
        self.salesd = salesd
        self.pg_db = pg_db
        self.ch_db = ch_db
        self.http_port = free_port()
        self.token = "tok-" + os.urandom(12).hex()

    def write_config(self, **overrides):
        settings = {
            "instance": "salesd-nspawn",
            "schedule": SCHEDULE_A,
            "http.listen": f"127.0.0.1:{self.http_port}",
            # Secrets come from $CREDENTIALS_DIRECTORY, as in production.
            "postgres.password_file": None,
            "clickhouse.password_file": None,
        }
        settings.update(overrides)
        path = self.salesd.write_config(self.pg_db, self.ch_db, settings, filename="nspawn.yaml")
        self.c.put(INNER_CONFIG, path.read_text(), 0o644)

    def install(self, deb):
        """The package, then what the operator adds: credentials, the
        config, and the test's timing drop-in."""
        self.deb = deb
        self.c.install_deb(deb)
        self.after_dpkg = self.show("UnitFileState", "ActiveState", "FragmentPath")
        self.c.put("/etc/systemd/system/salesd.service.d/50-test-timing.conf", TEST_DROPIN)
        creds = self.c.path(INNER_CREDS)
        creds.mkdir(parents=True, exist_ok=True)
        os.chmod(creds, 0o700)
        self.c.put(f"{INNER_CREDS}/pg-password", self.pg_db.password + "\n", 0o600)
        self.c.put(f"{INNER_CREDS}/ch-password", self.ch_db.password + "\n", 0o600)
        self.c.put(f"{INNER_CREDS}/http-token", self.token + "\n", 0o600)
        self.write_config()
        self.c.systemctl("daemon-reload")

    # ---- looking at it -------------------------------------------------

    def show(self, *props):
        return self.c.show("salesd.service", *props)

    def journal(self):
        return self.c.journal("salesd.service")

    def wait_journal(self, text, timeout=15):
        """Wait for `text` in the unit's journal (journald may lag a little
        behind systemctl)."""
        try:
            self.c.wait_for(lambda: text in self.journal(), timeout, f"{text!r} in the journal", interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}{self.context()}") from None

    def context(self):
        return f"\n--- journal (salesd.service) ---\n{self.journal()[-6000:]}"

    def wait_show(self, what, timeout, **expect):
        """Wait until every property has the expected value (a value or a
        predicate); returns the properties."""

        def check():
            props = self.show(*expect)
            for k, v in expect.items():
                if not (v(props.get(k)) if callable(v) else props.get(k) == v):
                    return None
            return props

        try:
            return self.c.wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; now {self.show(*expect)}{self.context()}") from None

    def runs(self):
        try:
            return self.ch_db.rows("SELECT trigger, status, error FROM salesd_runs ORDER BY started_at")
        except Exception:  # the table appears with the first schema check
            return []

    def wait_run(self, trigger, timeout=60):
        def check():
            return [r for r in self.runs() if r[0] == trigger]

        try:
            rows = self.c.wait_for(check, timeout, f"a salesd_runs row with trigger {trigger!r}", interval=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; rows {self.runs()}{self.context()}") from None
        assert rows[-1][1] == "success", f"run {rows[-1]}{self.context()}"
        return rows

    def healthz(self):
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read() or b"{}")

    def inner_proc_status(self, pid):
        text = self.c.run(["cat", f"/proc/{pid}/status"]).stdout
        return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.fixture
def deployment(rootfs, pg_db, ch18_db, salesd):
    # The package's binary is build/salesd, not $SALESD_BIN: under `make
    # integration` that is the sanitizer build, whose LeakSanitizer needs
    # ptrace() at exit, which the unit's SystemCallFilter= rightly refuses.
    deb = package.require_deb()
    container = nspawn.Container(rootfs)
    try:
        container.boot()
        print(f"nspawn: container booted in {container.boot_seconds:.2f} s", file=sys.stderr)
        d = Deployment(container, salesd, pg_db, ch18_db)
        # The package enables the unit, which also keeps it loaded while
        # inactive, so its last exit status stays visible to systemctl show.
        d.install(deb)
        yield d
    finally:
        container.stop()


class _GatedForwarder:
    """A TCP port that refuses connections until open() forwards it to
    `target`: ClickHouse 'appears' when the test decides."""

    def __init__(self, port, target_port):
        self.port = port
        self.target_port = target_port
        self.sock = None
        self.threads = []
        self.closing = False

    def open(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closing = True
        if self.sock is not None:
            self.sock.close()


# --------------------------------------------------------------------------


def test_package_enables_but_does_not_start(deployment):
    d = deployment
    assert d.after_dpkg == {"UnitFileState": "enabled", "ActiveState": "inactive", "FragmentPath": INNER_UNIT}, (
        d.after_dpkg
    )
    assert d.c.run(["readlink", "/etc/systemd/system/multi-user.target.wants/salesd.service"]).stdout.strip() == (
        INNER_UNIT
    )
    unit = d.c.path(INNER_UNIT).read_text()
    assert f"ExecStart={INNER_BIN} -c {INNER_CONFIG} run" in unit
    # Every library the binary needs is in the rootfs, through the
    # package's Depends: (nspawn.PACKAGES has them).
    ldd = d.c.run(["ldd", INNER_BIN]).stdout
    assert "not found" not in ldd, ldd
    assert d.c.run([INNER_BIN, "--version"]).stdout.strip() == f"salesd {package.version()}"


def test_active_only_after_ready(deployment):
    d = deployment
    gate_port = free_port()
    d.write_config(**{"clickhouse.url": f"http://127.0.0.1:{gate_port}"})
    gate = _GatedForwarder(gate_port, int(d.ch_db.url.rsplit(":", 1)[1]))
    try:
        d.c.systemctl("start", "--no-block", "salesd.service")
        # ClickHouse unreachable: the daemon retries the schema check and
        # must not have said READY=1.
        d.wait_show(
            "salesd waiting for clickhouse",
            30,
            StatusText=lambda s: bool(s) and s.startswith("waiting for clickhouse"),
        )
        time.sleep(1.0)
        props = d.show("ActiveState", "SubState")
        assert props == {"ActiveState": "activating", "SubState": "start"}, f"{props}{d.context()}"
        gate.open()
        d.wait_show("salesd active", 30, ActiveState="active")
        # the run_on_start run goes through the gate too: keep it open
        # until that run is recorded
        d.wait_run("start")
    finally:
        gate.close()
    # Active exactly when the schema was verified, not when the process
    # started.
    entered = int(d.show("ActiveEnterTimestampMonotonic")["ActiveEnterTimestampMonotonic"])
    started = int(d.show("ExecMainStartTimestampMonotonic")["ExecMainStartTimestampMonotonic"])
    assert entered - started > 1_000_000, f"active {entered - started} us after exec{d.context()}"
    d.wait_journal("Started salesd.service")
    journal = d.journal()
    ready_at = journal.find("clickhouse schema verified")
    started_at = journal.find("Started salesd.service")
    assert 0 <= ready_at < started_at, f"'Started' must follow the READY log line{d.context()}"


def test_runs_as_sandboxed_dynamic_user(deployment):
    d = deployment
    d.c.systemctl("start", "salesd.service")
    props = d.show("ActiveState", "MainPID", "StatusText", "NRestarts")
    assert props["ActiveState"] == "active", f"{props}{d.context()}"
    st = d.inner_proc_status(props["MainPID"])
    uid = int(st["Uid"].split()[0])
    assert uid != 0 and 61184 <= uid <= 65519, f"not a DynamicUser= uid: {st['Uid']}"
    assert st["NoNewPrivs"].strip() == "1"
    assert int(st["CapBnd"], 16) == 0 and int(st["CapEff"], 16) == 0
    assert st["Seccomp"].strip() == "2", "SystemCallFilter= not in force"
    # The secrets reached the daemon through LoadCredential= alone: the
    # config names no password files, Postgres and ClickHouse demand them.
    d.wait_run("start")
    status, body = d.healthz()
    assert status == 200 and body["status"] == "ok", body
    assert "next run" in d.show("StatusText")["StatusText"]


def test_usr1_runs_and_reload_rereads_config(deployment):
    d = deployment
    d.c.systemctl("start", "salesd.service")
    d.wait_run("start")
    pid = d.show("MainPID")["MainPID"]

    d.c.systemctl("kill", "--signal=SIGUSR1", "salesd.service")
    d.wait_run("signal")

    _, before = d.healthz()
    assert "-01-01T00:00:00" in before["next_run"], before
    d.write_config(schedule=SCHEDULE_B)
    d.c.systemctl("reload", "salesd.service")
    d.c.wait_for(
        lambda: "-06-01T00:00:00" in (d.healthz()[1].get("next_run") or ""),
        15,
        "next_run from the reloaded schedule",
    )
    props = d.show("ActiveState", "MainPID", "NRestarts")
    assert props == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}, f"{props}{d.context()}"
    d.wait_journal("Reloaded salesd.service")

    # A broken config on reload is refused; the daemon keeps the old one.
    d.c.put(INNER_CONFIG, "schedule: [not, a, schedule\n")
    d.c.systemctl("reload", "salesd.service")
    d.wait_journal("keeping the one in force")
    props = d.show("ActiveState", "MainPID")
    assert props == {"ActiveState": "active", "MainPID": pid}, f"{props}{d.context()}"
    assert "-06-01T00:00:00" in d.healthz()[1]["next_run"]


def test_watchdog_replaces_a_frozen_daemon(deployment):
    d = deployment
    d.c.systemctl("start", "salesd.service")
    d.wait_run("start")
    props = d.show("MainPID", "WatchdogUSec")
    assert props["WatchdogUSec"] == f"{WATCHDOG_SEC}s", props
    frozen = props["MainPID"]
    t0 = time.monotonic()
    d.c.systemctl("kill", "--kill-who=main", "--signal=SIGSTOP", "salesd.service")
    # Within WatchdogSec= the pings stop, systemd aborts it and restarts.
    d.wait_show(
        "salesd restarted by the watchdog",
        WATCHDOG_SEC + 30,
        NRestarts=lambda n: n is not None and int(n) >= 1,
        ActiveState="active",
        MainPID=lambda p: p not in (None, "0", frozen),
    )
    took = time.monotonic() - t0
    assert took >= WATCHDOG_SEC - 1, f"replaced after {took:.1f} s, before the watchdog could fire"
    d.wait_journal("Watchdog timeout")


def test_config_error_and_missing_credential_do_not_restart_loop(deployment):
    d = deployment
    d.c.put(INNER_CONFIG, Path(d.salesd.tmp_path / "nspawn.yaml").read_text() + "no_such_key: 1\n")
    res = d.c.systemctl("start", "salesd.service", check=False)
    assert res.returncode != 0
    time.sleep(4)  # RestartSec=1s: a loop would have restarted by now
    props = d.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert props == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "78", "NRestarts": "0"}, (
        f"{props}{d.context()}"
    )
    d.wait_journal("no_such_key")

    # A missing LoadCredential= source: systemd's own failure, 243.
    d.write_config()
    os.unlink(d.c.path(f"{INNER_CREDS}/http-token"))
    d.c.systemctl("reset-failed", "salesd.service")
    res = d.c.systemctl("start", "salesd.service", check=False)
    assert res.returncode != 0
    time.sleep(4)
    props = d.show("ActiveState", "ExecMainStatus", "NRestarts")
    assert props == {"ActiveState": "failed", "ExecMainStatus": "243", "NRestarts": "0"}, f"{props}{d.context()}"


def test_stop_is_clean(deployment):
    d = deployment
    d.c.systemctl("start", "salesd.service")
    d.wait_run("start")
    t0 = time.monotonic()
    d.c.systemctl("stop", "salesd.service", timeout=60)
    took = time.monotonic() - t0
    props = d.show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    # ExecMainCode 1 = CLD_EXITED: it exited by itself, 0, not killed.
    assert props == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1", "ExecMainStatus": "0"}, (
        f"{props}{d.context()}"
    )
    assert took < 10, f"stop took {took:.1f} s"
    d.wait_journal("Deactivated successfully")
    journal = d.journal()
    assert "SIGKILL" not in journal and "timed out" not in journal, d.context()


def test_upgrade_restarts_and_purge_leaves_only_the_operators_files(deployment):
    d = deployment
    d.c.systemctl("start", "salesd.service")
    d.wait_run("start")
    pid = d.show("MainPID")["MainPID"]
    config = d.c.path(INNER_CONFIG).read_text()

    # An upgrade (the same version again runs the same maintainer scripts,
    # postinst configure with the old version) restarts a running service
    # and keeps the operator's edited conffile.
    d.c.install_deb(d.deb)
    d.wait_show(
        "salesd restarted by the upgrade",
        30,
        ActiveState="active",
        MainPID=lambda p: p not in (None, "0", pid),
    )
    assert d.c.path(INNER_CONFIG).read_text() == config

    listed = d.c.run(["dpkg-query", "-L", "salesd"]).stdout.split()
    # dpkg -L lists the conffile too; remove keeps it.
    assert INNER_CONFIG in listed
    owned = [p for p in listed if not d.c.path(p).is_dir() and p != INNER_CONFIG]
    assert INNER_BIN in owned and INNER_UNIT in owned

    # remove: the service stops, the files go, the conffile stays.
    d.c.run(["dpkg", "--remove", "salesd"], timeout=120)
    props = d.show("ActiveState", "LoadState")
    assert props["ActiveState"] in ("inactive", "failed") and props["LoadState"] == "not-found", props
    assert [p for p in owned if os.path.lexists(d.c.path(p))] == []
    assert d.c.path(INNER_CONFIG).read_text() == config

    # purge: the conffile and the enablement go too; what the operator made
    # (credentials, the drop-in) stays, as dpkg leaves files it does not own.
    d.c.run(["dpkg", "--purge", "salesd"], timeout=120)
    gone = [INNER_CONFIG, "/etc/systemd/system/multi-user.target.wants/salesd.service", "/usr/share/salesd",
            "/usr/share/doc/salesd", "/var/lib/systemd/deb-systemd-helper-enabled/salesd.service.dsh-also"]
    assert [p for p in gone if os.path.lexists(d.c.path(p))] == []
    res = d.c.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "salesd"], check=False)
    assert res.returncode != 0 or res.stdout.strip() == "not-installed", res.stdout
    kept = sorted(
        "/" + os.path.relpath(os.path.join(dirpath, f), d.c.root)
        for top in ("etc/salesd", "etc/systemd/system/salesd.service.d")
        for dirpath, _, files in os.walk(d.c.path(top))
        for f in files
    )
    assert kept == [
        f"{INNER_CREDS}/ch-password",
        f"{INNER_CREDS}/http-token",
        f"{INNER_CREDS}/pg-password",
        "/etc/systemd/system/salesd.service.d/50-test-timing.conf",
    ]
