"""What the analytics learn, and what they find with it: plain dataclasses.

Findings (in the report): :class:`FailureFamily`, :class:`MultivariateAnomaly`, :class:`Forecast`
and the :class:`Alert` s worth telling someone about.

Models (the learned state, stored as database rows between reports): :class:`KnownFamily` per
failure family, :class:`TaskModel` per workflow task (the isolation forest's training sample and
the task's robust baseline), :class:`SloState` per success metric (the last trend fit and when it
was last alerted on). :class:`LearnedModels` holds them all with a revision per model;
:meth:`LearnedModels.rows` and :meth:`LearnedModels.from_rows` turn them into rows and back.
Every finding names the model (kind, key, revision) it was judged with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

FAMILY = "failure_family"
TASK_BASELINE = "task_baseline"
SLO = "slo_forecast"
MODEL_KINDS = (FAMILY, TASK_BASELINE, SLO)


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """Which stored model a finding was made with."""

    kind: str
    key: str
    revision: int


@dataclasses.dataclass
class FailureFamily:
    """Failed task runs whose error messages say the same thing (see :mod:`analytics.families`)."""

    signature: str
    count: int
    example: str
    workflows: list[str]
    tasks: list[str]  # "workflow/task"
    first_seen: pd.Timestamp | None
    last_seen: pd.Timestamp | None
    flow_run_ids: list[str]  # most recent first, at most ``family_max_listed_runs``
    id: str
    exception_type: str | None
    flow_runs: int
    variants: int
    trend: str  # "rising", "falling", "steady" or "new"
    earlier: int  # failures in the first half of the window
    recent: int  # failures in the second half
    new: bool  # not known before this report
    centroid_terms: list[str]
    model: ModelRef


@dataclasses.dataclass
class FamilySection:
    families: list[FailureFamily]
    distance_threshold: float
    messages: int  # distinct normalised messages in the window
    clustered: int  # of those, clustered (the rest matched a known family or were over the cap)
    ungrouped_failures: int  # failures whose rare message was over the cap and near no family


@dataclasses.dataclass
class FeatureValue:
    """One feature of an anomalous task run against the task's robust baseline (its median)."""

    name: str
    value: float | None
    baseline: float | None
    robust_z: float | None
    ratio: float | None


@dataclasses.dataclass
class MultivariateAnomaly:
    """A task run the isolation forest isolates, with the features that set it apart."""

    workflow: str
    task: str
    flow_run_id: str
    score: float  # isolation-forest anomaly score, 0..1 (0.5 = ordinary, higher = more isolated)
    features: list[FeatureValue]  # the deviating ones, largest first
    task_run_name: str
    state: str
    start_time: pd.Timestamp | None
    model: ModelRef
    new: bool  # newer than every task run the model had seen before this report


@dataclasses.dataclass
class TaskCheck:
    """How many task runs of one task the forest looked at."""

    workflow: str
    task: str
    task_runs: int
    features: list[str]
    trained_on: int
    flagged: int


@dataclasses.dataclass
class MultivariateSection:
    anomalies: list[MultivariateAnomaly]
    checks: list[TaskCheck]
    min_score: float
    feature_z: float
    unavailable_features: list[str]


@dataclasses.dataclass
class Forecast:
    """When a success metric will be breached if its trend continues (None: not within the horizon)."""

    workflow: str
    metric: str
    target: float
    current: float | None  # the trend's value at the end of the window
    breach_expected_at: pd.Timestamp | None
    low: pd.Timestamp | None  # earliest plausible breach (upper band of the trend's scatter)
    high: pd.Timestamp | None  # latest plausible breach (lower band); None: beyond reach
    status: str  # "breached", "breach_expected", "no_breach", "insufficient_data"
    slope_per_day: float | None
    points: int
    bucket_seconds: float | None
    horizon_days: float
    method: str
    model: ModelRef


@dataclasses.dataclass
class Alert:
    """A finding worth telling someone about: one Prefect event."""

    event: str
    workflow: str
    key: str
    payload: dict[str, Any]


@dataclasses.dataclass
class KnownFamily:
    """A failure family as learnt: what its messages look like, when it was seen, where."""

    id: str
    signature: str
    exception_type: str | None
    exemplars: list[str]  # distinct normalised messages, most frequent first
    terms: list[str]  # the heaviest terms of its TF-IDF centroid
    first_seen: float | None  # epoch seconds
    last_seen: float | None
    workflows: list[str]
    tasks: list[str]


@dataclasses.dataclass
class TaskModel:
    """The multivariate model of one workflow task: a bounded, uniform sample of its recent task runs
    (the isolation forest's training data) and the robust baseline computed from it."""

    workflow: str
    task_id: str
    features: list[str]
    sample: list[list[float | None]]  # rows of feature values (natural units)
    keys: list[float]  # per sample row: its priority (uniform 0..1, smallest kept)
    times: list[float]  # per sample row: epoch seconds
    seen_until: float | None  # newest task run folded in
    median: dict[str, float]  # per feature, of log1p(value)
    mad: dict[str, float]


@dataclasses.dataclass
class SloState:
    """The last trend fit of one success metric, and when alerts on it were last raised."""

    workflow: str
    metric: str
    status: str
    slope_per_day: float | None
    intercept: float | None  # the trend's value at ``fitted_at``
    fitted_at: float | None  # epoch seconds
    scale: float | None  # robust scatter of the points around the trend
    alerted: dict[str, float]  # event name -> epoch seconds


def _key(*parts: str) -> str:
    return "/".join(parts)


@dataclasses.dataclass
class LearnedModels:
    """Every learned model, by key, with the revision each one was stored at."""

    families: dict[str, KnownFamily] = dataclasses.field(default_factory=dict)
    tasks: dict[str, TaskModel] = dataclasses.field(default_factory=dict)
    slos: dict[str, SloState] = dataclasses.field(default_factory=dict)
    revisions: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    changed: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    forgotten: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    @staticmethod
    def task_key(workflow: str, task_id: str) -> str:
        return _key(workflow, task_id)

    @staticmethod
    def slo_key(workflow: str, metric: str) -> str:
        return _key(workflow, metric)

    def copy(self) -> LearnedModels:
        """A copy whose dictionaries can be changed without touching this one."""
        return LearnedModels(
            families=dict(self.families),
            tasks=dict(self.tasks),
            slos=dict(self.slos),
            revisions=dict(self.revisions),
        )

    def _store(self, kind: str) -> dict[str, Any]:
        stores: dict[str, dict[str, Any]] = {FAMILY: self.families, TASK_BASELINE: self.tasks, SLO: self.slos}
        return stores[kind]

    def ref(self, kind: str, key: str) -> ModelRef:
        """The reference findings carry: the model's current revision (0: never stored)."""
        return ModelRef(kind, key, self.revisions.get((kind, key), 0))

    def update(self, kind: str, key: str, model: Any) -> ModelRef:
        """Store a new state of a model (once per report: a second update keeps the revision)."""
        self._store(kind)[key] = model
        self.forgotten.discard((kind, key))
        if (kind, key) not in self.changed:
            self.changed.add((kind, key))
            self.revisions[(kind, key)] = self.revisions.get((kind, key), 0) + 1
        return self.ref(kind, key)

    def forget(self, kind: str, key: str) -> None:
        """Drop a model (its stored row goes too)."""
        self._store(kind).pop(key, None)
        self.changed.discard((kind, key))
        self.forgotten.add((kind, key))

    def rows(self, *, changed_only: bool = True) -> list[dict[str, Any]]:
        """One row per (changed) model: kind, key, workflow, task_id, revision and state."""
        out: list[dict[str, Any]] = []
        for kind, store in ((FAMILY, self.families), (TASK_BASELINE, self.tasks), (SLO, self.slos)):
            for key, model in sorted(store.items()):
                if changed_only and (kind, key) not in self.changed:
                    continue
                out.append(
                    {
                        "kind": kind,
                        "key": key,
                        "workflow": getattr(model, "workflow", None),
                        "task_id": getattr(model, "task_id", None),
                        "revision": self.revisions.get((kind, key), 1),
                        "state": dataclasses.asdict(model),  # type: ignore[call-overload]
                    }
                )
        return out

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> LearnedModels:
        """Models from stored rows (``kind``, ``key``, ``revision``, ``state``); rows of unknown
        kinds or with states that no longer fit are skipped (they are relearnt)."""
        models = cls()
        types: dict[str, Any] = {FAMILY: KnownFamily, TASK_BASELINE: TaskModel, SLO: SloState}
        for row in rows:
            kind, key, state = str(row["kind"]), str(row["key"]), row["state"]
            if kind not in types or not isinstance(state, Mapping):
                continue
            try:
                models._store(kind)[key] = types[kind](**state)
            except TypeError:
                continue
            models.revisions[(kind, key)] = int(row["revision"])
        return models
