"""A Debian bookworm container booted with systemd-nspawn, so tests can run
salesd under a real systemd (PID 1 of the container) and drive it with
systemctl.

The root file system is built once with debootstrap and cached under
build/nspawn-rootfs/<key>, where the key hashes everything that decides its
content; a new key builds a new tree (into a temp name, renamed into place
when complete) and drops the old ones.  Each container boots from an
overlayfs on top of the cache, so a test's changes vanish with the test and
the cache is never written to (a plain copy is the fallback where overlayfs
is unavailable).  The container shares the host's network, so 127.0.0.1
inside reaches the test's Postgres and ClickHouse.  Commands run inside with
nsenter on the container's init, because --register=no leaves machinectl
and systemd-run --machine nothing to talk to.

Everything here needs root; callers check os.geteuid() and skip otherwise.
"""

import atexit
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness.servers import REPO, clean_env, spawn, stop_process, wait_until

SUITE = "bookworm"
# Bump when the way the tree is prepared changes without the lists below
# changing.
LAYOUT_VERSION = "1"
# systemd itself plus salesd's runtime libraries, so that `dpkg -i` of the
# salesd package finds every dependency already installed: the tests need no
# apt and no network inside (keep this in step with the package's Depends:,
# which test_systemd_nspawn checks).  The sanitizer runtimes too, so a
# build/salesd-san binary runs as well.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpq5",
    "libcurl4",
    "libyaml-0-2",
    "libmicrohttpd12",
    "libjansson4",
    "libasan8",
    "libubsan1",
)
CACHE_ROOT = Path(os.environ.get("SALESD_NSPAWN_CACHE") or REPO / "build" / "nspawn-rootfs")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
STAMP = ".salesd-rootfs-ok"

# The environment of commands run inside: nothing of the host's leaks in.
INNER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
}


def debian_mirror():
    """The Debian archive apt on this host already uses (so a local mirror
    or proxy is honoured); SALESD_DEBIAN_MIRROR overrides."""
    env = os.environ.get("SALESD_DEBIAN_MIRROR")
    if env:
        return env
    candidates = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else ():
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                candidates += fields.get("URIs", "").split()
    lists = [Path("/etc/apt/sources.list")] + (sorted(sources.glob("*.list")) if sources.is_dir() else [])
    for path in lists:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == SUITE:
                candidates.append(m.group(1))
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def cache_key():
    h = hashlib.sha256("\n".join([LAYOUT_VERSION, SUITE, "minbase", *PACKAGES]).encode())
    return f"{SUITE}-{h.hexdigest()[:12]}"


def ensure_rootfs(log=print):
    """The cached root file system, built first when missing.  Returns
    (path, seconds spent building or 0.0)."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    final = CACHE_ROOT / cache_key()
    # One builder at a time; the others wait and then find it ready.
    with open(CACHE_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / STAMP).exists():
            return final, 0.0
        for old in CACHE_ROOT.iterdir():
            if old.is_dir() and old != final:
                shutil.rmtree(old, ignore_errors=True)
        if final.exists():  # half-built by an interrupted run: start over
            shutil.rmtree(final)
        t0 = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=CACHE_ROOT))
        try:
            mirror = debian_mirror()
            log(f"nspawn: building {final.name} with debootstrap from {mirror}")
            res = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(PACKAGES),
                    SUITE,
                    str(work),
                    mirror,
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=clean_env({"LC_ALL": "C"}),
                timeout=900,
            )
            if res.returncode != 0:
                raise RuntimeError(f"debootstrap failed ({res.returncode}):\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
            _prepare_tree(work)
            (work / STAMP).write_text(f"{cache_key()} {mirror}\n")
            os.rename(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return final, time.monotonic() - t0


def _prepare_tree(root):
    """Make the tree boot quickly and quietly as a throw-away container."""
    # systemd writes a fresh machine-id on first boot when the file is empty.
    (root / "etc" / "machine-id").write_text("")
    (root / "etc" / "hostname").write_text("salesd-test\n")
    # No getty fights over the pipe console.
    wants = root / "etc" / "systemd" / "system" / "getty.target.wants"
    if wants.is_dir():
        shutil.rmtree(wants)
    for unit in ("console-getty.service", "systemd-networkd.service", "systemd-resolved.service"):
        link = root / "etc" / "systemd" / "system" / unit
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/dev/null")


def dir_size(path):
    """Bytes used by the files under `path` (hard links counted once)."""
    seen = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


_live = []


def _stop_all():
    for c in list(_live):
        try:
            c.stop()
        except Exception as exc:  # keep stopping the others
            print(f"nspawn: stopping {c!r} failed: {exc}")


atexit.register(_stop_all)


class CommandError(RuntimeError):
    def __init__(self, cmd, res):
        super().__init__(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
        self.returncode = res.returncode
        self.stdout = res.stdout
        self.stderr = res.stderr


class Container:
    """One booted container on an overlay of the cached rootfs.  Write files
    with put() before or after boot(); run() executes inside."""

    def __init__(self, lower):
        self.lower = Path(lower)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="salesd-nspawn-"))
        self.root = self.tmpdir / "root"
        self.log_path = self.tmpdir / "console.log"
        # A valid host name: letters, digits, inner dashes.
        self.name = f"salesd-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.proc = None
        self.leader = None
        self.mounted = False
        self.boot_seconds = None
        self.root.mkdir()
        (self.tmpdir / "upper").mkdir()
        (self.tmpdir / "work").mkdir()
        _live.append(self)
        res = subprocess.run(
            [
                "mount", "-t", "overlay", "overlay",
                "-o", f"lowerdir={self.lower},upperdir={self.tmpdir / 'upper'},workdir={self.tmpdir / 'work'}",
                str(self.root),
            ],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0:
            self.mounted = True
        else:
            # No overlayfs here: a private copy, slower but equivalent.
            subprocess.run(["cp", "-a", "--reflink=auto", f"{self.lower}/.", str(self.root)], check=True)

    def __repr__(self):
        return f"<Container {self.name} nspawn={self.proc.pid if self.proc else None} leader={self.leader}>"

    # ---- files -----------------------------------------------------------

    def path(self, inner):
        return self.root / str(inner).lstrip("/")

    def put(self, inner, data, mode=0o644):
        """Write `data` (str or bytes) to `inner`, a path inside."""
        p = self.path(inner)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists():
            p.unlink()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, mode)
        return p

    def install_binary(self, src, inner):
        """Copy an executable in, plus any shared library the container
        lacks (taken from the host, whose Debian release is the same)."""
        p = self.path(inner)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, p)
        os.chmod(p, 0o755)
        res = subprocess.run(
            ["chroot", str(self.root), "/usr/bin/ldd", str(inner)], capture_output=True, text=True, env=INNER_ENV
        )
        missing = re.findall(r"^\s*(\S+) => not found", res.stdout, re.M)
        copied = []
        if missing:
            host = subprocess.run(["ldd", str(src)], capture_output=True, text=True, check=True).stdout
            for lib in missing:
                m = re.search(rf"^\s*{re.escape(lib)} => (\S+)", host, re.M)
                if not m:
                    raise RuntimeError(f"{src} needs {lib}, found neither in the container nor on the host")
                real = os.path.realpath(m.group(1))
                dest = self.path(m.group(1))
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(real, dest)
                copied.append(m.group(1))
        return copied

    def install_deb(self, deb):
        """`dpkg -i` a package inside a booted container, so its maintainer
        scripts see a running systemd, as on a real host.  Its dependencies
        must be in the rootfs (PACKAGES).  Returns dpkg's CompletedProcess."""
        inner = f"/var/tmp/{Path(deb).name}"
        self.put(inner, Path(deb).read_bytes())
        try:
            return self.run(["dpkg", "-i", inner], timeout=120)
        finally:
            self.path(inner).unlink(missing_ok=True)

    # ---- life cycle ------------------------------------------------------

    def boot(self, timeout=60.0):
        """Start the container's systemd and wait until it reports running
        (or degraded)."""
        t0 = time.monotonic()
        self.proc = spawn(
            [
                "systemd-nspawn",
                "--register=no",
                "--keep-unit",
                "--quiet",
                f"--machine={self.name}",
                "-D", self.root,
                "--boot",
                "--console=pipe",
            ],
            self.log_path,
            # Our death: nspawn turns SIGTERM into a clean poweroff.
            deathsig=signal.SIGTERM,
        )
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}):\n{self.console()}")
            if self.leader is None:
                self.leader = _container_init(self.proc.pid)
            if self.leader is not None:
                res = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
                state = res.stdout.strip()
                if state in ("running", "degraded"):
                    self.boot_seconds = time.monotonic() - t0
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"container did not boot within {timeout}s (state {state!r}):\n{self.console()}")

    def console(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def run(self, cmd, check=True, timeout=60, input=None):
        """Run `cmd` inside (all of the container's namespaces, its root);
        returns the CompletedProcess (text)."""
        if self.leader is None:
            raise RuntimeError("container not booted")
        full = ["nsenter", "-t", str(self.leader), "-a"] + [str(c) for c in cmd]
        res = subprocess.run(
            full,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=INNER_ENV,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise CommandError(cmd, res)
        return res

    def systemctl(self, *args, check=True, timeout=60):
        return self.run(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def show(self, unit, *props):
        """Unit properties as a dict (systemctl show -p ...)."""
        out = self.systemctl("show", unit, *[f"--property={p}" for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit=None):
        """The journal (of one unit) as text; journalctl's complaint when
        it has none."""
        cmd = ["journalctl", "--no-pager", "-o", "short-precise"]
        if unit:
            cmd += ["-u", unit]
        res = self.run(cmd, check=False)
        return res.stdout if res.returncode == 0 else f"{res.stdout}{res.stderr}(journalctl exit {res.returncode})"

    def wait_for(self, predicate, timeout, what, interval=0.1):
        """Poll `predicate()` until it returns something true; returns it."""
        return wait_until(predicate, timeout, interval, what)

    def stop(self, timeout=20.0):
        """Power off, wait, kill by pid if it hangs; unmount and remove the
        overlay.  Safe to call twice."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                if self.leader is not None:
                    # --no-block: the answer would race with the shutdown.
                    self.run(["systemctl", "--no-block", "poweroff"], check=False, timeout=10)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    # PID 1 of the container takes its namespace with it.
                    if self.leader is not None:
                        try:
                            os.kill(self.leader, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    stop_process(self.proc, signal.SIGKILL, 10)
        finally:
            self.proc = None
            self.leader = None
            if self.mounted:
                subprocess.run(["umount", str(self.root)], capture_output=True)
                if subprocess.run(["mountpoint", "-q", str(self.root)]).returncode == 0:
                    subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
                self.mounted = False
            if self.tmpdir is not None and not os.environ.get("SALESD_KEEP_TMP"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
            if self in _live:
                _live.remove(self)


def _container_init(pid):
    """The container's init among the children of systemd-nspawn `pid`, or
    None while nspawn is still setting up (its helper child is not it)."""
    kids = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except (OSError, ValueError):
                continue
            # Field 4 (ppid) follows the parenthesised command name.
            if entry.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    for kid in kids:
        try:
            with open(f"/proc/{kid}/comm") as f:
                if f.read().strip() == "systemd":
                    return kid
        except OSError:
            continue
    return None
