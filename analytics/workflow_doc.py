"""Read what the analysis needs from a workflow document dict (the DAG and per-task settings).

The document is read leniently -- an older or partly invalid document still yields its DAG -- since
history outlives the current document. Settings resolve exactly as the executor's do, through
:mod:`specs.task_settings`: the task's own value, else ``defaults``, else the built-in default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specs.dag import CycleError, topological_order
from specs.models import DEFAULT_MAX_PARALLEL_TASKS
from specs.task_settings import effective_settings, policy_from_mapping

__all__ = ["DEFAULT_MAX_PARALLEL_TASKS", "CycleError", "DocInfo", "TaskSettings", "read_document"]


@dataclass(frozen=True)
class TaskSettings:
    """Effective settings of one task."""

    task_id: str
    uses: str | None
    needs: tuple[str, ...]
    retries: int
    retry_delay_seconds: float | list[float] | None
    retry_backoff: Mapping[str, Any] | None
    timeout_seconds: float | None
    cache_enabled: bool
    fan_out: bool
    conditional: bool


@dataclass(frozen=True)
class DocInfo:
    """The DAG and settings of one workflow document."""

    name: str
    tasks: Mapping[str, TaskSettings]
    order: tuple[str, ...]
    max_parallel_tasks: int
    has_schedule: bool

    @property
    def needs(self) -> dict[str, list[str]]:
        """Upstream ids per task id (only ids that exist in the document)."""
        return {tid: list(ts.needs) for tid, ts in self.tasks.items()}


def read_document(document: Mapping[str, Any]) -> DocInfo:
    """The DAG (topologically ordered) and effective task settings of a workflow document.

    Raises :class:`specs.dag.CycleError` when the ``needs`` form a cycle (no critical path exists).
    """
    raw_tasks = [t for t in document.get("tasks") or [] if isinstance(t, Mapping) and "id" in t]
    defaults = policy_from_mapping(document.get("defaults"))
    ids = [str(t["id"]) for t in raw_tasks]
    known = set(ids)
    settings: dict[str, TaskSettings] = {}
    for task in raw_tasks:
        tid = str(task["id"])
        needs = tuple(str(n) for n in task.get("needs") or [] if str(n) in known and str(n) != tid)
        effective = effective_settings(policy_from_mapping(task), defaults)
        backoff = effective.retry_backoff
        cache = task.get("cache")
        settings[tid] = TaskSettings(
            task_id=tid,
            uses=str(task["uses"]) if task.get("uses") is not None else None,
            needs=needs,
            retries=effective.retries,
            retry_delay_seconds=effective.retry_delay_seconds,
            retry_backoff=backoff.model_dump(exclude_unset=True) if backoff is not None else None,
            timeout_seconds=effective.timeout_seconds,
            cache_enabled=isinstance(cache, Mapping) and bool(cache.get("enabled", True)),
            fan_out=task.get("for_each") is not None,
            conditional=task.get("if") is not None,
        )
    order = topological_order({tid: list(ts.needs) for tid, ts in settings.items()})
    concurrency = document.get("concurrency") or {}
    limit = concurrency.get("max_parallel_tasks") if isinstance(concurrency, Mapping) else None
    return DocInfo(
        name=str(document.get("name", "")),
        tasks=settings,
        order=tuple(order),
        max_parallel_tasks=int(limit) if isinstance(limit, int) else DEFAULT_MAX_PARALLEL_TASKS,
        has_schedule=bool(document.get("schedule")),
    )
