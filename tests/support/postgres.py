"""A throwaway PostgreSQL server for tests that stop and restart it.

``initdb`` + ``pg_ctl`` in a temporary folder (as the postgres user when the tests run as root); the
machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

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


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("initdb/pg_ctl are needed for the PostgreSQL restart test")
        pytest.skip("initdb/pg_ctl not found: cannot run a throwaway PostgreSQL server")
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
