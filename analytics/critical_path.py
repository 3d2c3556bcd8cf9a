"""Critical paths of runs, from the workflow's DAG (``needs``) and the task timestamps.

Each run becomes one row of a (runs x tasks) matrix: a task's duration in a run is the span from
its first item's start to its last item's end. The longest path through the DAG is computed for
all runs at once, one numpy operation per DAG node, so a workflow with 100,000 runs costs about as
many vector operations as it has tasks. Slack is ``longest path - longest path through the task``;
the gain of making a task faster is found by recomputing the longest path with that task's
duration halved or zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.report_model import GanttBar, TaskBottleneck, WorkflowBottlenecks
from analytics.workflow_doc import DocInfo

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class RunMatrix:
    """Per-run, per-task start/end (seconds after the run's start) of one workflow."""

    nodes: list[str]
    parents: list[list[int]]
    run_codes: IntArray
    start: FloatMatrix
    end: FloatMatrix
    run_start: npt.NDArray[np.float64]
    sampled: bool

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        return np.isfinite(self.start) & np.isfinite(self.end)

    def durations(self) -> FloatMatrix:
        """Task durations per run, 0 where the task did not run."""
        return np.where(self.present, np.maximum(self.end - self.start, 0.0), 0.0)

    def ready(self) -> FloatMatrix:
        """When each task became ready: its last upstream's end (0 = run start for roots)."""
        out = np.zeros_like(self.start)
        ends = np.where(np.isfinite(self.end), self.end, 0.0)
        for i, ups in enumerate(self.parents):
            if ups:
                out[:, i] = np.maximum(ends[:, ups].max(axis=1), 0.0)
        return out


def _node_order(doc: DocInfo | None, task_ids: list[str]) -> tuple[list[str], list[list[int]]]:
    order = list(doc.order) if doc is not None else []
    extra = sorted(set(task_ids) - set(order))
    nodes = order + extra
    index = {n: i for i, n in enumerate(nodes)}
    parents = [[index[p] for p in doc.tasks[n].needs] if doc and n in doc.tasks else [] for n in nodes]
    return nodes, parents


def build_matrix(
    tasks: pd.DataFrame,
    runs: pd.DataFrame,
    doc: DocInfo | None,
    *,
    max_cells: int,
    seed: int,
) -> RunMatrix | None:
    """The run matrix of one workflow's ``tasks`` and ``runs`` (prepared frames, one workflow).

    When ``runs x tasks`` exceeds ``max_cells`` an even random sample of runs is kept.
    """
    timed = tasks[np.isfinite(tasks["t_start"].to_numpy()) & np.isfinite(tasks["t_end"].to_numpy())]
    if timed.empty:
        return None
    nodes, parents = _node_order(doc, sorted(timed["task_id"].unique().tolist()))
    run_codes = np.sort(timed["run_code"].unique()).astype(np.int64)
    sampled = run_codes.size * len(nodes) > max_cells
    if sampled:
        keep = max(1, max_cells // len(nodes))
        rng = np.random.default_rng(seed)
        run_codes = np.sort(rng.choice(run_codes, size=keep, replace=False))
        timed = timed[np.isin(timed["run_code"].to_numpy(), run_codes)]
    node_index = {n: i for i, n in enumerate(nodes)}
    cols = timed["task_id"].map(node_index).to_numpy(dtype=np.int64)
    rows = np.searchsorted(run_codes, timed["run_code"].to_numpy())
    grouped = (
        pd.DataFrame({"r": rows, "c": cols, "s": timed["t_start"].to_numpy(), "e": timed["t_end"].to_numpy()})
        .groupby(["r", "c"], sort=False)
        .agg(s=("s", "min"), e=("e", "max"))
    )
    r = grouped.index.get_level_values(0).to_numpy()
    c = grouped.index.get_level_values(1).to_numpy()
    start = np.full((run_codes.size, len(nodes)), np.nan)
    end = np.full_like(start, np.nan)
    start[r, c] = grouped["s"].to_numpy()
    end[r, c] = grouped["e"].to_numpy()
    run_t = runs.set_index("run_code")["t_start"].reindex(run_codes).to_numpy(dtype=np.float64)
    first = np.nanmin(start, axis=1)
    run_start = np.where(np.isfinite(run_t) & (run_t <= first), run_t, first)
    return RunMatrix(
        nodes, parents, run_codes, start - run_start[:, None], end - run_start[:, None], run_start, sampled
    )


def longest_path(durations: FloatMatrix, parents: list[list[int]]) -> FloatMatrix:
    """Earliest finish of every node per run (rows), nodes in topological order."""
    finish = np.empty_like(durations)
    for i, ups in enumerate(parents):
        base = finish[:, ups].max(axis=1) if ups else 0.0
        finish[:, i] = durations[:, i] + np.maximum(base, 0.0)
    return finish


def longest_tail(durations: FloatMatrix, parents: list[list[int]]) -> FloatMatrix:
    """Longest path strictly after each node, to the end of the run."""
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ups in enumerate(parents):
        for p in ups:
            children[p].append(i)
    tail = np.zeros_like(durations)
    for i in range(n - 1, -1, -1):
        kids = children[i]
        if kids:
            tail[:, i] = (durations[:, kids] + tail[:, kids]).max(axis=1)
    return tail


def critical_mask(
    durations: FloatMatrix, parents: list[list[int]], present: npt.NDArray[np.bool_]
) -> tuple[FloatMatrix, FloatMatrix, npt.NDArray[np.bool_]]:
    """(longest path per run, slack per node, on-a-critical-path mask)."""
    finish = longest_path(durations, parents)
    length = finish.max(axis=1)
    slack = length[:, None] - (finish + longest_tail(durations, parents))
    tol = 1e-6 * np.maximum(length, 1.0)
    return length, slack, present & (slack <= tol[:, None])


def _path_walk(
    finish: FloatMatrix, parents: list[list[int]], present: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """One critical path per run, walked back from the last-finishing node."""
    n_runs, n_nodes = finish.shape
    best_parent = np.full((n_runs, n_nodes), -1, dtype=np.int64)
    for i, ups in enumerate(parents):
        if ups:
            best_parent[:, i] = np.asarray(ups)[finish[:, ups].argmax(axis=1)]
    rows = np.arange(n_runs)
    on_path = np.zeros((n_runs, n_nodes), dtype=bool)
    cur = finish.argmax(axis=1)
    for _ in range(n_nodes):
        alive = cur >= 0
        if not alive.any():
            break
        on_path[rows[alive], cur[alive]] = True
        cur = np.where(alive, best_parent[rows, np.maximum(cur, 0)], -1)
    return on_path & present


def analyse_bottlenecks(
    workflow: str,
    matrix: RunMatrix,
    *,
    completed: npt.NDArray[np.bool_],
    run_durations: npt.NDArray[np.float64],
    flow_run_ids: list[str],
    runs_completed: int,
) -> WorkflowBottlenecks:
    """Critical-path statistics over the completed runs of ``matrix``.

    ``completed``, ``run_durations`` and ``flow_run_ids`` are aligned with the matrix rows;
    ``runs_completed`` is the number of completed runs before any sampling.
    """
    present = matrix.present[completed]
    if present.shape[0] == 0:
        return WorkflowBottlenecks(
            workflow,
            0,
            runs_completed,
            matrix.sampled,
            None,
            None,
            None,
            [],
            None,
            [],
            None,
            [],
            note="no completed run with task timestamps in the window",
        )
    d = matrix.durations()[completed]
    length, slack, critical = critical_mask(d, matrix.parents, present)
    finish = longest_path(d, matrix.parents)
    on_path = _path_walk(finish, matrix.parents, present)
    paths, counts = np.unique(on_path, axis=0, return_counts=True)
    top = int(counts.argmax())
    most_common = [matrix.nodes[i] for i in np.flatnonzero(paths[top])]
    mean_len = float(length.mean())

    tasks: list[TaskBottleneck] = []
    for j, node in enumerate(matrix.nodes):
        ran = present[:, j]
        if not ran.any():
            continue
        crit = critical[:, j]
        reductions = [0.0, 0.0]
        if crit.any():
            for k, factor in enumerate((0.5, 0.0)):
                changed = d.copy()
                changed[:, j] *= factor
                reductions[k] = float(
                    (length - longest_path(changed, matrix.parents).max(axis=1))[ran].mean()
                )
        share = float((d[crit, j] / np.maximum(length[crit], 1e-9)).mean()) if crit.any() else None
        tasks.append(
            TaskBottleneck(
                task_id=node,
                runs=int(ran.sum()),
                critical_share=float(crit[ran].mean()),
                duration_mean_seconds=float(d[ran, j].mean()),
                slack_mean_seconds=float(slack[ran, j].mean()),
                share_of_critical_path=share,
                reduction_if_halved_seconds=reductions[0],
                reduction_if_zero_seconds=reductions[1],
            )
        )
    tasks.sort(key=lambda t: (-t.reduction_if_zero_seconds, -t.critical_share, t.task_id))

    # The example run is the one whose critical path is closest to the median: a typical run.
    example = int(np.argmin(np.abs(length - np.median(length))))
    rows = np.flatnonzero(completed)
    bars = [
        GanttBar(
            node,
            float(matrix.start[rows[example], j]),
            float(matrix.end[rows[example], j]),
            bool(critical[example, j]),
        )
        for j, node in enumerate(matrix.nodes)
        if present[example, j]
    ]
    durations = run_durations[completed]
    finite = durations[np.isfinite(durations)]
    run_mean = float(finite.mean()) if finite.size else None
    return WorkflowBottlenecks(
        workflow=workflow,
        runs_analysed=int(present.shape[0]),
        runs_completed=runs_completed,
        sampled=matrix.sampled,
        critical_path_mean_seconds=mean_len,
        run_duration_mean_seconds=run_mean,
        overhead_mean_seconds=None if run_mean is None else run_mean - mean_len,
        most_common_path=most_common,
        most_common_path_share=float(counts[top] / counts.sum()),
        tasks=tasks,
        example_run_id=flow_run_ids[int(rows[example])],
        example_bars=sorted(bars, key=lambda b: (b.start_offset_seconds, b.task_id)),
    )
