"""DAG utilities: order, cycles, critical path, closures; linear on long chains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specs.dag import (
    CycleError,
    Reachability,
    all_cycles,
    critical_path,
    downstream_closure,
    find_cycle,
    layers,
    topological_order,
    upstream_closure,
)

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_topological_order_keeps_mapping_order_for_ties() -> None:
    assert topological_order(DIAMOND) == ["a", "b", "c", "d"]
    assert topological_order({"x": ["y"]}) == ["y", "x"]


def test_topological_order_raises_with_the_cycle() -> None:
    with pytest.raises(CycleError) as caught:
        topological_order({"a": ["b"], "b": ["a"], "c": []})
    assert caught.value.cycle in (["a", "b", "a"], ["b", "a", "b"])


def test_find_cycle() -> None:
    assert find_cycle(DIAMOND) is None
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    cycle = find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]})
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}


def test_all_cycles_one_per_component_in_document_order() -> None:
    needs = {"a": ["c"], "b": ["a"], "c": ["b"], "x": ["x"], "y": ["z"], "z": ["y"], "ok": []}
    assert all_cycles(needs) == [["a", "c", "b", "a"], ["x", "x"], ["y", "z", "y"]]


def test_critical_path() -> None:
    path, total = critical_path(DIAMOND, {"a": 1, "b": 5, "c": 2, "d": 1})
    assert (path, total) == (["a", "b", "d"], 7.0)
    assert critical_path({}, {}) == ([], 0.0)
    assert critical_path({"a": []}, {}) == (["a"], 0.0)


def test_closures_and_layers() -> None:
    assert upstream_closure(DIAMOND, "d") == {"a", "b", "c"}
    assert upstream_closure(DIAMOND, "a") == set()
    assert downstream_closure(DIAMOND, "b") == {"d"}
    assert layers(DIAMOND) == [["a"], ["b", "c"], ["d"]]


def test_long_chain_does_not_recurse() -> None:
    chain = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(50_000)}
    assert topological_order(chain)[-1] == "t49999"
    assert find_cycle(chain) is None
    assert Reachability(chain).is_upstream("t0", "t49999")
    chain["t0"] = ["t49999"]
    assert len(all_cycles(chain)[0]) == 50_001


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    size = draw(st.integers(min_value=1, max_value=25))
    names = [f"n{i}" for i in range(size)]
    return {
        name: draw(st.lists(st.sampled_from(names[:i]), max_size=3, unique=True)) if i else []
        for i, name in enumerate(names)
    }


@given(dags())
def test_order_respects_needs(needs: dict[str, list[str]]) -> None:
    position = {n: i for i, n in enumerate(topological_order(needs))}
    assert all(position[d] < position[n] for n, deps in needs.items() for d in deps)


@given(dags(), st.data())
def test_reachability_agrees_with_closure(needs: dict[str, list[str]], data: st.DataObject) -> None:
    reach = Reachability(needs)
    node = data.draw(st.sampled_from(sorted(needs)))
    closure = upstream_closure(needs, node)
    assert {c for c in needs if reach.is_upstream(c, node)} == closure
