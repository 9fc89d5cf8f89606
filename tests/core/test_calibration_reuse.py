"""Activation ranges computed once per study: a later ONNX Runtime static int8 variant calibrated the same way
(same float graph, samples, method and op types) reads the first one's ranges instead of calibrating again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.study.spec import SchemeSpec
from tests.core.conftest import make_mlp_onnx


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
