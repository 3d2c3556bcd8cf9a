"""DAG utilities over ``needs`` mappings (task id -> ids it waits for).

A node named only inside someone's needs is treated as a root (no needs of its own). Everything
here is linear in nodes + edges and iterative, so a 20,000-task chain neither recurses nor slows down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from specs.errors import SpecError

Needs = Mapping[str, Sequence[str]]


class CycleError(SpecError):
    """The graph has a cycle; ``cycle`` is its path with the first node repeated at the end."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(f"dependency cycle: {' -> '.join(cycle)}")


def _nodes(needs: Needs) -> list[str]:
    seen: dict[str, None] = {}
    for node, upstream in needs.items():
        seen.setdefault(node)
        for dep in upstream:
            seen.setdefault(dep)
    return list(seen)


def _downstream(needs: Needs) -> dict[str, list[str]]:
    down: dict[str, list[str]] = {node: [] for node in _nodes(needs)}
    for node, upstream in needs.items():
        for dep in dict.fromkeys(upstream):
            down[dep].append(node)
    return down


def find_cycle(needs: Needs) -> list[str] | None:
    """One cycle as a path (``["a", "b", "a"]``), or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in _nodes(needs):
        if root in state:
            continue
        path: list[str] = [root]
        iterators = [iter(needs.get(root, ()))]
        state[root] = 1
        while iterators:
            dep = next(iterators[-1], None)
            if dep is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                iterators.append(iter(needs.get(dep, ())))
    return None


def strongly_connected_components(needs: Needs) -> list[list[str]]:
    """Tarjan's components (iterative); each cycle of the graph lies inside one component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in _nodes(needs):
        if root in index:
            continue
        work = [(root, iter(needs.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, deps = work[-1]
            dep = next(deps, None)
            if dep is not None:
                if dep not in index:
                    index[dep] = low[dep] = counter
                    counter += 1
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(needs.get(dep, ()))))
                elif dep in on_stack:
                    low[node] = min(low[node], index[dep])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def all_cycles(needs: Needs) -> list[list[str]]:
    """One cycle path per cyclic component (self-loops included), in a stable order."""
    position = {node: i for i, node in enumerate(_nodes(needs))}
    cycles = []
    for component in strongly_connected_components(needs):
        members = set(component)
        if len(component) == 1 and component[0] not in needs.get(component[0], ()):
            continue
        sub = {node: [d for d in needs.get(node, ()) if d in members] for node in component}
        cycle = find_cycle(sub)
        if cycle is not None:
            # Start the path at the node written first, so messages read in document order.
            ring = cycle[:-1]
            first = min(range(len(ring)), key=lambda i: position[ring[i]])
            ring = ring[first:] + ring[:first]
            cycles.append([*ring, ring[0]])
    return sorted(cycles, key=lambda c: position[c[0]])


def topological_order(needs: Needs) -> list[str]:
    """Nodes ordered so each comes after everything it needs; ties keep the mapping's order.

    Raises :class:`CycleError` when there is a cycle.
    """
    nodes = _nodes(needs)
    waiting = {node: len(set(needs.get(node, ()))) for node in nodes}
    down = _downstream(needs)
    ready = deque(node for node in nodes if waiting[node] == 0)
    order: list[str] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for child in down[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) != len(nodes):
        cycle = find_cycle(needs)
        raise CycleError(cycle or [])
    return order


def layers(needs: Needs) -> list[list[str]]:
    """Nodes grouped by depth: layer 0 has no needs, layer k needs something in layer k-1."""
    depth: dict[str, int] = {}
    for node in topological_order(needs):
        depth[node] = 1 + max((depth[d] for d in needs.get(node, ())), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node, level in depth.items():
        grouped[level].append(node)
    return grouped


def critical_path(needs: Needs, durations: Mapping[str, float]) -> tuple[list[str], float]:
    """The longest path by summed durations (missing durations count as 0) and its length."""
    finish: dict[str, float] = {}
    previous: dict[str, str | None] = {}
    for node in topological_order(needs):
        best: str | None = None
        for dep in needs.get(node, ()):
            if best is None or finish[dep] > finish[best]:
                best = dep
        start = finish[best] if best is not None else 0.0
        finish[node] = start + float(durations.get(node, 0.0))
        previous[node] = best
    if not finish:
        return [], 0.0
    end = max(finish, key=lambda n: finish[n])
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = previous[cursor]
    return path[::-1], finish[end]


def _reachable(edges: Mapping[str, Iterable[str]], node: str) -> set[str]:
    """Every node reached from ``node`` along ``edges`` (the node itself excluded)."""
    seen: set[str] = set()
    todo = list(edges.get(node, ()))
    while todo:
        nxt = todo.pop()
        if nxt not in seen:
            seen.add(nxt)
            todo.extend(edges.get(nxt, ()))
    seen.discard(node)
    return seen


def upstream_closure(needs: Needs, node: str) -> set[str]:
    """Every node that ``node`` depends on, directly or not (the node itself excluded)."""
    return _reachable(needs, node)


def downstream_closure(needs: Needs, node: str) -> set[str]:
    """Every node that depends on ``node``, directly or not."""
    return _reachable(_downstream(needs), node)


class Reachability:
    """Answers "is ``a`` upstream of ``b``?" many times without an O(n^2) closure table.

    Uses topological positions to prune: a node placed after ``a`` cannot lead back to ``a``.
    Build it only on an acyclic graph.
    """

    def __init__(self, needs: Needs):
        self._needs = needs
        self._position = {node: i for i, node in enumerate(topological_order(needs))}

    def __contains__(self, node: object) -> bool:
        return node in self._position

    def is_upstream(self, candidate: str, node: str) -> bool:
        """Whether ``candidate`` is in the upstream closure of ``node``."""
        target = self._position.get(candidate)
        if target is None or node not in self._position or target >= self._position[node]:
            return False
        direct = self._needs.get(node, ())
        if candidate in direct:
            return True
        seen: set[str] = set()
        todo = [d for d in direct if self._position.get(d, -1) > target]
        while todo:
            dep = todo.pop()
            if dep in seen:
                continue
            seen.add(dep)
            for up in self._needs.get(dep, ()):
                if up == candidate:
                    return True
                if self._position.get(up, -1) > target and up not in seen:
                    todo.append(up)
        return False
