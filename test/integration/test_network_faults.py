"""Network faults no relay can make: the path to Postgres silently loses
every packet (no RST, no ICMP, no ACK).  Postgres runs inside a network
namespace of the test's own (harness/netns.py), reached over a veth pair
that a `tc` blackhole qdisc can cut; salesd, ClickHouse and the test stay
in ours.  Issue 10, defects 4 (a vanished host hangs a run) and 5 (the
event loop blocks on the network)."""

import re
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import PgDb, _db_name, free_port  # noqa: E402
from harness import netns  # noqa: E402
from harness.servers import PostgresServer  # noqa: E402

pytestmark = pytest.mark.skipif(netns.available() is not None, reason=netns.available() or "")

FAILED_RUN = r"run \S+ \(trigger signal\): failed after"


@pytest.fixture
def net():
    ns = netns.NetNs().create()
    yield ns
    ns.restore()
    ns.destroy()


@pytest.fixture
def far_pg(net, request):
    """A Postgres of the test's own inside `net`, with the canonical schema
    and a little data."""
    server = PostgresServer(host=net.ns_addr, netns=net.path, client_net=net.subnet)
    server.start()
    try:
        name = _db_name(request)
        server.create_database(name)
        db = PgDb(server, name)
        db.execute(
            "INSERT INTO orders (order_id, customer_id, status, order_date) VALUES"
            " (1, 1, 'completed', now() - interval '1 day'), (2, 1, 'completed', now())"
        )
        db.execute(
            "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, price, cost_price) VALUES"
            " (1, 1, 1, 2, 10.05, 4.00), (2, 2, 1, 1, 0.10, 0.05)"
        )
        yield db
        net.restore()  # closing a connection over a cut path would hang
        db.close()
    finally:
        server.stop()


def start_daemon(salesd, pg_db, ch, **overrides):
    port = free_port()
    cfg = {
        "run_on_start": False,
        "schedule": "0 0 1 1 *",
        "heartbeat_interval": "1s",
        "http.listen": f"127.0.0.1:{port}",
    }
    cfg.update(overrides)
    proc = salesd.start("run", config=salesd.write_config(pg_db, ch, cfg))
    proc.wait_for("ready")
    return proc, port


def healthz(port, timeout=1.0):
    """/healthz must answer within `timeout` whatever the network does."""
    t0 = time.monotonic()
    r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
    return r, time.monotonic() - t0


def block_run_in_postgres(proc, pg_db):
    """Starts a run (SIGUSR1) and returns once it waits inside Postgres on
    an ACCESS EXCLUSIVE lock the test holds: the connection is idle, so
    only keepalives can tell that its peer is gone.  Returns the locking
    connection."""
    lock = pg_db.connect(autocommit=False)
    lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = pg_db.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'salesd' AND wait_event_type = 'Lock'"
        )
        if rows[0][0] > 0:
            return lock
        time.sleep(0.1)
    raise AssertionError("the run did not start waiting on the lock")


def test_blackholed_postgres_fails_the_run_in_time_and_runs_recover(net, far_pg, ch18_db, salesd):
    proc, port = start_daemon(salesd, far_pg, ch18_db)
    lock = block_run_in_postgres(proc, far_pg)

    net.blackhole()
    cut = time.monotonic()
    slowest = 0.0
    while not re.search(FAILED_RUN, proc.stderr):
        assert time.monotonic() - cut < 90, "the run did not fail within 90 s of the path going silent"
        r, took = healthz(port)  # raises if it does not answer within 1 s
        assert r.status_code in (200, 503)
        slowest = max(slowest, took)
        time.sleep(0.5)
    failed_after = time.monotonic() - cut
    assert proc.alive()

    net.restore()
    lock.rollback()
    lock.close()
    # runs recover: the server has dropped the dead session (and its lock)
    deadline = time.monotonic() + 60
    while not re.search(r"\(trigger signal\): success", proc.stderr):
        assert time.monotonic() < deadline, f"no successful run after the path came back:\n{proc.stderr[-3000:]}"
        skipped = len(re.findall(r"\(trigger signal\): (?:skipped|failed)", proc.stderr))
        proc.send_signal(signal.SIGUSR1)
        while len(re.findall(r"\(trigger signal\): (?:skipped|failed|success)", proc.stderr)) <= skipped:
            assert time.monotonic() < deadline, "run did not finish"
            time.sleep(0.2)
    body = healthz(port)[0].json()
    assert body["last_run"]["status"] == "success"
    assert body["running"] is None
    print(f"run failed {failed_after:.1f} s after the cut; slowest /healthz {slowest:.3f} s")


def test_sigterm_while_postgres_is_blackholed_exits_within_10s(net, far_pg, ch18_db, salesd):
    proc, port = start_daemon(salesd, far_pg, ch18_db)
    lock = block_run_in_postgres(proc, far_pg)
    net.blackhole()
    time.sleep(1)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except Exception:
        pytest.fail(f"salesd still running 10 s after SIGTERM:\n{proc.stderr[-3000:]}")
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    net.restore()
    lock.rollback()
    lock.close()
    print(f"exited {took:.1f} s after SIGTERM")


def test_overdue_run_is_reported_and_cancelled(net, far_pg, ch18_db, salesd):
    proc, port = start_daemon(salesd, far_pg, ch18_db, run_timeout="3s")
    lock = block_run_in_postgres(proc, far_pg)
    body = healthz(port)[0].json()
    assert body["running"]["trigger"] == "signal" and body["running"]["overdue"] is False
    net.blackhole()  # the cancel request cannot get through either
    deadline = time.monotonic() + 15
    while True:
        r, _ = healthz(port)
        if r.status_code == 503:
            break
        assert time.monotonic() < deadline, f"no overdue report: {r.text}"
        time.sleep(0.3)
    body = r.json()
    assert body["status"] == "failing"
    assert body["running"]["overdue"] is True and body["running"]["started_at"]
    proc.wait_for(FAILED_RUN + r".*cancelled: the run passed its deadline", timeout=60)
    r, _ = healthz(port)
    assert r.json()["running"] is None
    net.restore()
    lock.rollback()
    lock.close()


def test_listener_connect_never_blocks_the_loop(net, pg_db, ch18_db, salesd, tmp_path):
    """The LISTEN connection's host is a name whose only name server sits
    behind the cut path: resolving it takes the resolver's whole timeout.
    /healthz must still answer within 1 s, heartbeats keep coming."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {net.ns_addr}\noptions timeout:3 attempts:1\n")
    # salesd in a mount namespace of its own that sees that resolv.conf
    wrapper = tmp_path / "salesd-in-mntns"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec unshare --mount --propagation private sh -c 'mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"'"
        f" {resolv} {salesd.bin} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    salesd.bin = wrapper
    net.blackhole()
    conninfo = re.sub(r"host=\S+", "host=salesd-pg.test", pg_db.conninfo_nopw)
    proc, port = start_daemon(
        salesd, pg_db, ch18_db, **{"notify.channel": "salesd_changes", "postgres.conninfo": conninfo}
    )

    def last_beat():
        rows = ch18_db.rows("SELECT toUnixTimestamp(max(ts)) FROM salesd_heartbeat")
        return int(rows[0][0]) if rows and rows[0][0] else 0

    first = last_beat()
    t0 = time.monotonic()
    slowest = 0.0
    while time.monotonic() - t0 < 15:
        _, took = healthz(port)
        slowest = max(slowest, took)
        time.sleep(0.2)
    assert last_beat() >= first + 8, "heartbeats stalled"
    print(f"slowest /healthz {slowest:.3f} s")
