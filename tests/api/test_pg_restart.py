"""PostgreSQL going away under load: 503 with Retry-After, recovery on its own, no lost write.

Runs a throwaway PostgreSQL server (initdb + pg_ctl in a temporary folder, as the postgres user
when the tests run as root); the machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.api.support import ADMIN_KEY, make_settings, running_api_server, spec_document
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


@dataclass
class Load:
    """Writers posting specifications until told to stop; every answer recorded."""

    api: str
    acknowledged: list[str] = field(default_factory=list)
    statuses: list[tuple[float, int]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writer(self, number: int) -> None:
        with httpx.Client(base_url=self.api, headers={"X-API-Key": ADMIN_KEY}, timeout=60) as client:
            count = 0
            while not self.stop.is_set():
                count += 1
                name = f"load-{number}-{count}"
                try:
                    response = client.post("/specs", json=spec_document(name))
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.unexpected.append(f"{name}: {type(exc).__name__}")
                    continue
                with self.lock:
                    self.statuses.append((time.monotonic(), response.status_code))
                    if response.status_code == 201:
                        self.acknowledged.append(name)
                    elif response.status_code == 503:
                        body = response.json()["error"]
                        if body["code"] != "database_unavailable" or "retry-after" not in response.headers:
                            self.unexpected.append(f"{name}: 503 without the contract: {response.text}")
                        time.sleep(0.05)
                    else:
                        self.unexpected.append(f"{name}: {response.status_code} {response.text[:200]}")


def test_postgres_restart_under_load(throwaway_postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    settings = make_settings(throwaway_postgres.url, state_dir=tmp_path)
    with running_api_server(settings) as server:
        load = Load(api=server.api)
        writers = [threading.Thread(target=load.writer, args=(n,)) for n in range(4)]
        for thread in writers:
            thread.start()
        time.sleep(1.5)
        throwaway_postgres.stop()
        stopped_at = time.monotonic()
        time.sleep(1.0)
        during = httpx.get(f"{server.api}/specs", headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        health = httpx.get(f"{server.api}/health", timeout=30).json()
        time.sleep(1.0)
        throwaway_postgres.start()
        restarted_at = time.monotonic()
        deadline = restarted_at + 30
        while time.monotonic() < deadline:
            with load.lock:
                recovered = sum(1 for at, code in load.statuses if at > restarted_at + 0.5 and code == 201)
            if recovered >= 20:
                break
            time.sleep(0.1)
        load.stop.set()
        for thread in writers:
            thread.join(timeout=60)

        assert load.unexpected == []
        assert during.status_code == 503
        assert during.json()["error"]["code"] == "database_unavailable"
        assert int(during.headers["retry-after"]) >= 1
        assert health["database"]["status"] == "down"
        codes = [code for _, code in load.statuses]
        assert set(codes) <= {201, 503}
        assert any(code == 503 for at, code in load.statuses if stopped_at <= at <= restarted_at)
        assert recovered >= 20, "the API did not recover after PostgreSQL came back"

        # Every acknowledged write survived, as seen through the API and in the database itself.
        with psycopg.connect(throwaway_postgres.url) as conn:
            stored = {row[0] for row in conn.execute("SELECT name FROM specifications")}
        missing = [name for name in load.acknowledged if name not in stored]
        assert missing == []
        total = httpx.get(f"{server.api}/specs", headers={"X-API-Key": ADMIN_KEY}, timeout=30).json()["total"]
        assert total >= len(load.acknowledged)
