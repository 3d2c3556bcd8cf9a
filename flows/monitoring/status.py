"""Sink figures where ``trinity status`` reads them: one small JSON file per process feeding sinks.

Each process with a :class:`~flows.monitoring.live.LiveSender` writes ``sinks-<pid>.json`` under
``<state_dir>/sinks`` (at most once a second, and when it exits); :func:`read_sink_status` adds up
the files of processes still alive, per sink, and keeps the latest error.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from trinity.core.config import load_settings
from trinity.core.settings import ConfigError

_COUNTS = ("backlog", "dropped", "written", "failures")


def status_folder(state_dir: str | Path | None = None) -> Path | None:
    """``<state_dir>/sinks`` of these settings (None when they cannot be read)."""
    if state_dir is not None:
        return Path(state_dir) / "sinks"
    try:
        return Path(load_settings().state_dir).resolve() / "sinks"
    except ConfigError:
        return None


def publish(folder: Path, statuses: list[dict[str, Any]]) -> None:
    """Write this process's figures (atomically; a failure to write is not an error)."""
    path = folder / f"sinks-{os.getpid()}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"updated": time.time(), "sinks": statuses}))
        temporary.replace(path)
    except OSError:
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_sink_status(folder: Path) -> dict[str, dict[str, Any]]:
    """Per sink: summed backlog, dropped, written and failures of the live processes, the latest
    error and whether every process reaches it now."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("sinks-*.json")):
        try:
            pid = int(path.stem.removeprefix("sinks-"))
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        alive = _alive(pid)
        for sink in data.get("sinks", []):
            total = found.setdefault(
                sink["sink"],
                {**dict.fromkeys(_COUNTS, 0), "last_error": None, "last_error_at": None, "healthy": True},
            )
            for key in _COUNTS:
                if key != "backlog" or alive:
                    total[key] += int(sink.get(key) or 0)
            total["healthy"] = total["healthy"] and (bool(sink.get("healthy")) or not alive)
            at = sink.get("last_error_at")
            if at and (total["last_error_at"] is None or at > total["last_error_at"]):
                total["last_error"], total["last_error_at"] = sink.get("last_error"), at
    return found


def describe(figures: dict[str, dict[str, Any]]) -> list[str]:
    """One line per sink, as ``trinity status`` prints them."""
    lines = []
    for sink, total in sorted(figures.items()):
        state = "ok" if total["healthy"] else "failing"
        line = (
            f"  sink {sink:13} {state:8} backlog {total['backlog']}  dropped {total['dropped']}  "
            f"written {total['written']}"
        )
        if total["last_error"]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(total["last_error_at"]))
            line += f"  last error {when}: {total['last_error']}"
        lines.append(line)
    return lines
