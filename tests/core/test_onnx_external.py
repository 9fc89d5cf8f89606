"""An ONNX file's weights moved to external data one tensor at a time (core.schemes.onnx_external), and the
transformer schemes that quantize from such a copy so the float weights are never all in memory at once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.study.spec import SchemeSpec
from tests.core import transformers_kit as kit
from tests.core.conftest import make_mlp_onnx


def _run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _external_tensors(path: Path) -> list[str]:
    import onnx
    from onnx.external_data_helper import uses_external_data

    return [t.name for t in onnx.load(str(path), load_external_data=False).graph.initializer if uses_external_data(t)]


def test_weights_move_to_an_aligned_data_file_and_the_model_computes_the_same(tmp_path: Path) -> None:
    from core.schemes.onnx_external import ALIGNMENT, external_copy, to_external_data, uses_external_data

    src = make_mlp_onnx(tmp_path / "mlp.onnx")
    dst = tmp_path / "out" / "mlp_external.onnx"
    dst.parent.mkdir()
    moved = to_external_data(src, dst)
    data = dst.with_name("mlp_external.onnx.data")
    # w1 (8 KiB) and w2 (1.3 KiB) move; b1 (128 bytes) is under the 1 KiB threshold and stays inline.
    assert moved == (64 * 32 + 32 * 10) * 4
    assert sorted(_external_tensors(dst)) == ["w1", "w2"]
    assert not uses_external_data(src) and uses_external_data(dst)
    assert dst.stat().st_size < 1024 < data.stat().st_size

    import onnx

    for tensor in onnx.load(str(dst), load_external_data=False).graph.initializer:
        entries = {e.key: e.value for e in tensor.external_data}
        if entries:
            assert int(entries["offset"]) % ALIGNMENT == 0 and entries["location"] == data.name

    x = np.random.default_rng(3).standard_normal((5, 64)).astype(np.float32)
    np.testing.assert_array_equal(_run(src, {"x": x})[0], _run(dst, {"x": x})[0])
    # Already external: used as it is, never converted twice.
    assert external_copy(dst, tmp_path) == dst
    with pytest.raises(ValueError, match="already keeps its weights in external data"):
        to_external_data(dst, tmp_path / "again.onnx")


def test_a_failed_conversion_leaves_no_half_written_files(tmp_path: Path) -> None:
    from core.schemes.onnx_external import external_copy

    broken = tmp_path / "broken.onnx"
    good = make_mlp_onnx(tmp_path / "mlp.onnx").read_bytes()
    broken.write_bytes(good[: len(good) // 2])  # ends inside a field
    out = tmp_path / "out"
    out.mkdir()
    from google.protobuf.message import DecodeError

    with pytest.raises((ValueError, DecodeError)):
        external_copy(broken, out)
    assert list(out.iterdir()) == []


def test_a_quantized_model_saved_self_contained_needs_nothing_of_the_float_data(tmp_path: Path) -> None:
    """What a quantizer leaves in float comes into the saved file; past the single-file limit, a data file
    of its own beside it, never a reference to the float model's."""
    import onnx

    from core.schemes import onnx_external
    from core.schemes.onnx_external import external_copy, save_self_contained

    ext = external_copy(make_mlp_onnx(tmp_path / "mlp.onnx"), tmp_path)
    x = np.random.default_rng(4).standard_normal((3, 64)).astype(np.float32)
    expected = _run(ext, {"x": x})[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    one = elsewhere / "one.onnx"
    save_self_contained(onnx.load(str(ext), load_external_data=False), ext.parent, one)
    assert _external_tensors(one) == [] and sorted(p.name for p in elsewhere.iterdir()) == ["one.onnx"]
    np.testing.assert_array_equal(_run(one, {"x": x})[0], expected)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(onnx_external, "SINGLE_FILE_MAX_BYTES", 1000)
        two = elsewhere / "two.onnx"
        save_self_contained(onnx.load(str(ext), load_external_data=False), ext.parent, two)
    assert (elsewhere / "two.onnx.data").exists() and sorted(_external_tensors(two)) == ["w1", "w2"]  # b1 under 1 KiB
    np.testing.assert_array_equal(_run(two, {"x": x})[0], expected)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("encoder")
    model = kit.make_encoder(seed=2)
    data = kit.encoder_data(16, seed=5)
    return SimpleNamespace(onnx=kit.export_onnx(model, folder / "enc.onnx", ("logits", "pooled")), data=data)


def _loaded(path: Path) -> Any:
    from core.models import load_model
    from core.study.spec import ModelSpec

    return load_model(ModelSpec(path=str(path)))


def test_transformer_dynamic_int8_from_external_data_equals_onnx_runtimes_own(
    encoder: SimpleNamespace, make_ctx: Any, tmp_path: Path
) -> None:
    """The streamed path (weights read one at a time, quant_pre_process skipped) quantizes the same MatMul
    weights to the same integers as quantize_dynamic on the whole file, and writes one self-contained file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from core.schemes import get_scheme
    from core.schemes.ort_schemes import SKIPPED_PRE_PROCESS_NOTE, over_tokens

    model = _loaded(encoder.onnx)
    assert over_tokens(model)
    built = get_scheme("ort-int8-dynamic").build(model, SchemeSpec("ort-int8-dynamic"), make_ctx("dyn"))
    assert SKIPPED_PRE_PROCESS_NOTE in built.notes
    assert built.artifact.parent.name == "dyn" and _external_tensors(built.artifact) == []
    assert not any(p.name.endswith(".data") for p in built.artifact.parent.iterdir())

    reference = tmp_path / "reference.onnx"
    quantize_dynamic(str(encoder.onnx), str(reference), weight_type=QuantType.QInt8)
    feeds = {"input_ids": encoder.data["input_ids"], "attention_mask": encoder.data["attention_mask"]}
    ours, theirs = _run(built.artifact, feeds), _run(reference, feeds)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)

    import onnx

    def integer_ops(path: Path) -> int:
        return sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in onnx.load(str(path)).graph.node)

    assert integer_ops(built.artifact) == integer_ops(reference) >= 4


def test_transformer_int4_packs_from_external_data(encoder: SimpleNamespace, make_ctx: Any) -> None:
    import onnx

    from core.schemes import get_scheme

    model = _loaded(encoder.onnx)
    spec = SchemeSpec.parse("ort-int4-weight:block_size=16")
    built = get_scheme("ort-int4-weight").build(model, spec, make_ctx("int4"))
    assert _external_tensors(built.artifact) == []
    packed = sum(n.op_type == "MatMulNBits" for n in onnx.load(str(built.artifact)).graph.node)
    assert packed >= 4
    feeds = {"input_ids": encoder.data["input_ids"], "attention_mask": encoder.data["attention_mask"]}
    logits = _run(built.artifact, feeds)[0]
    expected = _run(encoder.onnx, feeds)[0]
    assert logits.shape == expected.shape and np.mean(logits.argmax(-1) == expected.argmax(-1)) >= 0.75


def test_only_a_large_baseline_is_closed_while_the_variants_build() -> None:
    from core.engine.state import LARGE_BASELINE_BYTES, baseline_reopens
    from core.study.result import VariantResult, VariantStatus

    def baseline(size: int | None) -> VariantResult:
        return VariantResult("fp32", "fp32", VariantStatus.OK, is_baseline=True, size_bytes=size)

    assert not baseline_reopens(baseline(None))
    assert not baseline_reopens(baseline(LARGE_BASELINE_BYTES - 1))
    assert baseline_reopens(baseline(LARGE_BASELINE_BYTES))


def test_the_graph_read_without_weights_is_the_files_graph_minus_the_weight_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the op counts, the opset and the advice read of a large model: every node, input, output and
    initializer header as onnx.load gives them, and no weight data (an external reference is kept; a small
    initializer, here the 128-byte bias under a lowered limit, keeps its data)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    from core.schemes import onnx_external

    monkeypatch.setattr(onnx_external, "KEPT_INLINE_BYTES", 256)

    from core.schemes.coverage import onnx_file_op_counts
    from core.schemes.onnx_external import external_copy, load_without_weights
    from core.schemes.onnx_opset import file_opset

    single = make_mlp_onnx(tmp_path / "mlp.onnx")
    for path in (single, external_copy(single, tmp_path)):
        full, light = onnx.load(str(path), load_external_data=False), load_without_weights(path)
        assert light.graph.node == full.graph.node and light.graph.input == full.graph.input
        assert light.graph.output == full.graph.output and light.opset_import == full.opset_import
        assert [(t.name, list(t.dims), t.data_type) for t in light.graph.initializer] == [
            (t.name, list(t.dims), t.data_type) for t in full.graph.initializer]
        for light_t, full_t in zip(light.graph.initializer, full.graph.initializer, strict=True):
            assert light_t.raw_data == (full_t.raw_data if light_t.name == "b1" else b"")
            assert uses_external_data(light_t) == uses_external_data(full_t)
            assert list(light_t.external_data) == list(full_t.external_data)
        assert light.ByteSize() < 1024 < full.ByteSize() or uses_external_data(full.graph.initializer[0])
        assert onnx_file_op_counts(path) == {"MatMul": 2, "Add": 1, "Relu": 1} and file_opset(path) == 17


def _sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def test_a_large_models_int8_and_fp16_build_from_its_external_data(
    tmp_path: Path, make_ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a model of 512 MB or more takes (measured on a 2.2 GB one, whose external weights made
    quant_pre_process and the float16 converter fail, and float16 held the float model beside the half one): taken
    here by lowering the thresholds on a small MLP."""
    from core.models import load_model
    from core.schemes import get_scheme, onnx_external, ort_streamed
    from core.study.spec import ModelSpec

    monkeypatch.setattr(ort_streamed, "STREAMED_MIN_BYTES", 0)
    monkeypatch.setattr(onnx_external, "SINGLE_FILE_MAX_BYTES", 1000)
    path = make_mlp_onnx(tmp_path / "m" / "mlp.onnx", external_data="mlp.data")
    model = load_model(ModelSpec(path=str(path)))
    x = np.random.default_rng(5).standard_normal((32, 64)).astype(np.float32)
    expected = _run(path, {"x": x})[0]
    calibration = np.random.default_rng(6).standard_normal((16, 64)).astype(np.float32)
    for scheme_id, note, floor_db in (("ort-int8-dynamic", "quant_pre_process skipped", 25.0),
                                      ("ort-int8-static", "quant_pre_process skipped", 20.0),
                                      ("ort-fp16", "converted to float16 and written in turn", 50.0)):
        built = get_scheme(scheme_id).build(model, SchemeSpec(scheme_id), make_ctx(scheme_id, calibration))
        if note:
            assert any(note in n for n in built.notes), (scheme_id, built.notes)
        got = built.runner.predict(x)
        assert _sqnr_db(expected, got) > floor_db, scheme_id
        # Its own file (and data file beside it, past the single-file limit), never the float model's data.
        import onnx

        for tensor in onnx.load(str(built.artifact), load_external_data=False).graph.initializer:
            location = {e.key: e.value for e in tensor.external_data}.get("location")
            assert location in (None, built.artifact.name + ".data") or location.startswith(built.artifact.stem)
        built.runner.close()


def test_float16_weight_by_weight_equals_the_converter_on_the_whole_model(
    tmp_path: Path, make_ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.models import load_model
    from core.schemes import get_scheme, ort_schemes, ort_streamed
    from core.study.spec import ModelSpec

    model = load_model(ModelSpec(path=str(make_mlp_onnx(tmp_path / "m" / "mlp.onnx", seed=3))))
    x = np.random.default_rng(8).standard_normal((16, 64)).astype(np.float32)
    whole = get_scheme("ort-fp16").build(model, SchemeSpec("ort-fp16"), make_ctx("whole"))
    monkeypatch.setattr(ort_streamed, "STREAMED_MIN_BYTES", 0)
    streamed = get_scheme("ort-fp16").build(model, SchemeSpec("ort-fp16"), make_ctx("streamed"))
    assert ort_schemes.STREAMED_FP16_NOTE in streamed.notes and ort_schemes.STREAMED_FP16_NOTE not in whole.notes
    np.testing.assert_array_equal(whole.runner.predict(x), streamed.runner.predict(x))
    assert streamed.size_bytes == pytest.approx(whole.size_bytes, rel=0.05)
    whole.runner.close()
    streamed.runner.close()


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_static_int8_from_external_data_equals_onnx_runtimes_own_quantize_static(
    tmp_path: Path, make_ctx: Any, method: str
) -> None:
    """A large model's static int8 calibrates on one session reading the external weights and hands the ranges to
    quantize_static as a cache: the model it writes runs exactly as ONNX Runtime's own quantize_static's."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from core.schemes.ort_calls import quiet
    from core.schemes.ort_static import CalibrationReader, calibration_method
    from core.schemes.ort_streamed import quantize_static_external

    path = make_mlp_onnx(tmp_path / "m" / "mlp.onnx", external_data="mlp.data", seed=4)
    calibration = np.random.default_rng(9).standard_normal((12, 64)).astype(np.float32)
    options = {"quant_format": QuantFormat.QDQ, "activation_type": QuantType.QUInt8,
               "weight_type": QuantType.QInt8, "per_channel": True, "nodes_to_exclude": None}
    ctx = make_ctx("static", calibration)
    ours, theirs = tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
    ranges = tmp_path / "ranges.json"
    quantize_static_external(path, ours, CalibrationReader("x", calibration, ctx, "s"), 4, None, options,
                             calibration_method(method), ranges)
    assert ranges.exists()  # kept for a later variant calibrated the same way
    quiet(quantize_static, str(path), str(theirs), CalibrationReader("x", calibration, ctx, "s"),
          calibrate_method=calibration_method(method),
          extra_options={"CalibMovingAverage": False, "CalibStridedMinMax": 4}, **options)
    x = np.random.default_rng(10).standard_normal((16, 64)).astype(np.float32)
    np.testing.assert_array_equal(_run(ours, {"x": x})[0], _run(theirs, {"x": x})[0])
    ops = [[n.op_type for n in onnx.load(str(f)).graph.node] for f in (ours, theirs)]
    assert ops[0] == ops[1] and "QuantizeLinear" in ops[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["mlp.data", "mlp.onnx"]  # nothing left beside it


@pytest.mark.parametrize("scheme_id", ["onnx-fp32", "ort-int8-static", "ort-fp16", "ort-int8-dynamic"])
def test_a_large_models_coverage_counted_from_one_profiled_call_equals_its_written_out_graph(
    tiny_torch_loaded: Any, make_ctx: Any, scheme_id: str, tmp_path: Path
) -> None:
    """A model of 512 MB or more is counted from the nodes one profiled call runs (writing its optimized graph
    out holds the weights about twice more): the same op counts as the graph the session writes out, on a
    convolutional network in float, QDQ static int8 (fused), float16 (casts inserted) and dynamic int8."""
    from core.schemes import get_scheme
    from core.schemes.coverage import profiled_op_counts

    built = get_scheme(scheme_id).build(tiny_torch_loaded, SchemeSpec(scheme_id), make_ctx(scheme_id))
    written = built.coverage["ops"]
    assert built.coverage["graph"].startswith("optimized graph")  # a small model: its written-out graph
    profiled = profiled_op_counts(built.artifact, 1, tmp_path)
    assert profiled == written and sum(profiled.values()) > 3
    assert not list(tmp_path.glob("*coverage_profile*"))  # the profile goes once read
    built.runner.close()
