"""`make install` and `make uninstall` into a temporary DESTDIR, and what
the Debian package holds: the same files, the conffile, the maintainer
scripts' promises (enabled on install, not started, try-restart on
upgrade).  The package in a running systemd is test_systemd_nspawn.py."""

import os
import io
import subprocess
import tarfile

import pytest

from harness import package
from harness.servers import REPO


def _make(*args):
    res = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True)
    assert res.returncode == 0, f"make {' '.join(args)} failed:\n{res.stdout}{res.stderr}"
    return res


def _tree(root):
    return {
        "/" + os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(root)
        for f in files
    }


def _systemd_unitdir():
    res = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"], capture_output=True, text=True)
    return res.stdout.strip() or "/lib/systemd/system"


@pytest.mark.parametrize("prefix", ["/usr", "/usr/local", "/opt/salesd"])
def test_make_install_and_uninstall(tmp_path, prefix):
    dest = tmp_path / "root"
    _make("install", f"DESTDIR={dest}", f"PREFIX={prefix}")
    unitdir = _systemd_unitdir() if prefix == "/usr" else f"{prefix}/lib/systemd/system"
    expected = package.installed_files(prefix, unitdir)
    assert _tree(dest) == expected

    unit = (dest / unitdir.lstrip("/") / "salesd.service").read_text()
    assert f"ExecStart={prefix}/bin/salesd -c /etc/salesd/salesd.yaml run" in unit
    assert os.access(dest / prefix.lstrip("/") / "bin" / "salesd", os.X_OK)
    assert (dest / prefix.lstrip("/") / "share/salesd/salesd.yaml.example").read_text() == (
        REPO / "config" / "salesd.yaml"
    ).read_text()
    modes = {p: os.stat(dest / p.lstrip("/")).st_mode & 0o777 for p in expected}
    assert {p: m for p, m in modes.items() if m != (0o755 if p.endswith("/bin/salesd") else 0o644)} == {}

    _make("uninstall", f"DESTDIR={dest}", f"PREFIX={prefix}")
    assert _tree(dest) == set()


def _deb_files(deb):
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.lstrip("."): m for m in tar.getmembers() if m.isfile()}


def _deb_control(deb, name):
    res = subprocess.run(["dpkg-deb", "--info", str(deb), name], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


def test_deb_holds_what_make_install_installs_plus_the_conffile():
    deb = package.require_deb()
    files = _deb_files(deb)
    # dh_compress gzips the man pages and the larger docs; Debian's own
    # changelog and copyright come on top.
    got = {p.removesuffix(".gz") for p in files}
    expected = package.installed_files("/usr", "/lib/systemd/system") | {
        "/etc/salesd/salesd.yaml",
        "/usr/share/doc/salesd/changelog",
        "/usr/share/doc/salesd/copyright",
    }
    assert got == expected
    assert files["/usr/bin/salesd"].mode & 0o777 == 0o755
    assert _deb_control(deb, "conffiles").split() == ["/etc/salesd/salesd.yaml"]
    fields = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    assert f"Version: {package.version()}\n" in fields
    for lib in ("libpq5", "libcurl4", "libyaml-0-2", "libsystemd0", "libmicrohttpd12", "libjansson4"):
        assert lib in fields, f"Depends lacks {lib}:\n{fields}"


def test_deb_enables_but_does_not_start_and_restarts_on_upgrade():
    deb = package.require_deb()
    postinst = _deb_control(deb, "postinst")
    assert "deb-systemd-helper enable 'salesd.service'" in postinst
    # On upgrade ($2 = the old version) a running service is restarted; a
    # first install starts nothing.
    assert "deb-systemd-invoke try-restart 'salesd.service'" in postinst
    assert "deb-systemd-invoke start" not in postinst and "deb-systemd-invoke restart" not in postinst
    prerm = _deb_control(deb, "prerm")
    assert "deb-systemd-invoke stop 'salesd.service'" in prerm
    assert "deb-systemd-helper purge 'salesd.service'" in _deb_control(deb, "postrm")


# ---- bash completion --------------------------------------------------------

COMPLETION = REPO / "completion" / "salesd.bash"


def _complete(words, cwd):
    """COMPREPLY for the command line `words` (the last is being typed)."""
    script = (
        f"source {COMPLETION}\n"
        "COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()\n"
        "_salesd\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    res = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", *words], capture_output=True, text=True, cwd=cwd
    )
    assert res.returncode == 0, res.stderr
    return sorted(line for line in res.stdout.splitlines() if line)


def test_bash_completion(tmp_path):
    (tmp_path / "site.yaml").write_text("")
    (tmp_path / "site.yml.bak").write_text("")
    commands = sorted(["run", "once", "backfill", "init-schema", "check-config", "status", "verify"])
    assert _complete(["salesd", ""], tmp_path) == commands
    assert _complete(["salesd", "ch"], tmp_path) == ["check-config"]
    assert _complete(["salesd", "-"], tmp_path) == sorted(["-c", "--config", "-h", "--help", "-V", "--version"])
    assert _complete(["salesd", "-c", "site.yam"], tmp_path) == ["site.yaml"]
    assert _complete(["salesd", "--config", "site.yaml", "i"], tmp_path) == ["init-schema"]
    assert _complete(["salesd", "once", "--"], tmp_path) == ["--date"]
    assert _complete(["salesd", "once", "--date", ""], tmp_path) == []
    assert _complete(["salesd", "backfill", "--"], tmp_path) == ["--from", "--to"]
    assert _complete(["salesd", "backfill", "--from", "2024-01-01", "--"], tmp_path) == ["--to"]
    assert _complete(["salesd", "-c", "x", "status", "-"], tmp_path) == ["--json"]
    assert _complete(["salesd", "run", ""], tmp_path) == []
    assert _complete(["salesd", "verify", "--"], tmp_path) == ["--from", "--json", "--repair", "--to"]
    assert _complete(["salesd", "verify", "--repair", "--"], tmp_path) == ["--from", "--json", "--to"]


def test_completion_knows_every_command_and_option_of_the_binary(tmp_path):
    """What salesd --help lists is what the completion offers."""
    binary = os.environ.get("SALESD_BIN") or str(REPO / "build" / "salesd")
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    commands = help_text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    options = help_text.split("options:\n", 1)[1].split("\n\n", 1)[0]
    # a command's line starts two spaces in; deeper lines continue its description
    names = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line[2] != " "]
    assert _complete(["salesd", ""], tmp_path) == sorted(names)
    listed = {w.rstrip(",") for line in options.splitlines() for w in line.split() if w.startswith("-")}
    assert set(_complete(["salesd", "-"], tmp_path)) == listed
