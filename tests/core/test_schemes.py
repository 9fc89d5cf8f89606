"""Each scheme built for real on the tiny CNN (PyTorch and ONNX) and on a hand-written MLP graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.errors import BadInput, SchemeNotApplicable
from core.models import load_model
from core.schemes import catalogue, get_scheme
from core.study.spec import ModelSpec, SchemeSpec

#: The foundation schemes tested here; other families add more to the catalogue.
SCHEME_IDS = ("fp32", "onnx-fp32", "torch-int8-dynamic", "ort-int8-dynamic", "ort-int8-static", "ort-fp16")


@pytest.fixture
def onnx_loaded(tiny_onnx: Path) -> Any:
    return load_model(ModelSpec(path=str(tiny_onnx)))


@pytest.fixture
def reference(tiny_cnn: Any, tiny_x: np.ndarray, kit: SimpleNamespace) -> np.ndarray:
    """The float PyTorch model's outputs on the tiny inputs."""
    return kit.torch_outputs(tiny_cnn, tiny_x)


def _build(model: Any, text: str, make_ctx: Callable[..., Any], **ctx_kwargs: Any) -> tuple[Any, Any]:
    spec = SchemeSpec.parse(text)
    ctx = make_ctx(spec.id, **ctx_kwargs)
    built = get_scheme(spec.id).build(model, spec, ctx)
    return built, ctx


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def _sqnr_db(reference: np.ndarray, out: np.ndarray) -> float:
    """Signal to quantization-noise ratio; int8 of this tiny CNN measures about 35-40 dB, fp16 about 70."""
    noise = np.sum((out.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))


def test_catalogue_lists_every_scheme_once() -> None:
    ids = [s.info.id for s in catalogue()]
    assert len(ids) == len(set(ids))
    assert ids[0] == "fp32", "the baseline comes first"
    assert [i for i in ids if i in SCHEME_IDS] == list(SCHEME_IDS)
    for scheme in catalogue():
        assert scheme.info.description and "\n" not in scheme.info.description
        assert get_scheme(scheme.info.id).info == scheme.info
    assert get_scheme("ort-int8-static").info.needs_calibration


def test_an_unknown_scheme_is_bad_input() -> None:
    with pytest.raises(BadInput, match="'int3-magic' is not a known scheme"):
        get_scheme("int3-magic")


def test_sizes_of_the_onnx_variants(onnx_loaded: Any, make_ctx: Callable[..., Any]) -> None:
    float_bytes = onnx_loaded.file_bytes
    sizes = {}
    for text in ("ort-int8-static:samples=32", "ort-int8-dynamic", "ort-fp16"):
        built, _ = _build(onnx_loaded, text, make_ctx)
        assert built.artifact is not None and built.artifact.stat().st_size == built.size_bytes
        sizes[text.split(":")[0]] = built.size_bytes
        built.runner.close()

    # The tiny CNN is 98 % Linear weights: int8 keeps a quarter of them, float16 half.
    assert sizes["ort-int8-static"] < 0.40 * float_bytes
    assert sizes["ort-int8-dynamic"] < 0.40 * float_bytes
    assert 0.45 * float_bytes < sizes["ort-fp16"] < 0.55 * float_bytes


def test_fp32_on_onnx_is_the_file_as_loaded(
    onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, _ = _build(onnx_loaded, "fp32", make_ctx)
    assert built.size_bytes == onnx_loaded.file_bytes
    assert built.runner.runtime == "onnxruntime"
    assert built.coverage["conv_float"] == 2 and built.coverage["conv_integer"] == 0
    assert built.coverage["summary"].startswith("as loaded")
    np.testing.assert_allclose(built.runner.predict(tiny_x), reference, rtol=1e-4, atol=1e-5)


def test_static_int8_quantizes_both_convolutions(
    onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, ctx = _build(onnx_loaded, "ort-int8-static:samples=32", make_ctx)

    cov = built.coverage
    assert cov["conv_integer"] == 2 and cov["conv_float"] == 0
    assert cov["matmul_integer"] == 2 and cov["matmul_float"] == 0
    assert cov["calibration_samples"] == 32 and cov["calibration"] == "minmax"
    assert cov["activations"] == "u8" and cov["weights"] == "s8" and cov["per_channel"] is True
    assert ctx.calibration_requests == [32]
    assert "calibrating" in ctx.progress.stages
    out = built.runner.predict(tiny_x)
    assert out.shape == reference.shape
    assert _agreement(out, reference) >= 0.9
    assert _sqnr_db(reference, out) > 25


def test_static_int8_options_are_applied(onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray) -> None:
    built, ctx = _build(
        onnx_loaded, "ort-int8-static:calibration=entropy,activations=s8,samples=16,exclude=Gemm", make_ctx
    )

    cov = built.coverage
    assert cov["calibration"] == "entropy" and cov["activations"] == "s8"
    assert cov["calibration_samples"] == 16 and ctx.calibration_requests == [16]
    # Both Linear layers (Gemm) were kept in float; the convolutions are still integer.
    assert cov["matmul_integer"] == 0 and cov["matmul_float"] == 2
    assert cov["conv_integer"] == 2
    # With the weight-heavy Gemms in float the file stays about as big as the float one.
    assert built.size_bytes > 0.9 * onnx_loaded.file_bytes
    assert built.runner.predict(tiny_x[:4]).shape == (4, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ort-int8-static:calibration=median", "calibration must be one of minmax, entropy, percentile"),
        ("ort-int8-static:activations=s16", "activations must be one of u8, s8"),
        ("ort-int8-static:samples=lots", "samples must be a whole number"),
        ("ort-int8-static:samples=0", "samples must be positive"),
        ("ort-int8-static:per_channel=maybe", "per_channel must be one of true, false"),
        ("ort-int8-static:colour=blue", "unknown parameter 'colour'"),
        ("ort-int8-static:samples=8,exclude=Softmax", "exclude='Softmax' is neither a node name nor an op type"),
        ("ort-int8-dynamic:per_channel=sometimes", "per_channel must be true or false"),
    ],
)
def test_bad_option_values_are_bad_input(
    onnx_loaded: Any, make_ctx: Callable[..., Any], text: str, expected: str
) -> None:
    with pytest.raises(BadInput, match=expected):
        _build(onnx_loaded, text, make_ctx)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prune-l1:sparsity=2", "sparsity must be a number above 0 and at most 0.95, not '2'"),
        ("prune-l1:sparsity=nan", "sparsity must be a number above 0 and at most 0.95, not 'nan'"),
        ("prune-channels:ratio=0.95", "ratio must be a number above 0 and at most 0.9, not '0.95'"),
        ("prune-channels:samples=2.5", "samples must be a whole number, not '2.5'"),
        ("prune-l1:sparsity=0.5,sparsity=0.9", "sparsity is given more than once; give it one value"),
        ("ort-int8-static:calibration=median", "calibration must be one of minmax, entropy, percentile, not 'median'"),
    ],
)
def test_a_study_with_a_bad_option_is_refused_before_anything_runs(
    tiny_onnx: Path, tiny_npz: Path, text: str, expected: str
) -> None:
    from core.engine.run import run_study
    from core.study.spec import DatasetSpec, StudySpec, TimingSpec, VariantSpec

    # As a project file or the window would hand it over: the spec is not checked on the way in.
    spec = StudySpec(model=ModelSpec(path=str(tiny_onnx)), dataset=DatasetSpec.parse(f"npz:{tiny_npz}"),
                     variants=(VariantSpec(scheme=SchemeSpec.parse(text)),), timing=TimingSpec(max_time_s=0.05))
    events = run_study(spec)
    with pytest.raises(BadInput) as caught:
        next(events)  # not even the StudyStarted: the baseline is not evaluated first
    assert str(caught.value) == f"scheme {text}: {expected}."


def test_option_values_are_checked_by_kind() -> None:
    from core.schemes.base import SchemeParam
    from core.schemes.params import number_param, param_problem

    count = SchemeParam("samples", "200", "", kind="count")
    share = SchemeParam("ratio", "0.3", "", kind="fraction", upper=0.9)
    assert [param_problem(count, v) for v in ("1", "200")] == [None, None]
    assert [param_problem(share, v) for v in ("0.9", "1e-3")] == [None, None]
    assert param_problem(count, "-1") == "samples must be positive, not -1"
    assert param_problem(share, "0") == "ratio must be a number above 0 and at most 0.9, not '0'"
    assert param_problem(share, "inf") is not None and param_problem(share, "") is not None
    assert param_problem(SchemeParam("exclude", "", ""), "any;thing") is None  # text: read by the build
    info = get_scheme("prune-channels").info
    assert number_param(SchemeSpec("prune-channels"), info, "ratio") == 0.3  # the default
    assert info.params[0].explained == "fraction of channels removed from each prunable layer (0 to 0.9)"
    assert number_param(SchemeSpec("prune-channels", (("samples", "64"),)), info, "samples") == 64
    # Every free-text option of the catalogue that holds a number says which kind of number.
    for scheme in catalogue():
        for param in scheme.info.params:
            if not param.choices and param.name != "exclude":
                assert param.kind in ("count", "fraction"), (scheme.info.id, param.name)
                assert param_problem(param, param.default) is None, (scheme.info.id, param.name)


def test_dynamic_int8_on_onnx(
    onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, _ = _build(onnx_loaded, "ort-int8-dynamic", make_ctx)
    assert built.coverage["integer_compute_ops"] == 4  # 2 ConvInteger + 2 integer MatMul
    out = built.runner.predict(tiny_x)
    assert _agreement(out, reference) >= 0.9
    assert _sqnr_db(reference, out) > 25


def test_fp16_keeps_float_inputs_and_outputs(
    onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, _ = _build(onnx_loaded, "ort-fp16", make_ctx)
    out = built.runner.predict(tiny_x)
    assert out.dtype == np.float32
    assert built.coverage["integer_compute_ops"] == 0
    assert _agreement(out, reference) >= 0.95
    assert _sqnr_db(reference, out) > 50
    np.testing.assert_allclose(out, reference, atol=5e-3)


def test_torch_dynamic_int8_quantizes_exactly_the_linear_layers(
    tiny_torch_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, _ = _build(tiny_torch_loaded, "torch-int8-dynamic", make_ctx)

    cov = built.coverage
    assert cov["quantized_layers"] == 2
    assert cov["quantized"] == {"Linear": 2}
    assert cov["float"] == {"Conv2d": 2}
    assert built.runner.runtime == "pytorch"
    assert built.size_bytes < 0.40 * tiny_torch_loaded.file_bytes
    assert _agreement(built.runner.predict(tiny_x), reference) >= 0.9
    # The loaded model itself is untouched (the scheme works on a copy).
    assert type(tiny_torch_loaded.handle[1][1]).__module__.startswith("torch.nn.modules")


def test_onnx_fp32_export_matches_pytorch(
    tiny_torch_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, ctx = _build(tiny_torch_loaded, "onnx-fp32", make_ctx)
    assert built.runner.runtime == "onnxruntime"
    assert built.coverage["float_compute_ops"] == 4 and built.coverage["integer_compute_ops"] == 0
    np.testing.assert_allclose(built.runner.predict(tiny_x), reference, rtol=1e-4, atol=1e-5)
    # The export is cached for the other ONNX Runtime schemes of the same study.
    assert Path(ctx.shared["onnx_fp32"]).is_file()


def test_ort_schemes_start_from_a_pytorch_model(
    tiny_torch_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, reference: np.ndarray
) -> None:
    built, _ = _build(tiny_torch_loaded, "ort-int8-static:samples=16", make_ctx)
    assert built.coverage["conv_integer"] == 2
    assert _agreement(built.runner.predict(tiny_x), reference) >= 0.9


def test_applicability_reasons(onnx_loaded: Any, tiny_torch_loaded: Any) -> None:
    onnx_reasons = {sid: get_scheme(sid).applicability(onnx_loaded) for sid in SCHEME_IDS}
    assert "already ONNX" in onnx_reasons["onnx-fp32"]
    assert "eager PyTorch" in onnx_reasons["torch-int8-dynamic"]
    for sid in ("fp32", "ort-int8-dynamic", "ort-int8-static", "ort-fp16"):
        assert onnx_reasons[sid] is None, sid

    assert all(get_scheme(sid).applicability(tiny_torch_loaded) is None for sid in SCHEME_IDS)


def test_not_applicable_schemes_refuse_to_build(onnx_loaded: Any, make_ctx: Callable[..., Any]) -> None:
    for text in ("onnx-fp32", "torch-int8-dynamic"):
        with pytest.raises(SchemeNotApplicable):
            _build(onnx_loaded, text, make_ctx)


def test_torch_dynamic_int8_needs_a_linear_layer(tiny_torch_loaded: Any) -> None:
    from dataclasses import replace

    from torch import nn

    convs_only = replace(tiny_torch_loaded, handle=nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval())
    assert "no Linear" in get_scheme("torch-int8-dynamic").applicability(convs_only)


def test_an_unknown_input_shape_blocks_the_onnx_export(tiny_torch_loaded: Any) -> None:
    from dataclasses import replace

    from core.models.loaded import TensorInfo

    shapeless = replace(tiny_torch_loaded, inputs=[TensorInfo("input", ("batch",), "float32")])
    assert "--input-shape" in get_scheme("ort-int8-static").applicability(shapeless)


def test_dynamic_int8_advice_on_a_conv_net_only(onnx_loaded: Any, tmp_path: Path, kit: SimpleNamespace) -> None:
    dynamic = get_scheme("ort-int8-dynamic")
    advice = dynamic.advice(onnx_loaded, {"cpu_flags": {}})
    assert len(advice) == 1 and "ort-int8-static" in advice[0] and "2 Conv" in advice[0]

    mlp = load_model(ModelSpec(path=str(kit.make_mlp_onnx(tmp_path / "mlp.onnx"))))
    assert dynamic.advice(mlp, {"cpu_flags": {}}) == []


def test_static_int8_on_a_matmul_graph(tmp_path: Path, kit: SimpleNamespace, make_ctx: Callable[..., Any]) -> None:
    mlp = load_model(ModelSpec(path=str(kit.make_mlp_onnx(tmp_path / "mlp.onnx"))))
    x = np.random.default_rng(2).standard_normal((32, 64)).astype(np.float32)
    built, _ = _build(mlp, "ort-int8-static:samples=32", make_ctx, calibration=x)
    assert built.coverage["matmul_integer"] == 2 and built.coverage["conv_integer"] == 0
    float_out = get_scheme("fp32").build(mlp, SchemeSpec("fp32"), make_ctx("fp32")).runner.predict(x)
    out = built.runner.predict(x)
    assert _agreement(out, float_out) >= 0.85
    # Only 2 400 weights: the scales, zero points and QDQ nodes are a visible share of the file.
    assert built.size_bytes < 0.6 * mlp.file_bytes


def test_cancelling_stops_calibration(onnx_loaded: Any, make_ctx: Callable[..., Any]) -> None:
    from core.errors import Cancelled
    from core.study.cancel import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        _build(onnx_loaded, "ort-int8-static:samples=8", make_ctx, cancel=token)



def test_chunked_calibration_gives_the_same_ranges_as_one_pass(
    onnx_loaded: Any, make_ctx: Callable[..., Any], tiny_x: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibrating in chunks bounds memory; for min-max it must not change a single scale."""
    import onnx
    from onnx import numpy_helper

    from core.schemes import ort_static

    assert ort_static.calibration_chunk(200) == 4 and ort_static.calibration_chunk(30) == 3
    assert ort_static.calibration_chunk(200, limit=16) == 10 and ort_static.calibration_chunk(17) == 1

    def scales(built: Any) -> dict[str, np.ndarray]:
        graph = onnx.load(str(built.artifact)).graph
        return {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.endswith("_scale")}

    a = scales(_build(onnx_loaded, "ort-int8-static:samples=32", make_ctx)[0])  # read now: builds share a folder
    monkeypatch.setattr(ort_static, "calibration_chunk", lambda n, limit=4: n)  # one pass over all samples
    b = scales(_build(onnx_loaded, "ort-int8-static:samples=32", make_ctx)[0])
    assert a.keys() == b.keys() and len(a) > 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
