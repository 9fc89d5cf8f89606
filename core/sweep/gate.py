"""The per-node timing gate: one small Ray actor on every node, holding that node's ``quantbench_timing``
resource (1 per node), through which a study's timing phases pass one at a time.

Building and evaluating run in parallel; timing never shares a machine. The gate also knows which of the sweep's
studies are on its node, so each timing can say whether anything else ran there meanwhile. Plain Python: the
Ray wrapping happens in ``core.sweep.ray_runner``, so this module imports no Ray.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

#: The custom resource every node offers once (``ray start --resources '{"quantbench_timing": 1}'``).
TIMING_RESOURCE = "quantbench_timing"
#: The namespace of the gates, shared by every sweep connected to the cluster.
NAMESPACE = "quantbench"


def gate_name(node_id: str) -> str:
    return f"quantbench-timing-gate-{node_id}"


def node_gate(node_id: str, resources: dict[str, float]) -> Any:
    """The gate of a node (``resources``: the node's), started there when it has none yet; None for a node that
    offers no ``quantbench_timing`` resource (its timings cannot be made exclusive).

    Gates are detached actors: they outlive the sweep that made them (a gate dies with its last handle
    otherwise, under the feet of another sweep timing on that node), and the next sweep finds them by name."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if resources.get(TIMING_RESOURCE, 0) < 1:
        return None
    try:
        return ray.get_actor(gate_name(node_id), namespace=NAMESPACE)
    except ValueError:
        pass  # not made yet on this node
    return ray.remote(TimingGate).options(
        name=gate_name(node_id), namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        resources={TIMING_RESOURCE: 1}, max_concurrency=1000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


class TimingGate:
    """A lock with a memory: who holds it, who else was on the node while it was held."""

    def __init__(self) -> None:
        self._holder: str | None = None
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []
        self._active: dict[str, float] = {}  # study key -> when it started on this node
        self._seen: set[str] = set()  # studies on the node during the current hold
        self.intervals: list[tuple[str, float, float]] = []  # (study key, start, end): every hold, for checks

    async def enter(self, key: str) -> None:
        """A study started on this node."""
        self._active[key] = time.time()
        if self._holder is not None and key != self._holder:
            self._seen.add(key)

    async def leave(self, key: str) -> None:
        """A study ended on this node."""
        self._active.pop(key, None)

    async def acquire(self, key: str) -> None:
        """Wait until the node is free for ``key``'s timing, then hold it."""
        if self._holder is None:
            self._take(key)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((key, future))
        await future

    async def release(self, key: str) -> list[str]:
        """End ``key``'s hold; return the other studies that were on the node during it."""
        if self._holder != key:
            return []
        seen = sorted(self._seen)
        self.intervals.append((key, self._since, time.time()))
        self._hand_on()
        return seen

    async def forget(self, key: str) -> None:
        """A study's task died or was cancelled: drop it, and free the node if it held it."""
        self._active.pop(key, None)
        for k, future in self._waiters:
            if k == key:
                future.cancel()
        self._waiters = [(k, f) for k, f in self._waiters if k != key]
        if self._holder == key:
            self._hand_on()

    async def active(self) -> dict[str, float]:
        """The studies on this node now, with when each started."""
        return dict(self._active)

    async def holds(self) -> list[tuple[str, float, float]]:
        """Every finished hold: (study key, start, end) in seconds since the epoch."""
        return list(self.intervals)

    def _take(self, key: str) -> None:
        self._holder = key
        self._since = time.time()
        self._seen = {k for k in self._active if k != key}

    def _hand_on(self) -> None:
        self._holder = None
        self._seen = set()
        while self._waiters:
            key, future = self._waiters.pop(0)
            if not future.done():
                self._take(key)
                future.set_result(None)
                return
