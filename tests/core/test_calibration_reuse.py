"""Calibration shared within a study, and let go of once done: samples drawn once (a synthetic draw as a view of
its pool), activation ranges computed once (a later ONNX Runtime static int8 variant calibrated the same way, same
float graph, samples, method and op types, reads the first one's ranges instead of calibrating again), and the
calibration pool freed once no variant left to build calibrates."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.datasets.base import Dataset
from core.engine.state import StudyState
from core.study.events import StudyFinished
from core.study.result import VariantStatus
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, Task, TimingSpec, VariantSpec
from tests.core.conftest import make_mlp_onnx

QUICK = TimingSpec(threads=1, max_time_s=0.1, min_samples=10, warmup_runs=2, warmup_s=0.01)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("large", [False, True])
def test_a_second_static_variant_calibrated_the_same_way_reuses_the_ranges(
    tmp_path: Path, make_ctx: Any, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    from importlib import import_module

    from core.models import load_model
    from core.schemes import get_scheme, ort_streamed
    from core.study.spec import ModelSpec

    if large:  # the path of a model of 512 MB or more (its own calibration), taken by lowering the threshold
        monkeypatch.setattr(ort_streamed, "STREAMED_MIN_BYTES", 0)
    model = load_model(ModelSpec(path=str(make_mlp_onnx(tmp_path / "m" / "mlp.onnx", seed=2))))
    calibration = np.random.default_rng(3).standard_normal((16, 64)).astype(np.float32)
    calibrations = []
    for name in ("onnxruntime.quantization", "onnxruntime.quantization.quantize"):  # where each path finds it
        module = import_module(name)
        original = module.create_calibrator

        def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            calibrations.append(1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "create_calibrator", counted)
    scheme = get_scheme("ort-int8-static")
    note = "activation ranges reused from an earlier variant calibrated the same way"
    first = scheme.build(model, SchemeSpec.parse("ort-int8-static:samples=16"), make_ctx("a", calibration))
    assert len(calibrations) == 1 and not any(note in n for n in first.notes)
    assert first.coverage["calibration_reused"] is False
    # Per-tensor weights: other weights, the same activation ranges, read from the first variant's cache.
    spec = SchemeSpec.parse("ort-int8-static:samples=16,per_channel=false")
    second = scheme.build(model, spec, make_ctx("b", calibration))
    assert len(calibrations) == 1 and any(note in n for n in second.notes) and second.coverage["calibration_reused"]
    # Exactly the model a fresh calibration makes (a study of its own: nothing shared).
    elsewhere = tmp_path / "another-study" / "c"
    elsewhere.mkdir(parents=True)
    alone = scheme.build(model, spec, replace(make_ctx("c", calibration), workdir=elsewhere, shared={}))
    assert len(calibrations) == 2
    x = np.random.default_rng(4).standard_normal((8, 64)).astype(np.float32)
    np.testing.assert_array_equal(_run(second.artifact, x), _run(alone.artifact, x))
    # Another method, or other samples, calibrate again.
    scheme.build(model, SchemeSpec.parse("ort-int8-static:samples=16,calibration=entropy"), make_ctx("d", calibration))
    scheme.build(model, SchemeSpec.parse("ort-int8-static:samples=8"), make_ctx("e", calibration))
    assert len(calibrations) == 4
    for built in (first, second, alone):
        built.runner.close()


# ----------------------------------------------------------------------------- calibration drawn once


def test_calibration_samples_are_drawn_once_and_shared() -> None:
    x = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    data = Dataset(x=x, y=None, task=Task.UNLABELLED, spec="test")
    first = data.calibration_samples(10, seed=3)
    assert data.calibration_samples(10, seed=3) is first  # the same array, not a copy per scheme
    assert len(first) == 10 and len({tuple(r) for r in first}) == 10
    assert not np.array_equal(data.calibration_samples(10, seed=4), first)
    whole = data.calibration_samples(500, seed=3)
    # Every sample asked for: the pool itself, in order, not a copy of it (a 200-image draw is 120 MB).
    assert len(whole) == 40 and np.array_equal(whole, x) and np.shares_memory(whole, data.x)


def test_a_synthetic_calibration_draw_is_its_pools_first_samples_not_a_copy() -> None:
    """Synthetic samples are independent random draws, so the first n of the separate calibration draw are
    a random draw as good as any: taken as a view, reproducibly, and never overlapping the evaluated ones."""
    from core.datasets.synthetic import load_synthetic
    from core.models.loaded import TensorInfo

    data = load_synthetic(DatasetSpec.parse("synthetic:30"), TensorInfo("x", (None, 4, 5), "float32"), seed=2)
    draw = data.calibration_samples(12, seed=2)
    assert data.calibration is not None and data.calibration_exchangeable
    assert draw.shape == (12, 4, 5) and np.shares_memory(draw, data.calibration)
    assert np.array_equal(draw, data.calibration[:12]) and not np.shares_memory(draw, data.x)
    again = load_synthetic(DatasetSpec.parse("synthetic:30"), TensorInfo("x", (None, 4, 5), "float32"), seed=2)
    assert np.array_equal(again.calibration_samples(12, seed=2), draw)
    assert not any(np.array_equal(row, sample) for row in draw for sample in data.x)


def _pool_watch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Records, as each variant's build starts, whether the dataset still holds its calibration pool."""
    from core.engine import build as build_module

    seen: dict[str, Any] = {"held_at_build": {}}
    original = build_module.build_variant

    def watching_build(state: StudyState, planned: Any) -> Any:
        seen["state"] = state
        if "pool" not in seen and state.dataset.calibration is not None:
            seen["pool"] = weakref.ref(state.dataset.calibration)
        seen["held_at_build"][planned.label] = state.dataset.calibration is not None
        seen["rebuilt"] = state.runners.rebuilt()
        return (yield from original(state, planned))

    monkeypatch.setattr("core.engine.run.build_variant", watching_build)
    return seen


def test_the_calibration_pool_is_let_go_of_once_no_variant_left_calibrates(
    tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthetic data draws a separate calibration pool as large as the evaluated samples (150 MB at 256
    images of 224x224): once the last calibrating variant is built it is freed, and the result still says
    where calibration came from."""
    from core.engine.run import run_study

    seen = _pool_watch(monkeypatch)
    spec = StudySpec(model=ModelSpec(path=str(tiny_onnx)), dataset=DatasetSpec.parse("synthetic:40"), timing=QUICK,
                     variants=tuple(VariantSpec(scheme=SchemeSpec(s)) for s in ("ort-int8-static", "ort-fp16")),
                     layer_samples=0)
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 3
    assert seen["held_at_build"] == {"fp32": True, "ort-int8-static": True, "ort-fp16": False}
    gc.collect()
    assert seen["pool"]() is None  # the pool's memory is gone, not only its name
    calibration = result.dataset["calibration"]
    assert calibration == {"source": "separate_draw", "samples": 40, "overlaps_evaluation": False}
    with pytest.raises(RuntimeError, match="let go of"):
        seen["state"].dataset.calibration_samples(8)


def test_the_calibration_pool_stays_while_a_variant_built_again_for_the_recheck_calibrates(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch-int8-static quick enough to build (REBUILD_MAX_S, raised here so that the first import of
    torch.ao does not count) is built again by the re-check, calibrating again on the same draw: the pool is
    held to the end. An ONNX Runtime variant reopens its file and never needs it."""
    from core.engine.run import demo_study_spec, run_study

    monkeypatch.setattr("core.engine.run.REBUILD_MAX_S", 120.0)
    seen = _pool_watch(monkeypatch)
    spec = replace(demo_study_spec(QUICK), layer_samples=0, variants=tuple(
        VariantSpec(scheme=SchemeSpec(s)) for s in ("torch-int8-static", "ort-fp16")))
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 3
    assert seen["rebuilt"] == {"torch-int8-static"}  # as ort-fp16 was built
    assert seen["held_at_build"]["ort-fp16"] and seen["state"].dataset.calibration is not None
    recheck = result.timing.get("baseline_recheck")
    if recheck is not None:  # built again, calibrated on the pool it was first built with
        assert "torch-int8-static" in recheck["variants"]
