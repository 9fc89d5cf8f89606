"""The accuracy-versus-objective frontier of the search's candidates, and which one is best."""

from __future__ import annotations

from typing import Any

OBJECTIVES = ("latency", "size")


def objective_value(candidate: dict[str, Any], objective: str) -> float | None:
    """What the search minimises for ``candidate``: its median latency (ms) or its file size (bytes)."""
    if candidate.get("status", "ok") != "ok":
        return None
    if objective == "latency":
        latency = candidate.get("latency_ms") or {}
        return latency.get("p50")
    return candidate.get("size_bytes")


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(accuracy, cost): ``a`` is at least as accurate and as cheap as ``b``, and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def mark_frontier(candidates: list[dict[str, Any]], objective: str) -> None:
    """Set ``on_frontier`` on every candidate: measured and dominated by no other candidate."""
    points = {}
    for i, c in enumerate(candidates):
        cost = objective_value(c, objective)
        if cost is not None and c.get("accuracy") is not None:
            points[i] = (float(c["accuracy"]), float(cost))
    for i, c in enumerate(candidates):
        p = points.get(i)
        c["on_frontier"] = p is not None and not any(_dominates(q, p) for j, q in points.items() if j != i)


def meets_budget(candidate: dict[str, Any], baseline: dict[str, Any], max_drop_pt: float, objective: str) -> bool:
    """Loses at most ``max_drop_pt`` points and beats the float baseline on the objective."""
    cost, base_cost = objective_value(candidate, objective), objective_value(baseline, objective)
    drop = candidate.get("accuracy_drop_pt")
    if cost is None or base_cost is None or drop is None:
        return False
    return drop <= max_drop_pt + 1e-9 and cost < base_cost


def best_candidate(
    candidates: list[dict[str, Any]], max_drop_pt: float, objective: str
) -> dict[str, Any] | None:
    """The cheapest candidate within the budget; if none is, the most accurate one that still beats float on the
    objective (the closest miss); None when no candidate beats float at all. The baseline is never best."""
    if not candidates:
        return None
    baseline, rest = candidates[0], candidates[1:]
    within = [c for c in rest if meets_budget(c, baseline, max_drop_pt, objective)]
    if within:
        return min(within, key=lambda c: (objective_value(c, objective), c["accuracy_drop_pt"]))
    base_cost = objective_value(baseline, objective)
    cheaper = [
        c for c in rest
        if base_cost is not None and (objective_value(c, objective) or base_cost) < base_cost
        and c.get("accuracy_drop_pt") is not None
    ]
    if not cheaper:
        return None
    return min(cheaper, key=lambda c: (c["accuracy_drop_pt"], objective_value(c, objective)))
