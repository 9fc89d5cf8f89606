"""Issue 14, item 8: a model whose outputs are constant, or whose class scores tie, is detected,
said so in a note, and graded on fidelity only, never as "loses too much accuracy"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.engine.run import run_study
from core.measures.degenerate import degenerate_outputs, on_fidelity, relative_output_error
from core.study.events import StudyFinished
from core.study.result import Grade
from core.study.spec import DatasetKind, DatasetSpec, ModelSpec, StudySpec, TimingSpec, VariantSpec

FAST = TimingSpec(threads=1, max_time_s=0.05, min_samples=5, warmup_runs=1)


def _linear_onnx(path: Path, weights: np.ndarray, bias: np.ndarray) -> Path:
    """x[batch, 4] -> MatMul(W[4, 3]) -> Add(b[3]) -> y[batch, 3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_constant_and_tied_outputs_are_detected() -> None:
    rng = np.random.default_rng(0)
    trained = rng.normal(size=(50, 10))
    assert degenerate_outputs(trained, classification=True) is None
    assert degenerate_outputs(trained[:, :1], classification=False) is None

    constant = np.tile(rng.normal(size=(1, 10)), (50, 1)) + rng.normal(scale=1e-9, size=(50, 10))
    assert "the same for all 50 samples" in (degenerate_outputs(constant, classification=True) or "")
    assert degenerate_outputs(np.zeros((20, 1)), classification=False) is not None  # a regression too

    tied = 0.1 + rng.normal(scale=1e-9, size=(50, 10)) + rng.normal(size=(50, 1))  # rows differ, classes tie
    assert "top two class scores are equal" in (degenerate_outputs(tied, classification=True) or "")
    assert degenerate_outputs(tied, classification=False) is None  # ties only matter to class predictions

    assert relative_output_error({"sqnr_db": 40.0}) == 0.01 and relative_output_error({}) is None
    assert on_fidelity("overall bad: it loses too much accuracy") == (
        "overall bad: it strays too far from the baseline's outputs"
    )


def _study(tmp_path: Path, baseline_w: np.ndarray, variant_w: np.ndarray, bias: np.ndarray) -> Any:
    """The baseline and a variant file that differ only in their weights, on data labelled by the baseline."""
    base = _linear_onnx(tmp_path / "base.onnx", baseline_w, bias)
    other = _linear_onnx(tmp_path / "variant.onnx", variant_w, bias)
    x = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)
    y = np.argmax(x @ baseline_w.astype(np.float32) + bias.astype(np.float32), axis=1)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = StudySpec(
        ModelSpec(str(base)),
        DatasetSpec(DatasetKind.NPZ, str(tmp_path / "d.npz")),
        variants=(VariantSpec(path=str(other)),),
        timing=FAST,
    )
    result = [e for e in run_study(spec) if isinstance(e, StudyFinished)][-1].result
    assert [r.status.value for r in result.results] == ["ok", "ok"], [r.error for r in result.results]
    return result


def test_a_degenerate_model_is_graded_on_fidelity_only(tmp_path: Path) -> None:
    # Untrained-like weights: every class score is 0.1 give or take 1e-9, so ties decide the argmax.
    rng = np.random.default_rng(0)
    weights = rng.normal(scale=1e-9, size=(4, 3))
    noise = rng.normal(scale=1e-9, size=(4, 3))
    result = _study(tmp_path, weights, weights + noise, np.full(3, 0.1))
    base, variant = result.results

    assert variant.fidelity["agreement"] < 0.9  # the predictions flip on noise (accuracy 10+ points down) ...
    assert variant.fidelity["mae"] < 1e-8  # ... while the outputs are all but identical
    assert variant.fidelity["baseline_degenerate"] is True
    for r in (base, variant):
        assert any(n.startswith("Degenerate outputs: the baseline's outputs are the same") for n in r.notes)
    verdict = variant.verdict
    assert verdict.accuracy is Grade.GOOD and verdict.overall is not Grade.BAD
    assert verdict.accuracy_drop is not None and verdict.accuracy_drop < 1e-3  # the relative output error
    assert "outputs differ from the baseline's by" in verdict.reasons[0]
    assert not any("accuracy" in reason for reason in verdict.reasons)


def test_a_trained_model_is_still_graded_on_accuracy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3))
    result = _study(tmp_path, weights, -weights, np.zeros(3))  # a variant that gets everything wrong
    base, variant = result.results

    assert "baseline_degenerate" not in variant.fidelity
    assert not any(n.startswith("Degenerate outputs") for n in base.notes + variant.notes)
    assert variant.verdict.accuracy is Grade.BAD and variant.verdict.overall is Grade.BAD
    assert variant.verdict.accuracy_drop > 0.5  # accuracy points, as before
