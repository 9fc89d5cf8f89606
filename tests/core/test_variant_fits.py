"""Issue 14 item 1: a variant file whose inputs or outputs are not the model's is refused before the study runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInput
from core.study.spec import DatasetKind, DatasetSpec, ModelSpec, StudySpec, TimingSpec, VariantSpec

QUICK = TimingSpec(threads=1, max_time_s=0.05, min_samples=3, max_samples=50, warmup_runs=1, warmup_s=0.0)


def onnx_relu(path: Path, width: int, batch: int | str = "batch") -> Path:
    """x[batch, width] -> Relu -> y[batch, width]."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_signature_mismatch_names_the_file_and_the_shapes(tmp_path: Path) -> None:
    from core.models import load_model
    from core.models.signature import signature_mismatch

    model = load_model(ModelSpec(str(onnx_relu(tmp_path / "model.onnx", 4))))
    same = load_model(ModelSpec(str(onnx_relu(tmp_path / "same.onnx", 4, batch=1))))
    other = load_model(ModelSpec(str(onnx_relu(tmp_path / "other.onnx", 3))))

    assert signature_mismatch(model, same) is None  # a fixed batch is still the same model
    reason = signature_mismatch(model, other)
    assert reason is not None and "other.onnx" in reason and "×3" in reason and reason.endswith(".")


def _spec(tmp_path: Path, variant: Path) -> StudySpec:
    return StudySpec(
        model=ModelSpec(str(onnx_relu(tmp_path / "model.onnx", 4))),
        dataset=DatasetSpec(DatasetKind.SYNTHETIC, "16"),
        variants=(VariantSpec(path=str(variant)),),
        timing=QUICK,
    )


def test_engine_refuses_a_stale_variant_before_any_event(tmp_path: Path) -> None:
    from core.engine.run import run_study

    spec = _spec(tmp_path, onnx_relu(tmp_path / "stale.onnx", 3))
    events = []
    with pytest.raises(BadInput, match="stale.onnx does not fit the model"):
        for event in run_study(spec):
            events.append(event)
    assert events == []


def test_cli_refuses_a_stale_variant_with_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.main import main

    model = onnx_relu(tmp_path / "model.onnx", 4)
    stale = onnx_relu(tmp_path / "stale.onnx", 3)
    capsys.readouterr()
    code = main(["run", "--model", str(model), "--variant", str(stale), "--dataset", "synthetic:16",
                 "--no-history", "--in-process", "--quiet", "--max-time", "0.05", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "stale.onnx does not fit the model" in err[0]
