"""The PyTorch precision, static and weight-only int8, pruning and ONNX Runtime int4 schemes.

Each scheme is built on tiny real networks made here (the shared tiny CNN, an MLP, an
LSTM and a small transformer block), run in its real runtime, and checked for what it
must do: the file shrinks where it must, the coverage counts what really changed,
outputs stay close to the float model's, and advice appears where it should.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import BadInput
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo
from core.study.spec import Device, SchemeSpec

NO_FLAGS: dict[str, Any] = {"device": "cpu", "cpu_flags": {}}


def loaded_torch(module: Any, sample_shape: tuple[int, ...], out_dim: int, tmp_path: Path, name: str) -> LoadedModel:
    """An eager PyTorch LoadedModel for ``module`` with its state dict written to ``tmp_path``."""
    import torch

    path = tmp_path / f"{name}.pt"
    torch.save(module.state_dict(), str(path))
    return LoadedModel(
        path=path,
        format=ModelFormat.TORCH_STATE_DICT,
        inputs=[TensorInfo("input", ("batch", *sample_shape), "float32")],
        outputs=[TensorInfo("output", ("batch", out_dim), "float32")],
        params=sum(int(p.numel()) for p in module.parameters()),
        file_bytes=path.stat().st_size,
        handle=module,
        arch=name,
    )


def float_out(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).float().numpy()


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - out) ** 2), 1e-30)))


def make_mlp(seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    ).eval()


def make_lstm(seed: int = 0) -> Any:
    import torch

    class Tagger(torch.nn.Module):
        """(N, 6 steps, 8) ─ Linear 32 ─ LSTM 32 ─ last step ─ Linear 5."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(8, 32)
            self.lstm = torch.nn.LSTM(32, 32, batch_first=True)
            self.head = torch.nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(torch.relu(self.embed(x)))[0][:, -1])

    torch.manual_seed(seed)
    return Tagger().eval()


def make_transformer(seed: int = 0) -> Any:
    import torch

    class Block(torch.nn.Module):
        """One encoder block (d_model 64, 4 heads) on 8 tokens, mean-pooled into 5 outputs."""

        def __init__(self) -> None:
            super().__init__()
            self.block = torch.nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(64, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.block(x).mean(dim=1))

    torch.manual_seed(seed)
    return Block().eval()


@pytest.fixture
def tiny(tiny_torch_loaded: LoadedModel, tiny_x: np.ndarray) -> tuple[LoadedModel, np.ndarray, np.ndarray]:
    return tiny_torch_loaded, tiny_x, float_out(tiny_torch_loaded.handle, tiny_x)


def build(scheme_id: str, model: LoadedModel, ctx: Any, **params: str) -> Any:
    from core.schemes import get_scheme

    spec = SchemeSpec(scheme_id, tuple(params.items()))
    return get_scheme(scheme_id).build(model, spec, ctx)


# --------------------------------------------------------------------------- the catalogue

ALL_IDS = (
    "fp32", "onnx-fp32", "torch-fp16", "torch-bf16", "torch-int8-dynamic", "torch-int8-static",
    "torch-int8-weight-only", "prune-l1", "prune-channels", "ort-int8-dynamic", "ort-int8-static", "ort-fp16",
    "ort-int4-weight",
)


def test_quantbench_schemes_lists_every_scheme_with_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.main import main

    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert listed == list(ALL_IDS)
    assert out.count("needs: ") == len(ALL_IDS)
    assert "calibration samples from the dataset" in out
    for param in ("block_size=32 (16|32|64|128|256)", "sparsity=0.5", "int8=none (none|dynamic|static)"):
        assert param in out


# --------------------------------------------------------------------------- torch-fp16 / torch-bf16


@pytest.mark.parametrize("scheme_id,dtype", [("torch-fp16", "float16"), ("torch-bf16", "bfloat16")])
def test_half_precision_halves_the_file_and_stays_close(tiny: Any, make_ctx: Any, scheme_id: str, dtype: str) -> None:
    model, x, ref = tiny
    built = build(scheme_id, model, make_ctx(scheme_id))
    assert built.size_bytes < 0.55 * model.file_bytes
    cov = built.coverage
    assert (cov["converted_layers"], cov["float_layers"], cov["dtype"]) == (4, 0, dtype)
    assert cov["converted_params"] == cov["total_params"] == model.params
    assert cov["summary"].startswith(f"4 of 4 layers in {dtype}")
    out = built.runner.predict(x)
    assert out.dtype == np.float32
    assert agreement(ref, out) >= 0.95
    assert sqnr_db(ref, out) > (35 if dtype == "float16" else 25)


@pytest.mark.parametrize("scheme_id,native", [("torch-fp16", "avx512_fp16"), ("torch-bf16", "avx512_bf16")])
def test_half_precision_warns_on_a_cpu_without_native_support(tiny: Any, scheme_id: str, native: str) -> None:
    from core.schemes import get_scheme

    scheme = get_scheme(scheme_id)
    assert any("no native" in a for a in scheme.advice(tiny[0], NO_FLAGS))
    assert scheme.advice(tiny[0], {"device": "cpu", "flags": {native: True}}) == []
    assert scheme.advice(tiny[0], {"device": "cuda", "cpu_flags": {}}) == []


def test_half_precision_keeps_the_convolution_layout_it_measured_faster(tiny: Any, make_ctx: Any) -> None:
    import re

    import torch

    model, x, ref = tiny
    auto = build("torch-fp16", model, make_ctx("fp16-auto"))
    note = next(n for n in auto.notes if "channels-last" in n)
    # The note gives the two measured call times; the layout kept is the faster one (a tie keeps contiguous).
    last_ms, contiguous_ms = (float(v.replace(",", "")) for v in re.findall(r"([0-9.,]+) ms", note)[:2])
    if "kept contiguous" in note:
        assert last_ms >= 0.9 * contiguous_ms
    else:
        assert last_ms < 0.9 * contiguous_ms
    # (a weight with one input channel is contiguous in both layouts: only the others tell)
    weights = [p for p in auto.runner.module.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert weights and all(
        w.is_contiguous(memory_format=torch.channels_last) == ("kept contiguous" not in note) for w in weights
    )
    # Asked for: the layout is set without timing, and the outputs do not depend on it.
    forced = build("torch-fp16", model, make_ctx("fp16-last"), memory_format="channels_last")
    plain = build("torch-fp16", model, make_ctx("fp16-plain"), memory_format="contiguous")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in forced.runner.module.parameters()
               if w.dim() == 4)
    assert not any(w.is_contiguous(memory_format=torch.channels_last) for w in plain.runner.module.parameters()
                   if w.dim() == 4 and w.shape[1] > 1)
    assert not any("channels-last" in n for n in plain.notes)
    assert sqnr_db(plain.runner.predict(x), forced.runner.predict(x)) > 60
    assert sqnr_db(ref, auto.runner.predict(x)) > 35
    with pytest.raises(BadInput, match="memory_format must be one of auto, channels_last, contiguous"):
        build("torch-fp16", model, make_ctx("fp16-bad"), memory_format="nhwc")


def test_half_precision_runs_an_lstm(tmp_path: Path, make_ctx: Any) -> None:
    lstm = make_lstm()
    model = loaded_torch(lstm, (6, 8), 5, tmp_path, "lstm")
    x = np.random.default_rng(0).standard_normal((16, 6, 8)).astype(np.float32)
    built = build("torch-fp16", model, make_ctx("lstm-fp16"))
    assert built.coverage["converted_layers"] == 3  # the LSTM and both Linear layers
    assert sqnr_db(float_out(lstm, x), built.runner.predict(x)) > 30


def test_half_precision_runs_on_the_gpu_when_there_is_one(tiny: Any, make_ctx: Any) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    model, x, ref = tiny
    ctx = make_ctx("fp16-cuda")
    ctx.device = Device.CUDA
    built = build("torch-fp16", model, ctx)
    assert built.runner.device.type == "cuda"
    assert sqnr_db(ref, built.runner.predict(x)) > 35
    assert built.runner.prepare_call(x[:8])() is not None  # synchronised before the clock is read


# --------------------------------------------------------------------------- torch-int8-static


def test_static_int8_quantizes_every_layer_and_shrinks_the_file(tiny: Any, make_ctx: Any) -> None:
    model, x, ref = tiny
    ctx = make_ctx("static")
    built = build("torch-int8-static", model, ctx)
    cov = built.coverage
    assert (cov["quantized_layers"], cov["float_layers"]) == (4, 0)
    assert cov["summary"].startswith("4 of 4 Conv/Linear as int8 kernels")
    assert cov["not_quantized"] == [] and cov["untraceable"] == []
    # Quantize once at the input, dequantize for Flatten, quantize again, dequantize at the output.
    assert "2 quantize, 2 dequantize" in cov["summary"] and cov["conversions"] == 4
    assert cov["calibration_samples"] == 64 and ctx.calibration_requests == [200]
    assert "calibrating" in ctx.progress.stages
    assert built.size_bytes < 0.35 * model.file_bytes
    out = built.runner.predict(x)
    assert agreement(ref, out) >= 0.9
    assert sqnr_db(ref, out) > 15


def test_static_int8_per_tensor_option_and_bad_options(tiny: Any, make_ctx: Any) -> None:
    model, x, ref = tiny
    built = build("torch-int8-static", model, make_ctx("per-tensor"), per_channel="false", samples="32")
    assert built.coverage["per_channel"] is False and built.coverage["calibration_samples"] == 32
    assert agreement(ref, built.runner.predict(x)) >= 0.85
    with pytest.raises(BadInput, match="per_channel must be one of true, false"):
        build("torch-int8-static", model, make_ctx("bad1"), per_channel="maybe")
    with pytest.raises(BadInput, match="unknown parameter 'bits'"):
        build("torch-int8-static", model, make_ctx("bad2"), bits="4")


def make_branchy(seed: int = 0) -> Any:
    """A CNN whose head branches on tensor values, which FX cannot trace; its ``rare`` layer never runs."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(256, 10)
            self.rare = torch.nn.Linear(10, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            if bool(y.abs().sum() < 0):  # never true: data-dependent control flow
                y = self.rare(y)
            return y

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
            self.flat = torch.nn.Flatten()
            self.head = Head()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.flat(self.features(x)))

    torch.manual_seed(seed)
    return Branchy().eval()


def test_static_int8_quantizes_an_untraceable_model_part_by_part_and_names_what_stays_float(
    tmp_path: Path, tiny_x: np.ndarray, make_ctx: Any
) -> None:
    net = make_branchy()
    model = loaded_torch(net, (1, 8, 8), 10, tmp_path, "branchy")
    built = build("torch-int8-static", model, make_ctx("branchy"))
    cov = built.coverage
    assert (cov["quantized_layers"], cov["float_layers"]) == (2, 1)
    assert cov["float_modules"] == ["head.rare"]
    assert cov["not_quantized"] == [
        {"module": "head.rare", "reason": "left in float (never called on the calibration input)"}
    ]
    assert [u["module"] for u in cov["untraceable"]] == ["(model)", "head"]
    assert "control flow" in cov["untraceable"][1]["reason"]
    assert "head.rare: left in float" in cov["summary"]
    ref = float_out(net, tiny_x)
    assert sqnr_db(ref, built.runner.predict(tiny_x)) > 15


def test_static_int8_advice_and_cuda_fallback_to_cpu(tiny: Any, make_ctx: Any) -> None:
    from core.schemes import get_scheme

    model, x, _ = tiny
    scheme = get_scheme("torch-int8-static")
    assert any("VNNI" in a for a in scheme.advice(model, NO_FLAGS))
    assert scheme.advice(model, {"device": "cpu", "flags": {"avx512_vnni": True}}) == []
    assert any("CPU only" in a for a in scheme.advice(model, {"device": "cuda", "flags": {"amx_int8": True}}))
    ctx = make_ctx("cuda")
    ctx.device = Device.CUDA  # no GPU needed: the int8 module must stay on the CPU
    built = build("torch-int8-static", model, ctx)
    assert built.runner.device.type == "cpu"
    assert any("timed on the CPU" in n for n in built.notes)
    assert built.runner.predict(x[:4]).shape == (4, 10)


# --------------------------------------------------------------------------- torch-int8-weight-only


def test_weight_only_int8_shrinks_linear_layers(tmp_path: Path, make_ctx: Any) -> None:
    mlp = make_mlp()
    model = loaded_torch(mlp, (64,), 10, tmp_path, "mlp")
    x = np.random.default_rng(2).standard_normal((64, 64)).astype(np.float32)
    built = build("torch-int8-weight-only", model, make_ctx("w8"))
    cov = built.coverage
    assert (cov["quantized_layers"], cov["float_layers"]) == (3, 0)
    assert cov["integer_fraction"] == 0.0  # the arithmetic stays float
    assert built.size_bytes < 0.35 * model.file_bytes
    ref = float_out(mlp, x)
    out = built.runner.predict(x)
    assert agreement(ref, out) >= 0.95 and sqnr_db(ref, out) > 30


def test_weight_only_leaves_convolutions_and_lstms_in_float_and_says_so(
    tiny: Any, tmp_path: Path, make_ctx: Any
) -> None:
    from core.schemes import get_scheme

    model = tiny[0]
    scheme = get_scheme("torch-int8-weight-only")
    advice = scheme.advice(model, NO_FLAGS)
    assert any("dequantized on every call" in a for a in advice)
    assert any("2 convolutions keep their float weights" in a for a in advice)
    assert not any("dequantized" in a for a in scheme.advice(model, {"device": "cuda"}))
    built = build("torch-int8-weight-only", model, make_ctx("w8-cnn"))
    assert (built.coverage["quantized_layers"], built.coverage["float"]) == (2, {"Conv2d": 2})
    lstm = loaded_torch(make_lstm(), (6, 8), 5, tmp_path, "lstm")
    built = build("torch-int8-weight-only", lstm, make_ctx("w8-lstm"))
    assert (built.coverage["quantized_layers"], built.coverage["float"]) == (2, {"LSTM": 1})
    no_linear = loaded_torch(tiny[0].handle[0], (1, 8, 8), 16, tmp_path, "convs")
    assert "no Linear layer" in (scheme.applicability(no_linear) or "")


# --------------------------------------------------------------------------- prune-l1


def test_l1_pruning_reaches_the_sparsity_but_not_a_smaller_file(tiny: Any, make_ctx: Any) -> None:
    from core.schemes import get_scheme

    model, x, ref = tiny
    built = build("prune-l1", model, make_ctx("l1"), sparsity="0.5")
    cov = built.coverage
    assert cov["pruned_layers"] == 4 and cov["dense_storage"] is True
    assert cov["sparsity"] == pytest.approx(0.5, abs=0.01)
    handle = built.runner.module
    weights = [m.weight for m in handle.modules() if type(m).__name__ in ("Conv2d", "Linear")]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == cov["zero_weights"]
    # Honest size: dense storage does not shrink; compression shows what sparsity could save.
    assert abs(built.size_bytes - model.file_bytes) < 0.01 * model.file_bytes
    assert cov["compressed_bytes"] < 0.8 * cov["baseline_compressed_bytes"]
    assert any("no speed-up" in n for n in built.notes)
    assert get_scheme("prune-l1").advice(model, NO_FLAGS)
    out = built.runner.predict(x)
    # Half the weights of an untrained net gone, no fine-tuning: still far above chance (10 %).
    assert agreement(ref, out) >= 0.3 and sqnr_db(ref, out) > 6


def test_l1_pruning_variants_of_a_study_compress_the_float_model_once(
    tiny: Any, make_ctx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from core.schemes import pruning

    model = tiny[0]
    reference = tmp_path / "float_reference.pt"  # torch.save names its records after the file
    torch.save(model.handle.state_dict(), str(reference))
    compressed: list[str] = []
    real = pruning.compressed_size
    monkeypatch.setattr(pruning, "compressed_size", lambda path: compressed.append(Path(path).stem) or real(path))
    first = build("prune-l1", model, make_ctx("l1-30"), sparsity="0.3")
    second = build("prune-l1", model, make_ctx("l1-70"), sparsity="0.7")
    # The float model is compressed for the first variant only; both compare with the same figure, which is
    # the float state dict's own compressed size, and the sparser variant compresses further.
    assert compressed == ["prune_l1", "float_reference", "prune_l1"]
    assert first.coverage["baseline_compressed_bytes"] == second.coverage["baseline_compressed_bytes"]
    assert first.coverage["baseline_compressed_bytes"] == real(reference)
    assert second.coverage["compressed_bytes"] < first.coverage["compressed_bytes"]
    assert not list((tmp_path / "study").rglob("float_reference.pt"))  # its file is not left behind


def test_l1_pruning_refuses_a_sparsity_out_of_range(tiny: Any, make_ctx: Any) -> None:
    with pytest.raises(BadInput, match=r"sparsity must be a number above 0 and at most 0\.95"):
        build("prune-l1", tiny[0], make_ctx("bad"), sparsity="1.5")


# --------------------------------------------------------------------------- prune-channels


def _state_dict_bytes(module: Any) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return len(buf.getvalue())


def test_channel_pruning_removes_channels_so_the_file_shrinks(tiny: Any, make_ctx: Any) -> None:
    model, x, ref = tiny
    built = build("prune-channels", model, make_ctx("channels"), ratio="0.5")
    cov = built.coverage
    assert cov["channels"] == {
        "0.0": {"before": 8, "after": 4},
        "0.2": {"before": 16, "after": 8},
        "1.1": {"before": 128, "after": 64},
    }  # the output layer 1.3 keeps its 10 classes
    assert cov["params_after"] == sum(int(p.numel()) for p in built.runner.module.parameters())
    assert cov["params_after"] < 0.3 * cov["params_before"]
    assert built.size_bytes == pytest.approx(_state_dict_bytes(built.runner.module), rel=0.01)
    assert built.size_bytes < 0.3 * model.file_bytes
    out = built.runner.predict(x)
    assert out.shape == ref.shape
    assert np.isfinite(out).all() and np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.3


@pytest.mark.parametrize("int8,quantized", [("dynamic", 2), ("static", 4)])
def test_channel_pruning_with_int8_on_top(tiny: Any, make_ctx: Any, int8: str, quantized: int) -> None:
    model, x, _ref = tiny
    pruned = build("prune-channels", model, make_ctx("plain"), ratio="0.25")
    built = build("prune-channels", model, make_ctx(f"int8-{int8}"), ratio="0.25", int8=int8, samples="32")
    assert built.coverage["quantized_layers"] == quantized and built.coverage["int8"] == int8
    assert built.size_bytes < 0.45 * pruned.size_bytes
    assert agreement(pruned.runner.predict(x), built.runner.predict(x)) >= 0.85


def test_channel_pruning_handles_an_mlp_and_an_lstm(tmp_path: Path, make_ctx: Any) -> None:
    mlp = loaded_torch(make_mlp(), (64,), 10, tmp_path, "mlp")
    built = build("prune-channels", mlp, make_ctx("mlp", np.zeros((4, 64), np.float32)), ratio="0.5")
    assert built.coverage["params_after"] < 0.4 * built.coverage["params_before"]
    assert built.runner.predict(np.ones((3, 64), np.float32)).shape == (3, 10)
    lstm = loaded_torch(make_lstm(), (6, 8), 5, tmp_path, "lstm")
    seqs = np.random.default_rng(0).standard_normal((4, 6, 8)).astype(np.float32)
    built = build("prune-channels", lstm, make_ctx("lstm", seqs), ratio="0.5")
    # The LSTM keeps its hidden size; the layer feeding it loses half its outputs, and the LSTM its inputs.
    assert built.coverage["channels"] == {"embed": {"before": 32, "after": 16}}
    assert built.coverage["kept_whole"] == ["head", "lstm"]
    assert built.runner.module.lstm.input_size == 16
    assert built.coverage["params_after"] < built.coverage["params_before"]
    assert built.runner.predict(seqs).shape == (4, 5)


# --------------------------------------------------------------------------- ort-int4-weight


def test_int4_packs_every_transformer_weight_matrix(tmp_path: Path, make_ctx: Any) -> None:
    block = make_transformer()
    model = loaded_torch(block, (8, 64), 5, tmp_path, "block")
    x = np.random.default_rng(4).standard_normal((16, 8, 64)).astype(np.float32)
    fp32 = build("onnx-fp32", model, make_ctx("onnx-fp32"))
    built = build("ort-int4-weight", model, make_ctx("int4"), block_size="32")
    cov = built.coverage
    # in_proj, out_proj, linear1, linear2 and the head: every constant weight matrix.
    assert cov["matmul_4bit"] == cov["matmul_candidates"] == 5
    assert cov["ops"].get("MatMulNBits") == 5 and cov["block_size"] == 32
    assert cov["summary"].startswith("5 of 5 constant-weight MatMul/Gemm packed to 4 bits (block 32)")
    assert built.size_bytes < 0.3 * fp32.size_bytes
    ref = fp32.runner.predict(x)
    np.testing.assert_allclose(ref, float_out(block, x), rtol=1e-3, atol=1e-4)
    assert sqnr_db(ref, built.runner.predict(x)) > 15


def test_int4_covers_linear_layers_exported_as_gemm(tmp_path: Path, make_ctx: Any) -> None:
    mlp = make_mlp()
    model = loaded_torch(mlp, (64,), 10, tmp_path, "mlp")
    x = np.random.default_rng(5).standard_normal((32, 64)).astype(np.float32)
    built = build("ort-int4-weight", model, make_ctx("int4-mlp"), block_size="16", symmetric="false")
    assert built.coverage["gemm_rewritten"] == 3 and built.coverage["matmul_4bit"] == 3
    assert any("Gemm (Linear) nodes rewritten" in n for n in built.notes)
    ref = float_out(mlp, x)
    out = built.runner.predict(x)
    assert agreement(ref, out) >= 0.8 and sqnr_db(ref, out) > 12


def test_gemm_rewrite_keeps_the_numbers(tmp_path: Path, kit: Any) -> None:
    import onnx
    import onnxruntime as ort

    from core.schemes.ort_int4 import gemm_to_matmul

    mlp = make_mlp()
    path = kit.export_onnx(mlp, tmp_path / "mlp.onnx", (64,))
    proto = onnx.load(str(path))
    assert gemm_to_matmul(proto) == 3
    assert not [n for n in proto.graph.node if n.op_type == "Gemm"]
    onnx.checker.check_model(proto)
    x = np.random.default_rng(6).standard_normal((8, 64)).astype(np.float32)
    cpu = ["CPUExecutionProvider"]
    before = ort.InferenceSession(str(path), providers=cpu).run(None, {"input": x})[0]
    after = ort.InferenceSession(proto.SerializeToString(), providers=cpu).run(None, {"input": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_int4_advice_and_options(tiny: Any, tmp_path: Path, make_ctx: Any) -> None:
    import torch

    from core.schemes import get_scheme

    scheme = get_scheme("ort-int4-weight")
    assert scheme.advice(tiny[0], NO_FLAGS) == []  # its Linear layers hold 99 % of the weights
    torch.manual_seed(0)
    convnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 64, 3), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(64, 10),
    ).eval()
    advice = scheme.advice(loaded_torch(convnet, (1, 8, 8), 10, tmp_path, "convnet"), NO_FLAGS)
    assert len(advice) == 1 and "2% of this model's weights" in advice[0]
    with pytest.raises(BadInput, match="block_size must be one of 16, 32, 64, 128, 256"):
        build("ort-int4-weight", tiny[0], make_ctx("bad"), block_size="48")


# --------------------------------------------------------------------------- through the engine


def test_new_schemes_run_in_a_study_on_the_demo(tmp_path: Path) -> None:
    from core.engine.run import run_study
    from core.study import demo
    from core.study.events import StudyFinished
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingSpec, VariantSpec

    if not demo.demo_available():
        pytest.skip("the demo model files are not in this checkout")
    ids = ("torch-bf16", "torch-int8-static:samples=64", "prune-channels:ratio=0.2,int8=dynamic", "ort-int4-weight")
    spec = StudySpec(
        model=ModelSpec(path=str(demo.DEMO_WEIGHTS), arch=demo.DEMO_ARCH),
        dataset=DatasetSpec.parse(demo.DEMO_DATASET),
        variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in ids),
        timing=TimingSpec(threads=1, warmup_runs=1, warmup_s=0.0, min_samples=5, max_samples=40, max_time_s=0.1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = list(run_study(spec, workdir=tmp_path / "work"))
    study = next(e for e in events if isinstance(e, StudyFinished)).result
    base, *variants = study.results
    assert [v.label for v in variants] == list(ids)
    for v in variants:
        assert v.ok, v.error
        assert v.coverage["summary"] and v.size_bytes < base.size_bytes
        assert v.metrics["accuracy"] > 0.6
    by_label = {v.label: v for v in variants}
    assert by_label["torch-int8-static:samples=64"].coverage["quantized_layers"] == 5
    assert by_label["torch-int8-static:samples=64"].metrics["accuracy"] >= base.metrics["accuracy"] - 0.02
