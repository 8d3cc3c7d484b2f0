"""Where a task may run: node selection, affinity, anti-affinity, mutual exclusion,
group quotas and node capacity.

The view is built from the replicated task states, so every node sees the running
tasks of all nodes. A claim is only appended to the journal by a node that has read
every earlier event, so quota and exclusion checks hold across the cluster.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from ._model import Extra, Task

__all__ = ["Blocked", "ClusterView", "node_of"]


def node_of(owner: str) -> str:
    """The node part of an owner ``node/session``."""
    return owner.rsplit("/", 1)[0]


class Blocked(str):
    """Why a task cannot start here: the wake-up key it waits on."""

    __slots__ = ()


#: Never satisfiable on this node (another node may run it).
ELSEWHERE = Blocked("elsewhere")


class ClusterView:
    """Labels and resources held by running tasks, per node and per quota group."""

    def __init__(
        self,
        node: str,
        node_labels: Iterable[str] = (),
        capacity: Mapping[str, float] | None = None,
        quotas: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.node = node
        self.node_labels = frozenset({node, f"node:{node}", *node_labels})
        self.capacity = dict(capacity or {})
        self.quotas = {group: dict(limits) for group, limits in (quotas or {}).items()}
        self._labels_by_node: dict[str, Counter[str]] = {}
        self._labels: Counter[str] = Counter()
        self._node_use: defaultdict[str, float] = defaultdict(float)
        self._group_use: dict[str, defaultdict[str, float]] = {}

    # -- bookkeeping, called when a task starts and stops running (any node) --

    def started(self, task: Task) -> None:
        if task.owner is not None:
            self._account(task, node_of(task.owner), 1)

    def stopped(self, task: Task) -> None:
        if task.owner is not None:
            self._account(task, node_of(task.owner), -1)

    def reserve(self, task: Task, sign: int = 1) -> None:
        """Count a task this node is claiming (until the claim is stored), so one
        dispatch round cannot overbook a quota; ``sign=-1`` releases it."""
        self._account(task, self.node, sign)

    def _account(self, task: Task, node: str, sign: int) -> None:
        extra = task.extra
        if extra is None:
            return
        labels = extra.labels()
        if labels:
            per_node = self._labels_by_node.setdefault(node, Counter())
            for label in labels:
                per_node[label] += sign
                self._labels[label] += sign
        if extra.resources:
            if node == self.node:
                for name, amount in extra.resources.items():
                    self._node_use[name] += sign * amount
            if extra.group is not None:
                use = self._group_use.setdefault(extra.group, defaultdict(float))
                for name, amount in extra.resources.items():
                    use[name] += sign * amount

    def wake_keys(self, task: Task) -> list[str]:
        """Wake-up keys whose blocked tasks may fit after ``task`` stopped."""
        extra = task.extra
        if extra is None:
            return []
        keys = [f"label:{label}" for label in extra.labels()]
        if extra.resources:
            keys.append("capacity")
            if extra.group is not None:
                keys.append(f"group:{extra.group}")
        return keys

    # -- checks --

    def blocked(self, task: Task) -> Blocked | None:
        """None when ``task`` may start on this node now, else the key to wait on."""
        extra = task.extra
        if extra is None:
            return None
        if extra.nodes and not self.node_labels.intersection(extra.nodes):
            return ELSEWHERE
        if extra.avoid_nodes and self.node_labels.intersection(extra.avoid_nodes):
            return ELSEWHERE
        here = self._labels_by_node.get(self.node, Counter())
        for label in extra.affinity:
            if label not in self.node_labels and here[label] <= 0:
                # Waits for a task with this label to start on this node.
                return Blocked("started")
        for label in extra.anti_affinity:
            if here[label] > 0:
                return Blocked(f"label:{label}")
        for label in extra.exclusive:
            if self._labels[label] > 0:
                return Blocked(f"label:{label}")
        return self._resources_blocked(extra)

    def _resources_blocked(self, extra: Extra) -> Blocked | None:
        if not extra.resources:
            return None
        for name, amount in extra.resources.items():
            limit = self.capacity.get(name)
            if limit is not None:
                if amount > limit:
                    return ELSEWHERE
                if self._node_use[name] + amount > limit:
                    return Blocked("capacity")
        if extra.group is not None:
            limits = self.quotas.get(extra.group)
            if limits:
                use = self._group_use.get(extra.group) or defaultdict(float)
                for name, amount in extra.resources.items():
                    limit = limits.get(name)
                    if limit is not None and use[name] + amount > limit:
                        return Blocked(f"group:{extra.group}")
        return None

    def usage(self) -> dict[str, object]:
        """Current use, for statistics."""
        return {
            "node": dict(self._node_use),
            "groups": {g: dict(c) for g, c in self._group_use.items()},
            "capacity": self.capacity,
            "quotas": self.quotas,
        }
