"""Real InfluxDB 1.x and Prometheus servers for the monitoring tests (Debian's ``influxd``,
``prometheus``), each a child process on free ports of 127.0.0.1 with its data in a folder of its
own. ``scripts/test`` installs the packages (``ensure_influxdb``, ``ensure_prometheus``); without
them the tests skip locally and fail under ``CI=true`` (:func:`tests.support.services.service_missing`).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port
from tests.support.services import service_missing

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{home}/meta"
[data]
  dir = "{home}/data"
  wal-dir = "{home}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL when the server has not ended within 15 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}")


@dataclass
class InfluxDB:
    """An ``influxd`` (1.x) child process; :meth:`stop` and :meth:`start` keep its data and port."""

    home: Path
    port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxDB:
        binary = shutil.which("influxd")
        if binary is None:
            service_missing("influxd is not installed (Debian's influxdb; scripts/test installs it)")
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "influxdb.conf"
        config.write_text(_CONFIG.format(home=self.home, port=self.port, rpc_port=self.rpc_port))
        log = self.home / "influxd.log"
        # The child keeps its own copy of the log descriptor; ours is closed at once.
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [binary, "-config", str(config)], stdout=output, stderr=subprocess.STDOUT
            )
        _wait(f"{self.url}/ping", self.process, log, "influxd")
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def query(self, text: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; the series of the first statement (``epoch=ns`` times)."""
        params = {"q": text, "epoch": "ns", **({"db": database} if database else {})}
        response = httpx.post(f"{self.url}/query", params=params, timeout=10)
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def rows(self, text: str, database: str) -> list[dict[str, Any]]:
        """The rows of a SELECT as dicts (column -> value), across its series (tags included)."""
        found = []
        for series in self.query(text, database):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags") or {})
                found.append(row)
        return found


_PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
{jobs}
"""


@dataclass
class Prometheus:
    """A ``prometheus`` child process scraping the given targets every second."""

    home: Path
    targets: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            service_missing("prometheus is not installed (Debian's prometheus; scripts/test installs it)")
        self.home.mkdir(parents=True, exist_ok=True)
        jobs = "".join(
            f"  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n"
            f"      - targets: ['{target}']\n"
            for job, target in self.targets.items()
        )
        config = self.home / "prometheus.yml"
        config.write_text(_PROMETHEUS_CONFIG.format(jobs=jobs))
        log = self.home / "prometheus.log"
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _wait(f"{self.url}/-/ready", self.process, log, "prometheus")
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API: the result vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        """Each scrape job's health (``up``/``down``/``unknown``)."""
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        response.raise_for_status()
        return {
            target["labels"]["job"]: target["health"] for target in response.json()["data"]["activeTargets"]
        }
