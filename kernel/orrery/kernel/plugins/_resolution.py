"""Dependency resolution: missing, incompatible, failed and cyclic ``requires``, and start order."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

from orrery.kernel.errors import DependencyError
from packaging.specifiers import SpecifierSet
from packaging.version import Version

__all__ = ["Declared", "Resolution", "resolve"]


@dataclass(frozen=True)
class Declared:
    """What resolution needs to know of one plugin."""

    version: str
    requires: Mapping[str, SpecifierSet] = field(default_factory=dict)
    optional: Mapping[str, SpecifierSet] = field(default_factory=dict)


@dataclass
class Resolution:
    """Outcome of `resolve`: a start order for the good plugins, reasons for the rest."""

    order: list[str]
    failures: dict[str, DependencyError]
    #: Effective dependencies of each ordered plugin (requires, plus optional ones present).
    dependencies: dict[str, tuple[str, ...]]
    #: Start waves: every plugin of a wave depends only on plugins of earlier waves.
    waves: list[list[str]]

    def dependents(self, name: str) -> list[str]:
        """Ordered plugins that depend on ``name``, directly or transitively, in start order."""
        hit = {name}
        out = []
        for plugin in self.order:
            if any(dep in hit for dep in self.dependencies.get(plugin, ())):
                hit.add(plugin)
                out.append(plugin)
        return out


def _compatible(spec: SpecifierSet, version: str) -> bool:
    return spec.contains(Version(version), prereleases=True)


def _describe(dep: str, spec: SpecifierSet) -> str:
    return f"{dep}{spec}" if str(spec) else dep


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep chains do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_path(start: str, members: set[str], graph: Mapping[str, list[str]]) -> list[str]:
    """A path start → ... → start inside one strongly connected component."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in graph[node]:
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return [start, start]


def resolve(plugins: Mapping[str, Declared], broken: Mapping[str, str] | None = None) -> Resolution:
    """Check every plugin's ``requires`` and order the plugins that can start.

    ``broken`` names plugins that exist but cannot start (bad config, failed import),
    with the reason; plugins requiring them fail with that reason in their chain.
    """
    broken = broken or {}
    failures: dict[str, DependencyError] = {
        name: DependencyError(reason, plugin=name, chain=(name,)) for name, reason in broken.items()
    }
    for name in sorted(plugins):
        if name in failures:
            continue
        for dep, spec in sorted(plugins[name].requires.items()):
            if dep in broken:
                continue  # reported with its reason by the propagation below
            if dep not in plugins:
                failures[name] = DependencyError(
                    f"plugin {name!r} requires {_describe(dep, spec)!r}, which is not "
                    f"installed; install it (orrery plugins install ...) or add it to a "
                    f"plugin folder",
                    plugin=name,
                    chain=(name, dep),
                )
                break
            if not _compatible(spec, plugins[dep].version):
                failures[name] = DependencyError(
                    f"plugin {name!r} requires {_describe(dep, spec)!r}, but {dep!r} is "
                    f"version {plugins[dep].version}; install a matching version or relax "
                    f"the specifier",
                    plugin=name,
                    chain=(name, dep),
                )
                break

    graph = {n: sorted(d for d in plugins[n].requires if d in plugins) for n in plugins}
    for component in _strongly_connected(graph):
        members = set(component)
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        for name in component:
            # Each member's chain starts at itself, so its message reads from its view.
            path = _cycle_path(name, members, graph)
            failures.setdefault(
                name,
                DependencyError(
                    f"plugin {name!r} is in a dependency cycle: {' → '.join(path)}; break "
                    f"the cycle by moving one of these requires to optional",
                    plugin=name,
                    chain=tuple(path),
                ),
            )

    # A plugin that requires a failed one fails too; repeat until nothing changes.
    changed = True
    while changed:
        changed = False
        for name in sorted(plugins):
            if name in failures:
                continue
            for dep in sorted(plugins[name].requires):
                cause = failures.get(dep)
                if cause is None:
                    continue
                chain = (name, *cause.chain)
                failures[name] = DependencyError(
                    f"plugin {name!r} requires {dep!r}, which cannot start "
                    f"({' → '.join(chain)}): {cause}",
                    plugin=name,
                    chain=chain,
                )
                changed = True
                break

    good = [n for n in plugins if n not in failures]
    deps: dict[str, set[str]] = {n: set(plugins[n].requires) for n in good}
    optional_edges = sorted(
        (n, dep)
        for n in good
        for dep, spec in plugins[n].optional.items()
        if dep in plugins and dep not in failures and _compatible(spec, plugins[dep].version)
    )
    for name, dep in optional_edges:
        # An optional edge that would close a cycle is dropped: optional never blocks.
        if not _reaches(dep, name, deps):
            deps[name].add(dep)

    order, waves = _topological(good, deps)
    dependencies = {n: tuple(sorted(deps[n])) for n in order}
    return Resolution(order=order, failures=failures, dependencies=dependencies, waves=waves)


def _reaches(source: str, target: str, deps: Mapping[str, set[str]]) -> bool:
    """Whether ``source`` depends on ``target`` (directly or not)."""
    seen = {source}
    todo = [source]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        for dep in deps.get(node, ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


def _topological(
    nodes: list[str], deps: Mapping[str, set[str]]
) -> tuple[list[str], list[list[str]]]:
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    remaining = {n: len(deps[n]) for n in nodes}
    for n in nodes:
        for d in deps[n]:
            dependents[d].append(n)
    level = {n: 0 for n in nodes}
    ready = [n for n in nodes if remaining[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in dependents[node]:
            level[child] = max(level[child], level[node] + 1)
            remaining[child] -= 1
            if remaining[child] == 0:
                heapq.heappush(ready, child)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for n in order:
        waves[level[n]].append(n)
    return order, waves
