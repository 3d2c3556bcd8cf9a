"""PostgreSQL going away under load: 503 with Retry-After, recovery on its own, no lost write.

Runs a throwaway PostgreSQL server (initdb + pg_ctl in a temporary folder, as the postgres user
when the tests run as root); the machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.api.support import ADMIN_KEY, make_settings, running_api_server, spec_document
from tests.support.postgres import ThrowawayPostgres, throwaway_postgres

__all__ = ["throwaway_postgres"]  # the fixture


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
