"""Where the tests find what `make deb` built, and the files salesd installs:
the list `make install` and the package are both checked against."""

import os
import subprocess
from pathlib import Path

from harness.servers import REPO


def version():
    return (REPO / "VERSION").read_text().strip()


def deb_path():
    """The .deb under test: $SALESD_DEB (set by `make integration`) or the
    one `make deb` leaves in build/."""
    env = os.environ.get("SALESD_DEB")
    if env:
        return Path(env)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    return REPO / "build" / f"salesd_{version()}_{arch}.deb"


def require_deb():
    path = deb_path()
    assert path.is_file(), f"{path} is missing: build the package first (make deb)"
    return path


def installed_files(prefix, unitdir, docs_compressed=False):
    """Every file `make install PREFIX=prefix` installs (paths without
    DESTDIR), from the source tree, so a new SQL file or DAG is expected
    without editing this list."""
    share = f"{prefix}/share/salesd"
    files = {
        f"{prefix}/bin/salesd",
        f"{share}/salesd.yaml.example",
        f"{unitdir}/salesd.service",
        f"{prefix}/share/man/man8/salesd.8",
        f"{prefix}/share/man/man5/salesd.yaml.5",
        f"{prefix}/share/bash-completion/completions/salesd",
    }
    for kind in ("postgres", "clickhouse"):
        files |= {f"{share}/sql/{kind}/{p.name}" for p in (REPO / "sql" / kind).glob("*.sql")}
    files |= {f"{share}/airflow/{p.name}" for p in (REPO / "airflow" / "dags").glob("*.py")}
    files.add(f"{share}/airflow/.airflowignore")
    files |= {f"{share}/contrib/prometheus/{p.name}" for p in (REPO / "contrib" / "prometheus").glob("*.yml")}
    files |= {f"{share}/contrib/grafana/{p.name}" for p in (REPO / "contrib" / "grafana").glob("*.json")}
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    files |= {f"{prefix}/share/doc/salesd/{p.name}" for p in docs}
    return files
