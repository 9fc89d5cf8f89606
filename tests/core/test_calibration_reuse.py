"""Calibration shared within a study, and let go of once done: samples drawn once (a synthetic draw as a view of
its pool), activation ranges computed once (a later ONNX Runtime static int8 variant calibrated the same way, same
float graph, samples, method and op types, reads the first one's ranges instead of calibrating again), and the
calibration pool freed once no variant left to build calibrates (a synthetic pool, which can be made again, held
only while a variant calibrates)."""

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


def test_a_synthetic_calibration_draw_is_made_as_asked_never_the_whole_pool() -> None:
    """Synthetic samples are independent random draws, so the first n of the separate calibration draw are
    a random draw as good as any. An image pool is never held whole (256 images of 224x224 are 147 MB): the n
    samples a variant asks for are made from the seeded stream, the same values as the pool's first n, and
    never overlap the evaluated ones. Token data, small, is drawn whole and its first n taken as a view."""
    from core.datasets.synthetic import load_synthetic
    from core.models.loaded import TensorInfo

    def images() -> Dataset:
        return load_synthetic(DatasetSpec.parse("synthetic:30"), TensorInfo("x", (None, 4, 5), "float32"), seed=2)

    data = images()
    draw = data.calibration_samples(12, seed=2)
    assert data.calibration is None and data.calibration_info()["samples"] == 30
    assert data.calibration_samples(12, seed=2) is draw  # shared by the variants that ask alike
    assert draw.shape == (12, 4, 5) and not np.shares_memory(draw, data.x)
    whole = images().calibration_samples(100, seed=2)
    assert whole.shape == (30, 4, 5) and np.array_equal(draw, whole[:12])
    assert not any(np.array_equal(row, sample) for row in whole for sample in data.x)
    data.forget_calibration_draws(pool_too=True)
    assert not data.holds_calibration
    assert np.array_equal(data.calibration_samples(12, seed=2), draw)  # made again, the same samples

    tokens = load_synthetic(DatasetSpec.parse("synthetic:30"), TensorInfo("ids", (None, 8), "int64", vocab=50))
    ids = tokens.calibration_samples(12)
    assert tokens.calibration is not None and np.shares_memory(ids, tokens.calibration)
    assert np.array_equal(ids, tokens.calibration[:12]) and not np.shares_memory(ids, tokens.x)


def _pool_watch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Records, as each variant's build starts and ends, whether the dataset holds its calibration pool."""
    from core.engine import build as build_module

    seen: dict[str, Any] = {"held_at_build": {}, "held_after_build": {}}
    original = build_module.build_variant

    def watching_build(state: StudyState, planned: Any) -> Any:
        seen["state"] = state
        seen["held_at_build"][planned.label] = state.dataset.holds_calibration
        out = yield from original(state, planned)
        if "pool" not in seen and state.dataset.holds_calibration:
            held = state.dataset.calibration
            if held is None:  # a synthetic pool's draw, made for the build
                held = next(iter(state.dataset._calibration_drawn.values()))
            seen["pool"] = weakref.ref(held)
        seen["held_after_build"][planned.label] = state.dataset.holds_calibration
        seen["rebuilt"] = state.runners.rebuilt()
        return out

    monkeypatch.setattr("core.engine.run.build_variant", watching_build)
    return seen


def _two_variant_study(model: Path, data: str, schemes: tuple[str, ...]) -> StudySpec:
    return StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse(data), timing=QUICK,
                     variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in schemes), layer_samples=0)


def test_a_held_out_calibration_pool_is_let_go_of_once_no_variant_left_calibrates(
    tiny_onnx: Path, tiny_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool held out of a dataset cannot be made again: it is held from loading until the last calibrating
    variant is built, then freed, and the result still says where calibration came from."""
    from core.engine.run import run_study

    seen = _pool_watch(monkeypatch)
    spec = _two_variant_study(tiny_onnx, f"npz:{tiny_npz}", ("ort-int8-static", "ort-fp16"))
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 3
    assert seen["held_at_build"] == {"fp32": True, "ort-int8-static": True, "ort-fp16": False}
    gc.collect()
    assert seen["pool"]() is None  # the pool's memory is gone, not only its name
    assert result.dataset["calibration"] == {"source": "holdout", "samples": 10, "overlaps_evaluation": False}
    with pytest.raises(RuntimeError, match="let go of"):
        seen["state"].dataset.calibration_samples(8)


def test_a_synthetic_calibration_pool_is_held_only_while_a_variant_calibrates(
    tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthetic data draws a separate calibration pool as large as the evaluated samples (147 MB at 256
    images of 224x224). Being a seeded draw, it is made when a variant calibrates and let go of before the
    next variant that does not: not held while the baseline loads and runs, nor while ort-fp16 builds between
    two static variants. Made again, it is the same samples: both static variants calibrate alike."""
    from core.engine.run import run_study

    seen = _pool_watch(monkeypatch)
    spec = _two_variant_study(tiny_onnx, "synthetic:40", ("ort-int8-static", "ort-fp16",
                                                          "ort-int8-static:per_channel=false"))
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 4
    labels = ["fp32", "ort-int8-static", "ort-fp16", "ort-int8-static:per_channel=false"]
    assert seen["held_at_build"] == dict.fromkeys(labels, False)
    assert seen["held_after_build"] == {"fp32": False, "ort-int8-static": True, "ort-fp16": False,
                                        "ort-int8-static:per_channel=false": True}
    assert not seen["state"].dataset.holds_calibration  # after the last static variant, let go of again
    gc.collect()
    assert seen["pool"]() is None
    assert result.dataset["calibration"] == {"source": "separate_draw", "samples": 40, "overlaps_evaluation": False}
    # The second static variant found the first one's activation ranges: the same samples, made again.
    second = result.results[3]
    assert second.coverage["calibration_reused"] is True
    again = seen["state"].dataset.calibration_samples(40)
    from core.datasets.synthetic import load_synthetic

    fresh = load_synthetic(DatasetSpec.parse("synthetic:40"), seen["state"].model.input, seed=spec.seed)
    np.testing.assert_array_equal(again, fresh.calibration_samples(40))


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
    assert seen["held_at_build"]["ort-fp16"] and seen["state"].dataset.holds_calibration
    recheck = result.timing.get("baseline_recheck")
    if recheck is not None:  # built again, calibrated on the pool it was first built with
        assert "torch-int8-static" in recheck["variants"]


def test_a_synthetic_pool_made_again_for_a_rebuild_is_let_go_of_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-check's rebuild of a calibrating PyTorch variant on synthetic data makes the pool again for that
    build only, and calibrates on the same samples: the rebuilt model gives the first one's outputs."""
    from core.engine.build import rebuilder
    from core.engine.run import demo_study_spec, run_study
    from core.engine.state import PlannedVariant
    from core.schemes import get_scheme

    seen = _pool_watch(monkeypatch)
    spec = replace(demo_study_spec(QUICK), layer_samples=0, dataset=DatasetSpec.parse("synthetic:24"),
                   variants=(VariantSpec(scheme=SchemeSpec("torch-int8-static")),))
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 2
    state = seen["state"]
    assert seen["held_after_build"]["torch-int8-static"] and not state.dataset.holds_calibration
    scheme = get_scheme("torch-int8-static")
    planned = PlannedVariant("torch-int8-static", scheme.info.id, scheme, SchemeSpec("torch-int8-static"), None)
    first, second = rebuilder(state, planned)(), rebuilder(state, planned)()
    assert not state.dataset.holds_calibration
    x = state.dataset.x[:8]
    np.testing.assert_array_equal(first.predict(x), second.predict(x))
    first.close()
    second.close()
