"""The delivery counts of a host's executors, as files: written by each executor, summed for
``trinity status``. Free of Prefect imports, so the status command stays quick.

Each executor keeps its counts (:class:`DeliveryStatus`) in ``executor-<pid>.json`` under the folder
named by ``TRINITY_DELIVERY_STATUS_DIR`` (``trinity worker`` sets it to ``<state_dir>/delivery``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATUS_DIR_VARIABLE = "TRINITY_DELIVERY_STATUS_DIR"


@dataclass
class DeliveryStatus:
    """Counts of one executor (or, summed, of a worker): what waits, what came late, what was lost."""

    logs_waiting: int = 0
    logs_delivered_late: int = 0
    logs_dropped: int = 0
    events_dropped: int = 0


def delivery_status_dir(state_dir: str | Path) -> Path:
    """Where the executors of a worker using ``state_dir`` keep their counts."""
    return Path(os.environ.get(STATUS_DIR_VARIABLE) or Path(state_dir).resolve() / "delivery")


def read_delivery_status(folder: str | Path) -> DeliveryStatus:
    """The summed counts of the live executors that wrote under ``folder`` (zeros when none)."""
    total = DeliveryStatus()
    for path in sorted(Path(folder).glob("executor-*.json")):
        try:
            pid = int(path.stem.removeprefix("executor-"))
            os.kill(pid, 0)
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # gone, or being replaced
        for name in asdict(total):
            setattr(total, name, getattr(total, name) + int(data.get(name, 0)))
    return total
