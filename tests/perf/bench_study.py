"""8. A whole study: the full scheme catalogue on a ResNet-18, its wall time against its floor, and its memory.

Each figure comes from a fresh child process (``tests.perf.catalogue_child``):

- The study: ``torchvision:resnet18`` (untrained, weights=None) on ``synthetic:N`` (256 samples; quick
  mode 64) with every scheme id of the catalogue, default timing (2 s budget per variant), run by the
  engine in the child. ``study_time_resnet18_catalogue_s`` is its wall time from the first event to
  the last (256 samples only); the child also reports where it went, stage by stage.
- The floor: Σ over variants of (its build time in that study + evaluating the N samples at the
  fastest batch size it supports + the timing budget). The fastest evaluation is measured in a second
  child that builds every variant again and times batch sizes 1, 4, 16 and 64 on a few samples each
  (``catalogue_child.floor``). ``study_floor_ratio_resnet18`` = wall time ÷ floor.
- Memory: the study child's resident-memory high-water mark (VmHWM, read by this process), and that of
  studies of one variant each (the baseline plus ``ort-int8-static`` or ``torch-int8-static``, the two that
  calibrate and the largest builds; thorough mode adds ``torch-fp16``): the catalogue's peak should not grow
  with the number of variants (``study_peak_rss_ratio_catalogue_to_single`` ≤ 1.2, against the largest of them).
- The paired rounds (run when the machine's speed changed during the study): when the study did not need them,
  it runs again with them forced (``catalogue_child.paired``): ``study_floor_ratio_resnet18_paired`` (its wall
  time ÷ the same floor) and ``study_peak_rss_mb_resnet18_catalogue_paired``.
"""

from __future__ import annotations

from typing import Any

from tests.perf.common import last_json_line, mem_available_mb, run_child

CHILD = "tests.perf.catalogue_child"
RSS_LIMIT_SHARE = 0.6
SINGLE = ("ort-int8-static", "torch-int8-static")
SINGLE_THOROUGH = (*SINGLE, "torch-fp16")


def catalogue_ids() -> list[str]:
    from core.schemes import catalogue

    return [scheme.info.id for scheme in catalogue()]


def _child(args: list[str], limit_mb: float, timeout_s: float) -> dict[str, Any]:
    got = run_child(["-m", CHILD, *args], timeout_s=timeout_s, rss_limit_mb=limit_mb)
    if got["killed_for"]:
        return {"stopped": f"the child was stopped: {got['killed_for']}", "peak_rss_mb_from_parent": got["peak_rss_mb"]}
    if got["rc"] != 0:
        raise RuntimeError(f"catalogue child {args[:2]} failed (rc {got['rc']}): {got['stderr'][-800:]}")
    result = last_json_line(got["stdout"])
    result["peak_rss_mb_from_parent"] = got["peak_rss_mb"]
    result["child_wall_s"] = round(got["wall_s"], 1)
    return result


def floor_s(study: dict[str, Any], floor: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """The study's floor: Σ (its build time + the fastest evaluation + the timing budget), and its parts."""
    budget = float(study["timing_budget_s"])
    parts = {"build_s": 0.0, "eval_s": 0.0, "timing_s": 0.0}
    for label, v in study["variants"].items():
        if v["status"] != "ok":
            continue
        fastest = floor["variants"].get(label.split(":")[0], {})
        parts["build_s"] += float(v["build_s"])
        parts["eval_s"] += float(fastest.get("eval_s", v["phase_eval_s"]))
        parts["timing_s"] += budget
    return sum(parts.values()), parts


def run(quick: bool) -> dict[str, Any]:
    samples = 64 if quick else 256
    ids = catalogue_ids()
    available = mem_available_mb() or 4096.0
    limit = RSS_LIMIT_SHARE * available
    out: dict[str, Any] = {"study_samples": samples, "schemes": ids, "mem_available_mb_at_start": available}
    study = _child(["study", str(samples), *ids], limit, timeout_s=1800.0)
    out["study"] = study
    if "stopped" in study:
        return out
    floor = _child(["floor", str(samples), *ids], limit, timeout_s=900.0)
    out["floor"] = floor
    total, parts = floor_s(study, floor)
    wall = float(study["wall_s"])
    out["study_floor_s"] = total
    out["study_floor_parts_s"] = parts
    out["study_floor_ratio_resnet18"] = wall / total if total else None
    out[f"study_time_resnet18_catalogue_{samples}_s"] = wall
    if samples == 256:
        out["study_time_resnet18_catalogue_s"] = wall
    out["study_peak_rss_mb_resnet18_catalogue"] = study.get("peak_rss_mb_from_parent") or study.get("peak_rss_mb")
    if study.get("paired_rounds"):
        out["study_paired"] = {"ran_in_the_study": True}
    else:  # the machine held still: the same study again with the paired rounds forced, for their time and memory
        paired = _child(["paired", str(samples), *ids], limit, timeout_s=1800.0)
        out["study_paired"] = paired
        if "stopped" not in paired:
            out["study_floor_ratio_resnet18_paired"] = float(paired["wall_s"]) / total if total else None
            out["study_peak_rss_mb_resnet18_catalogue_paired"] = paired.get("peak_rss_mb_from_parent")
            out["study_recheck_s_paired"] = paired.get("recheck_s")
    singles: dict[str, Any] = {}
    for scheme in SINGLE if quick else SINGLE_THOROUGH:
        got = _child(["study", str(samples), scheme], limit, timeout_s=900.0)
        singles[scheme] = {"peak_rss_mb": got.get("peak_rss_mb_from_parent"), "wall_s": got.get("wall_s")}
    out["study_single_variant"] = singles
    peaks = [s["peak_rss_mb"] for s in singles.values() if s.get("peak_rss_mb")]
    if peaks:
        out["study_peak_rss_mb_resnet18_single_max"] = max(peaks)
        out["study_peak_rss_ratio_catalogue_to_single"] = out["study_peak_rss_mb_resnet18_catalogue"] / max(peaks)
    return out


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
