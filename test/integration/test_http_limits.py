"""The HTTP endpoint under hostile clients (issue 11, item 1): a full
connection table must recover once the clients go, tricklers must not keep
/healthz from answering, and every client socket the daemon accepted must be
closed again.

All clients are on loopback.  Linux routes the whole of 127/8 to lo, so
binding client sockets to 127.0.0.N gives each group its own source address
without any setup."""

import errno
import os
import socket
import time

import requests

from harness.servers import free_port, wait_until
from test_daemon import daemon_config

# daemon/http.c: HTTP_MAX_CONNECTIONS
MAX_CONNECTIONS = 32


def _fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def _healthz(port, timeout):
    """(answered in time?, seconds taken) for GET /healthz from 127.0.0.1."""
    started = time.monotonic()
    try:
        r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
        ok = r.status_code in (200, 503)
    except requests.RequestException:
        ok = False
    return ok, time.monotonic() - started


def _client(src, port, blocking=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        if blocking:
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
        else:
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def _start(salesd, pg_db, ch):
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch, port=port))
    proc.wait_for("ready")
    wait_until(lambda: _healthz(port, 2)[0], what="/healthz answering")
    # Let the daemon see the warm-up request's connection close.
    time.sleep(0.5)
    return proc, port


def _fds_settle(proc, baseline):
    wait_until(lambda: _fd_count(proc.pid) <= baseline, timeout=15, what="the daemon's fd count back to its start")
    assert _fd_count(proc.pid) == baseline


def test_full_connection_table_recovers_when_clients_close(salesd, pg_db, ch18_db):
    proc, port = _start(salesd, pg_db, ch18_db)
    baseline = _fd_count(proc.pid)

    # More idle connections than the table holds, one per source address so
    # a per-address limit does not spare the table.
    socks = []
    try:
        for i in range(MAX_CONNECTIONS + 8):
            socks.append(_client(f"127.0.0.{10 + i}", port))
        time.sleep(1.0)
    finally:
        for s in socks:
            s.close()

    ok, took = _healthz(port, 1.0)
    assert ok, f"/healthz did not answer within 1 s after the clients closed (took {took:.2f}s)"
    _fds_settle(proc, baseline)
    assert proc.stop() == 0, proc.stderr[-3000:]


class Tricklers:
    """n connections from one address, each sending one header byte every
    `interval` seconds; a connection the daemon closes is opened again."""

    REQUEST = b"GET /healthz HTTP/1.1\r\nHost: salesd\r\nX-Slow: " + b"a" * 64

    def __init__(self, src, port, n, interval=5.0):
        self.src, self.port, self.interval = src, port, interval
        self.socks = [None] * n
        self.sent = [0] * n
        self.last = [0.0] * n
        self.reopened = 0

    def _alive(self, s):
        try:
            return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError as e:
            return e.errno == errno.ENOTCONN  # still connecting

    def tick(self):
        now = time.monotonic()
        for i, s in enumerate(self.socks):
            if s is not None and not self._alive(s):
                s.close()
                s = self.socks[i] = None
            if s is None:
                self.socks[i] = _client(self.src, self.port, blocking=False)
                self.sent[i], self.last[i] = 0, now
                self.reopened += 1
                continue
            if now - self.last[i] >= self.interval and self.sent[i] < len(self.REQUEST):
                try:
                    self.sent[i] += s.send(self.REQUEST[self.sent[i] : self.sent[i] + 1])
                    self.last[i] = now
                except BlockingIOError:
                    pass
                except OSError:
                    pass  # reopened on the next tick

    def close(self):
        for s in self.socks:
            if s is not None:
                s.close()
        self.socks = []


def test_tricklers_do_not_keep_healthz_from_answering(salesd, pg_db, ch18_db):
    proc, port = _start(salesd, pg_db, ch18_db)
    baseline = _fd_count(proc.pid)

    slow = Tricklers("127.0.0.2", port, 300)
    answers = []
    try:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            slow.tick()
            answers.append(_healthz(port, 1.0))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    finally:
        slow.close()

    late = [f"{took:.2f}s" for ok, took in answers if not ok or took > 1.0]
    assert len(answers) >= 8
    assert not late, f"/healthz missed {len(late)} of {len(answers)} one-second checks: {late}"
    assert proc.alive()
    _fds_settle(proc, baseline)
    assert proc.stop() == 0, proc.stderr[-3000:]


def test_idle_connections_from_one_address_leave_room(salesd, pg_db, ch18_db):
    """The issue's literal case: 32 idle connections from one address."""
    proc, port = _start(salesd, pg_db, ch18_db)
    baseline = _fd_count(proc.pid)
    n = MAX_CONNECTIONS
    socks = []
    try:
        for _ in range(n):
            socks.append(_client("127.0.0.3", port, blocking=False))
        time.sleep(1.0)
        ok, took = _healthz(port, 1.0)
        assert ok, f"/healthz did not answer within 1 s beside {n} idle connections (took {took:.2f}s)"
    finally:
        for s in socks:
            s.close()
    ok, took = _healthz(port, 1.0)
    assert ok, f"/healthz did not answer within 1 s after the clients closed (took {took:.2f}s)"
    _fds_settle(proc, baseline)
    assert proc.stop() == 0, proc.stderr[-3000:]
