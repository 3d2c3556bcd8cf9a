"""Critical paths over the DAG, slack and what-if gains."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.critical_path import analyse_bottlenecks, build_matrix, critical_mask, longest_path
from analytics.frames import prepare_frames
from analytics.workflow_doc import read_document
from specs import dag
from tests.analytics.factories import frames, run_row, task, task_row, workflow_doc

# a -> b -> d and a -> c -> d
PARENTS = [[], [0], [0], [1, 2]]


def test_longest_path_slack_and_critical_nodes() -> None:
    d = np.array([[10.0, 30.0, 5.0, 10.0]])
    length, slack, critical = critical_mask(d, PARENTS, np.ones_like(d, dtype=bool))
    assert length.tolist() == [50.0]
    assert slack[0].tolist() == [0.0, 0.0, 25.0, 0.0]
    assert critical[0].tolist() == [True, True, False, True]


def test_what_if_recomputes_the_longest_path() -> None:
    d = np.array([[10.0, 30.0, 5.0, 10.0]])
    halved = d.copy()
    halved[0, 1] = 15.0
    assert longest_path(halved, PARENTS).max() == 35.0
    zeroed = d.copy()
    zeroed[0, 1] = 0.0
    # Once b is free the other branch (a -> c -> d = 25 s) takes over.
    assert longest_path(zeroed, PARENTS).max() == 25.0


def _diamond_history() -> tuple[object, object, object]:
    doc = workflow_doc([task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")])
    runs, tasks = [], []
    # Run 1: b is the long branch; run 2: c is; run 3: b again, with c fanned out over two items.
    for i, (b_len, c_len) in enumerate([(30, 5), (5, 40), (30, 5)]):
        rid, base = f"r{i}", i * 1000.0
        runs.append(run_row(rid, start=base, end=base + 10 + max(b_len, c_len) + 10))
        tasks.append(task_row(rid, "a", base, base + 10))
        tasks.append(task_row(rid, "b", base + 10, base + 10 + b_len))
        if i == 2:
            tasks.append(task_row(rid, "c", base + 10, base + 13, name="c[0]"))
            tasks.append(task_row(rid, "c", base + 11, base + 15, name="c[1]"))
        else:
            tasks.append(task_row(rid, "c", base + 10, base + 10 + c_len))
        end_d = base + 10 + max(b_len, c_len)
        tasks.append(task_row(rid, "d", end_d, end_d + 10))
    run_frame, task_frame = frames(runs, tasks)
    prepared = prepare_frames(run_frame, task_frame, window_start=None, window_end=None)
    return prepared, read_document(doc), run_frame


def test_bottlenecks_from_task_timestamps() -> None:
    prepared, doc, _ = _diamond_history()
    matrix = build_matrix(prepared.tasks, prepared.runs, doc, max_cells=10_000, seed=0)
    assert matrix is not None
    # Fan-out items make one node spanning from the first start to the last end.
    assert matrix.durations()[2, 2] == pytest.approx(5.0)
    section = analyse_bottlenecks(
        "wf",
        matrix,
        completed=np.ones(3, dtype=bool),
        run_durations=prepared.runs["duration"].to_numpy(),
        flow_run_ids=prepared.runs["flow_run_id"].tolist(),
        runs_completed=3,
    )
    by_id = {t.task_id: t for t in section.tasks}
    assert by_id["b"].critical_share == pytest.approx(2 / 3)
    assert by_id["c"].critical_share == pytest.approx(1 / 3)
    assert by_id["a"].critical_share == 1.0
    # b: halving saves 15 s in runs 1 and 3 and nothing in run 2 (c dominates there).
    assert by_id["b"].reduction_if_halved_seconds == pytest.approx(10.0)
    assert by_id["b"].reduction_if_zero_seconds == pytest.approx((25 + 0 + 25) / 3)
    assert by_id["c"].slack_mean_seconds == pytest.approx((25 + 0 + 25) / 3)
    assert section.most_common_path == ["a", "b", "d"]
    assert section.most_common_path_share == pytest.approx(2 / 3)
    assert section.critical_path_mean_seconds == pytest.approx((50 + 60 + 50) / 3)
    assert section.overhead_mean_seconds == pytest.approx(0.0)
    assert section.example_run_id in {"r0", "r2"}
    assert {bar.task_id for bar in section.example_bars if bar.critical} == {"a", "b", "d"}


def test_large_histories_are_sampled() -> None:
    prepared, doc, _ = _diamond_history()
    matrix = build_matrix(prepared.tasks, prepared.runs, doc, max_cells=8, seed=0)
    assert matrix is not None
    assert matrix.sampled
    assert matrix.run_codes.size == 2


def test_ready_time_is_the_last_upstream_end() -> None:
    prepared, doc, _ = _diamond_history()
    matrix = build_matrix(prepared.tasks, prepared.runs, doc, max_cells=10_000, seed=0)
    assert matrix is not None
    ready = matrix.ready()
    assert ready[0].tolist() == [0.0, 10.0, 10.0, 40.0]
    assert ready[1].tolist() == [0.0, 10.0, 10.0, 50.0]


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_longest_path_agrees_with_specs_dag(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 12
    names = [f"t{i}" for i in range(n)]
    needs = {names[i]: [names[j] for j in range(i) if rng.random() < 0.3] for i in range(n)}
    parents = [[int(p[1:]) for p in needs[name]] for name in names]
    durations = rng.uniform(1, 100, size=(20, n))
    lengths, _, critical = critical_mask(durations, parents, np.ones_like(durations, dtype=bool))
    for row in range(durations.shape[0]):
        path, length = dag.critical_path(needs, dict(zip(names, durations[row], strict=True)))
        assert lengths[row] == pytest.approx(length)
        # Random float durations make the longest path unique.
        assert {names[i] for i in np.flatnonzero(critical[row])} == set(path)
