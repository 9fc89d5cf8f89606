"""Peak resident memory per variant (issue 17): the kernel's peak counter reset between variants, the
``memory.peak_rss_bytes`` of the result JSON, and the HTML report's column."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.measures.peak_memory import METHOD_LIFETIME, METHOD_RESET, PeakMemory, reset_peak

MB = 1 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the resettable counter is Linux's")


def _touch(n_bytes: int) -> np.ndarray:
    block = np.ones(n_bytes, dtype=np.uint8)  # written, so resident
    return block


@linux_only
def test_each_window_sees_its_own_peak_after_a_reset() -> None:
    first = PeakMemory()
    first.start()
    block = _touch(200 * MB)
    del block
    big = first.result()
    second = PeakMemory()
    second.start()  # the 200 MB freed above no longer counts
    small = _touch(20 * MB)
    del small
    after = second.result()
    assert big["method"] == after["method"] == METHOD_RESET
    assert big["peak_rss_bytes"] >= big["rss_before_bytes"] + 190 * MB
    assert after["peak_rss_bytes"] >= after["rss_before_bytes"] + 15 * MB
    assert after["peak_rss_bytes"] < big["peak_rss_bytes"] - 100 * MB  # reset: not the earlier, larger peak


def test_without_a_resettable_counter_the_lifetime_peak_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.measures import peak_memory

    monkeypatch.setattr(peak_memory, "_CLEAR_REFS", "/nonexistent/clear_refs")
    assert not reset_peak()
    window = PeakMemory()
    window.start()
    memory = window.result()
    if memory is not None:  # None only where getrusage is missing (Windows)
        assert memory["method"] == METHOD_LIFETIME and memory["peak_rss_bytes"] > 0
    monkeypatch.undo()
    reset_peak()


def test_every_variant_of_a_study_has_its_peak_memory_in_the_json_and_the_html(
    tiny_onnx: Path, tiny_npz: Path, tmp_path: Path
) -> None:
    from core.engine.run import run_study
    from core.reports.html import render_html
    from core.study.events import StudyFinished
    from core.study.result import study_from_json
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec

    spec = StudySpec(
        model=ModelSpec(path=str(tiny_onnx)), dataset=DatasetSpec.parse(f"npz:{tiny_npz}"),
        variants=(VariantSpec(scheme=SchemeSpec.parse("ort-int8-dynamic")),),
        timing=TimingSpec(threads=1, max_time_s=0.1, min_samples=10),
    )
    finished = [e for e in run_study(spec) if isinstance(e, StudyFinished)][0]
    data = json.loads(json.dumps(finished.result.to_json_dict()))
    memories: list[dict[str, Any]] = [r["memory"] for r in data["results"]]
    assert len(memories) == 2
    for memory in memories:
        assert memory["peak_rss_bytes"] >= memory["rss_before_bytes"] > 10 * MB  # python, numpy, onnxruntime
        assert memory["method"] == (METHOD_RESET if sys.platform.startswith("linux") else METHOD_LIFETIME)
    # Read back from the JSON (the history stores the same), and written in the HTML report.
    again = study_from_json(data)
    assert [r.memory for r in again.results] == memories
    html = render_html([again])
    assert "<th>Peak RAM</th>" in html and "peak resident memory" in html
    from core.reports.format import format_bytes

    assert f"<td>{format_bytes(memories[1]['peak_rss_bytes'])}</td>" in html
