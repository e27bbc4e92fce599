"""A network namespace of a test's own, joined to ours by a veth pair, and a
switch that makes the pair silently lose every packet: a `tc` blackhole
qdisc on both ends, so no RST, no ICMP and no ACK ever comes back (a
user-space relay cannot do that: its kernel still acknowledges).  Both ends
get permanent neighbour entries, so no ARP failure turns the silence into
"host unreachable" either.

The addresses come from 198.18.0.0/15 (RFC 2544, reserved for network
tests), one /30 per namespace: the host end .1 in our namespace, the far
end .2 inside the test's namespace; tests only ever talk to the far end.
Needs root, `ip` and `tc` (iproute2).  Everything is removed by destroy(),
and by an atexit hook if a test forgets."""

import atexit
import json
import os
import random
import shutil
import subprocess

_live = []


def available():
    """None when namespaces can be made here, else why not (a skip reason)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces and tc qdiscs"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian package iproute2)"
    return None


def _run(*cmd, check=True):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}): {res.stderr.strip()}")
    return res


class NetNs:
    def __init__(self):
        tag = f"{os.getpid() % 100000:05d}{random.randrange(16**3):03x}"
        self.name = f"salesd-{tag}"
        self.path = f"/run/netns/{self.name}"
        self.host_if = f"sdh{tag}"  # interface names: at most 15 characters
        self.ns_if = f"sdn{tag}"
        self.host_addr = self.ns_addr = self.subnet = None
        self.blackholed = False

    def _pick_subnet(self):
        routes = _run("ip", "-4", "route", "show", "table", "all").stdout
        for _ in range(100):
            base = f"198.{18 + random.randrange(2)}.{random.randrange(256)}.{4 * random.randrange(64)}"
            if base.rsplit(".", 1)[0] + "." not in routes:
                a, b, c, d = (int(x) for x in base.split("."))
                return f"{a}.{b}.{c}.{d + 1}", f"{a}.{b}.{c}.{d + 2}", f"{base}/30"
        raise RuntimeError("no free /30 in 198.18.0.0/15")

    def _mac(self, ifname, netns=False):
        cmd = ["ip", "-j", "link", "show", "dev", ifname]
        if netns:
            cmd = ["ip", "-n", self.name] + cmd[1:]
        return json.loads(_run(*cmd).stdout)[0]["address"]

    def create(self):
        _live.append(self)
        self.host_addr, self.ns_addr, self.subnet = self._pick_subnet()
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.name)
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        _run("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        _run("ip", "-n", self.name, "addr", "add", f"{self.ns_addr}/30", "dev", self.ns_if)
        _run("ip", "link", "set", self.host_if, "up")
        _run("ip", "-n", self.name, "link", "set", self.ns_if, "up")
        host_mac, ns_mac = self._mac(self.host_if), self._mac(self.ns_if, netns=True)
        _run("ip", "neigh", "replace", self.ns_addr, "lladdr", ns_mac, "dev", self.host_if, "nud", "permanent")
        _run(
            "ip", "-n", self.name, "neigh", "replace", self.host_addr, "lladdr", host_mac, "dev", self.ns_if,
            "nud", "permanent",
        )
        return self

    def blackhole(self):
        """From now on every packet between the two ends is dropped silently."""
        _run("tc", "qdisc", "replace", "dev", self.host_if, "root", "blackhole")
        _run("ip", "netns", "exec", self.name, "tc", "qdisc", "replace", "dev", self.ns_if, "root", "blackhole")
        self.blackholed = True

    def restore(self):
        """Packets flow again; established connections resume."""
        _run("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)
        _run("ip", "netns", "exec", self.name, "tc", "qdisc", "del", "dev", self.ns_if, "root", check=False)
        self.blackholed = False

    def destroy(self):
        if self in _live:
            _live.remove(self)
        _run("ip", "link", "del", self.host_if, check=False)  # both ends go
        _run("ip", "netns", "del", self.name, check=False)


@atexit.register
def _destroy_all():
    for ns in list(_live):
        ns.destroy()
