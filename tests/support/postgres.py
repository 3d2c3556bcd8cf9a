"""A throwaway PostgreSQL server for tests that stop and restart it.

``initdb`` + ``pg_ctl`` in a temporary folder (as the postgres user when the tests run as root); the
machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_port


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class ThrowawayPostgres:
    data_dir: Path
    port: int
    pg_ctl: str
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data_dir), *args], check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.data_dir / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        """Create a database on this cluster; return its ``postgresql://`` URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name


def postgres_binaries() -> tuple[str, str] | None:
    """``initdb`` and ``pg_ctl`` (Debian keeps them under /usr/lib/postgresql/*/bin), if installed."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    return (initdb, pg_ctl) if initdb and pg_ctl else None


@contextlib.contextmanager
def running_throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A new cluster in a temporary folder on a free port, removed afterwards (needs
    :func:`postgres_binaries`)."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("initdb/pg_ctl not found: cannot run a throwaway PostgreSQL server")
    initdb, pg_ctl = binaries
    folder = Path(tempfile.mkdtemp(prefix="trinity-pg-", dir="/tmp"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data_dir = folder / "data"
    subprocess.run(
        [*run_as, initdb, "-D", str(data_dir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    server = ThrowawayPostgres(data_dir=data_dir, port=free_port(), pg_ctl=pg_ctl, run_as=run_as)
    server.start()
    try:
        yield server
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data_dir), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway cluster for one test (skipped without initdb/pg_ctl, failed under CI)."""
    if postgres_binaries() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("initdb/pg_ctl are needed for the PostgreSQL restart test")
        pytest.skip("initdb/pg_ctl not found: cannot run a throwaway PostgreSQL server")
    with running_throwaway_postgres() as server:
        yield server
