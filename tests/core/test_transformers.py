"""Transformers and multi-input models (issue 18): named integer inputs end to end, the prediction output,
npz archives with one array per input, causal language models (perplexity, next-token accuracy, KL), and
every transformer scheme building on a tiny encoder classifier and a tiny causal decoder trained here."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.errors import BadInput
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, Task, Thresholds, TimingSpec, VariantSpec
from tests.core import transformers_kit as kit

TIMING = TimingSpec(threads=1, max_time_s=0.05, min_samples=3, warmup_runs=1, warmup_s=0.0)


@pytest.fixture(scope="session")
def tx(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Both tiny transformers, trained once, as ONNX and TorchScript files, with their npz datasets."""
    folder = tmp_path_factory.mktemp("transformers")
    encoder, decoder = kit.train_encoder(), kit.train_decoder()
    np.savez(folder / "enc.npz", **kit.encoder_data(120, seed=7))
    np.savez(folder / "dec.npz", **kit.decoder_data(120, seed=7))
    return SimpleNamespace(
        encoder=encoder, decoder=decoder, folder=folder,
        enc_onnx=kit.export_onnx(encoder, folder / "enc.onnx", ("logits", "pooled")),
        dec_onnx=kit.export_onnx(decoder, folder / "dec.onnx", ("logits", "hidden")),
        enc_ts=kit.save_torchscript(encoder, folder / "enc.pt"),
        dec_ts=kit.save_torchscript(decoder, folder / "dec.pt"),
        enc_npz=folder / "enc.npz", dec_npz=folder / "dec.npz",
    )


def _study(model: Path, data: str, schemes: tuple[str, ...], output: str | None = None, workdir: Path | None = None,
           task: Task = Task.AUTO) -> Any:
    from core.engine.run import run_study
    from core.study.events import StudyFinished

    spec = StudySpec(
        model=ModelSpec(path=str(model), trusted=True, output=output),
        dataset=replace(DatasetSpec.parse(data), task=task),
        variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in schemes), timing=TIMING,
    )
    last = list(run_study(spec, workdir=workdir))[-1]
    assert isinstance(last, StudyFinished)
    return last.result


def _by_label(result: Any) -> dict[str, Any]:
    return {r.label: r for r in result.results}


def _dataset(model: Any, data: str) -> Any:
    from core.datasets import load_dataset

    return load_dataset(DatasetSpec.parse(data), model.inputs)


def _perplexity(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Perplexity and next-token accuracy written out plainly, position by position."""
    nll, right, count = 0.0, 0, 0
    for i in range(len(ids)):
        for t in range(ids.shape[1] - 1):
            if mask[i, t + 1]:
                row = logits[i, t].astype(np.float64)
                log_z = math.log(sum(math.exp(v - row.max()) for v in row)) + row.max()
                nll += log_z - row[ids[i, t + 1]]
                right += int(np.argmax(row) == ids[i, t + 1])
                count += 1
    return math.exp(nll / count), right / count


# ----------------------------------------------------------------------------- loading


def test_onnx_inputs_are_named_integer_with_the_embedding_size(tx: SimpleNamespace) -> None:
    from core.models import load_model

    model = load_model(ModelSpec(path=str(tx.enc_onnx)))
    assert [(t.name, t.dtype, t.vocab) for t in model.inputs] == [
        ("input_ids", "int64", kit.ENCODER_VOCAB), ("attention_mask", "int64", None)
    ]
    assert [t.name for t in model.outputs] == ["logits", "pooled"]
    assert model.output.name == "logits" and model.output_problem is None


def test_torchscript_inputs_come_from_forward_and_its_outputs_must_be_chosen(tx: SimpleNamespace) -> None:
    from core.models import load_model

    model = load_model(ModelSpec(path=str(tx.dec_ts), trusted=True))
    assert [(t.name, t.dtype, t.vocab) for t in model.inputs] == [
        ("input_ids", "int64", kit.DECODER_VOCAB), ("attention_mask", "int64", None)
    ]
    assert [(t.name, t.shape) for t in model.outputs] == [
        ("output0", ("batch", "sequence", kit.DECODER_VOCAB)), ("output1", ("batch", "sequence", 32))
    ]
    assert model.output_problem == (
        "the model has 2 outputs ('output0', 'output1') and none is plainly the prediction; "
        "name the one to judge with --output NAME."
    )
    chosen = load_model(ModelSpec(path=str(tx.dec_ts), trusted=True, output="output0"))
    assert chosen.output.name == "output0" and chosen.output_problem is None
    wrong = load_model(ModelSpec(path=str(tx.dec_ts), trusted=True, output="probs"))
    assert wrong.output_problem == (
        "--output 'probs': the model has no output of that name (its outputs: 'output0', 'output1')."
    )
    with pytest.raises(BadInput, match=r"dec\.pt: the model has 2 outputs"):
        _study(tx.dec_ts, f"npz:{tx.dec_npz}", ())


def test_the_only_float_output_is_the_prediction() -> None:
    from core.models.io_spec import choose_output
    from core.models.loaded import TensorInfo

    outs = [TensorInfo("ids", ("batch",), "int64"), TensorInfo("probs", ("batch", 3), "float32")]
    assert choose_output(outs, None) == (1, None)


# ----------------------------------------------------------------------------- npz with one array per input


def test_npz_arrays_named_as_the_inputs_keep_their_dtype(tx: SimpleNamespace) -> None:
    from core.models import load_model
    from core.models.io_spec import describe_arrays

    model = load_model(ModelSpec(path=str(tx.enc_onnx)))
    ds = _dataset(model, f"npz:{tx.enc_npz}")
    assert describe_arrays(ds.x) == [
        {"name": "input_ids", "shape": [kit.SEQ], "dtype": "int64"},
        {"name": "attention_mask", "shape": [kit.SEQ], "dtype": "int64"},
    ]
    assert ds.task is Task.CLASSIFICATION and len(ds) + len(ds.calibration) == 120
    assert ds.info()["inputs"] == describe_arrays(ds.x)


@pytest.mark.parametrize(
    ("arrays", "sentence"),
    [
        (lambda d: {"input_ids": d["input_ids"], "y": d["y"]},
         "no array named 'attention_mask' for the model input 'attention_mask' (arrays found: 'input_ids', 'y')."),
        (lambda d: {"input_ids": d["input_ids"] + 0.5, "attention_mask": d["attention_mask"]},
         "array 'input_ids' holds fractional float64 numbers but the model input 'input_ids' takes int64 values."),
        (lambda d: {"input_ids": d["input_ids"], "attention_mask": d["attention_mask"][:50]},
         "array 'attention_mask' has 50 samples but array 'input_ids' has 120."),
        (lambda d: {"x": d["input_ids"]},
         "the model takes 2 inputs ('input_ids', 'attention_mask') but the file holds one array 'x'; "
         "save one array per input, named as the inputs."),
        (lambda d: {"input_ids": d["input_ids"] + kit.ENCODER_VOCAB, "attention_mask": d["attention_mask"]},
         f"array 'input_ids' holds token ids from {kit.ENCODER_VOCAB} to {2 * kit.ENCODER_VOCAB - 1} but the "
         f"model's embedding for 'input_ids' has {kit.ENCODER_VOCAB} rows (ids 0 to {kit.ENCODER_VOCAB - 1})."),
        (lambda d: {"input_ids": d["input_ids"], "attention_mask": d["attention_mask"] * 2},
         "array 'attention_mask' is a mask for 'attention_mask' but holds values from 0 to 2, not 0 and 1."),
    ],
    ids=["missing", "dtype", "lengths", "only-x", "vocabulary", "mask"],
)
def test_mismatched_token_arrays_are_refused_naming_the_array(
    tx: SimpleNamespace, tmp_path: Path, arrays: Any, sentence: str
) -> None:
    from core.datasets import check_dataset_fits
    from core.models import load_model

    model = load_model(ModelSpec(path=str(tx.enc_onnx)))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays(kit.encoder_data(120, seed=7)))
    with pytest.raises(BadInput) as caught:
        check_dataset_fits(_dataset(model, f"npz:{path}"), model.inputs, [model.output])
    assert str(caught.value) == f"npz:{path}: {sentence}"


def test_synthetic_tokens_stay_within_the_vocabulary_with_0_1_masks(tx: SimpleNamespace) -> None:
    from core.models import load_model

    model = load_model(ModelSpec(path=str(tx.dec_onnx)))
    ds = _dataset(model, "synthetic:40")
    ids, mask = ds.x["input_ids"], ds.x["attention_mask"]
    assert ids.dtype == np.int64 and ids.shape == (40, 32)  # the sequence is open: 32 tokens
    assert ids.min() >= 0 and ids.max() < kit.DECODER_VOCAB and ids.max() > kit.DECODER_VOCAB // 2
    assert set(np.unique(mask)) == {0, 1} and np.all(mask[:, 0] == 1)
    assert np.all(np.diff(mask, axis=1) <= 0)  # padding at the end only
    assert ds.calibration is not None and ds.calibration.dtype == ds.x.dtype


# ----------------------------------------------------------------------------- studies, checked against the runtime


def test_encoder_study_equals_onnx_runtime_run_directly(tx: SimpleNamespace) -> None:
    import onnxruntime as ort

    from core.models import load_model

    result = _study(tx.enc_onnx, f"npz:{tx.enc_npz}", ("ort-int8-dynamic",))
    rows = _by_label(result)
    assert result.dataset["task"] == "classification"
    model = load_model(ModelSpec(path=str(tx.enc_onnx)))
    ds = _dataset(model, f"npz:{tx.enc_npz}")
    session = ort.InferenceSession(str(tx.enc_onnx), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_ids": ds.x["input_ids"], "attention_mask": ds.x["attention_mask"]})[0]
    expected = float(np.mean(logits.argmax(1) == ds.y))
    assert expected > 0.95  # the encoder learned its rule
    assert rows["fp32"].metrics["accuracy"] == pytest.approx(expected, abs=1e-12)
    assert rows["ort-int8-dynamic"].status.value == "ok"
    assert rows["ort-int8-dynamic"].metrics["tokens_per_s"] > 0
    assert rows["ort-int8-dynamic"].coverage["matmul_integer"] >= 4


def test_decoder_is_judged_as_a_language_model(tx: SimpleNamespace, tmp_path: Path) -> None:
    import onnxruntime as ort

    from core.models import load_model

    result = _study(tx.dec_onnx, f"npz:{tx.dec_npz}", ("ort-fp16",), workdir=tmp_path)
    rows = _by_label(result)
    assert result.dataset["task"] == "causal-lm"  # inferred: [batch, sequence, vocabulary] and no y
    model = load_model(ModelSpec(path=str(tx.dec_onnx)))
    ds = _dataset(model, f"npz:{tx.dec_npz}")
    ids, mask = ds.x["input_ids"], ds.x["attention_mask"]
    feeds = {"input_ids": ids, "attention_mask": mask}
    base = ort.InferenceSession(str(tx.dec_onnx), providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    half_path = rows["ort-fp16"].source_path
    half = ort.InferenceSession(half_path, providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    for row, logits in ((rows["fp32"], base), (rows["ort-fp16"], half)):
        perplexity, accuracy = _perplexity(logits, ids, mask)
        assert row.metrics["perplexity"] == pytest.approx(perplexity, rel=1e-9)
        assert row.metrics["next_token_accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert row.metrics["tokens"] == int(mask[:, 1:].sum())
        assert row.metrics["tokens_per_s"] > 0
    assert rows["fp32"].metrics["next_token_accuracy"] > 0.95 and rows["fp32"].metrics["perplexity"] < 1.5
    # KL of the next-token distributions, written out for the first scored position.
    fid = rows["ort-fp16"].fidelity
    assert 0 < fid["kl_divergence"] < 1e-3 and fid["next_token_agreement"] == 1.0
    assert fid["sqnr_db"] > 30
    verdict = rows["ort-fp16"].verdict
    assert verdict.accuracy_drop == pytest.approx(
        rows["ort-fp16"].metrics["perplexity"] / rows["fp32"].metrics["perplexity"] - 1, abs=1e-12
    )
    assert verdict.reasons[0].startswith("perplexity ") and "(good: at most 1.02×)" in verdict.reasons[0]
    # The reports name the figures too: the HTML's details and quality axis, the CSV's columns.
    from core.reports.csv import render_csv
    from core.reports.html import render_html

    page = render_html([result])
    assert "perplexity (lower is better)" in page and "next-token KL divergence (nats)" in page
    header = render_csv(result).splitlines()[0].split(",")
    assert {"perplexity", "next_token_accuracy", "kl_divergence", "tokens_per_s"} <= set(header)


def test_every_onnx_scheme_builds_and_runs_on_both_transformers(tx: SimpleNamespace) -> None:
    schemes = ("ort-int8-dynamic", "ort-int8-static:samples=8", "ort-fp16", "ort-int4-weight:block_size=16")
    for path, data in ((tx.enc_onnx, tx.enc_npz), (tx.dec_onnx, tx.dec_npz)):
        rows = _by_label(_study(path, f"npz:{data}", schemes))
        for label, row in rows.items():
            assert row.status.value == "ok", (path.name, label, row.error)
        assert rows["ort-int8-static:samples=8"].coverage["matmul_integer"] >= 4
        assert rows["ort-int4-weight:block_size=16"].coverage["ops"].get("MatMulNBits", 0) >= 4
        assert any("transformer" in a for a in rows["ort-int8-static:samples=8"].advice)
        if path == tx.dec_onnx:
            for row in rows.values():
                assert row.metrics["perplexity"] < 1.5, (row.label, row.metrics)


def test_torchscript_transformer_with_chosen_output_runs_torch_and_onnx_schemes(tx: SimpleNamespace) -> None:
    rows = _by_label(_study(tx.dec_ts, f"npz:{tx.dec_npz}", ("torch-fp16", "torch-bf16", "onnx-fp32",
                                                             "ort-int8-dynamic"), output="output0"))
    for label, row in rows.items():
        assert row.status.value == "ok", (label, row.error)
    # The exported ONNX file computes what the TorchScript module does: the same perplexity.
    assert rows["onnx-fp32"].metrics["perplexity"] == pytest.approx(rows["fp32"].metrics["perplexity"], rel=1e-5)
    assert rows["fp32"].coverage["float_layers"] == 5  # qkv, proj, ff1, ff2 and the head: Linear, scripted


def test_torch_export_program_with_token_inputs(tx: SimpleNamespace, tmp_path: Path) -> None:
    """A torch.export program: inputs named and typed as the program records them, the embedding's rows read
    from its aten.embedding; studied with its outputs' choice, and exported on to ONNX."""
    import torch

    from core.models import load_model

    ids = torch.zeros((2, kit.SEQ), dtype=torch.int64)
    mask = torch.ones((2, kit.SEQ), dtype=torch.int64)
    batch = torch.export.Dim("batch")
    path = tmp_path / "dec.pt2"
    torch.export.save(torch.export.export(tx.decoder, (ids, mask), dynamic_shapes=({0: batch}, {0: batch})), str(path))
    model = load_model(ModelSpec(path=str(path), trusted=True, output="output0"))
    assert [(t.name, t.shape, t.dtype, t.vocab) for t in model.inputs] == [
        ("input_ids", ("batch", kit.SEQ), "int64", kit.DECODER_VOCAB),
        ("attention_mask", ("batch", kit.SEQ), "int64", None),
    ]
    rows = _by_label(_study(path, f"npz:{tx.dec_npz}", ("onnx-fp32",), output="output0"))
    assert rows["onnx-fp32"].status.value == "ok", rows["onnx-fp32"].error
    assert rows["onnx-fp32"].metrics["perplexity"] == pytest.approx(rows["fp32"].metrics["perplexity"], rel=1e-5)
    assert rows["fp32"].metrics["next_token_accuracy"] > 0.95


def test_eager_transformers_take_the_pytorch_int8_schemes(tx: SimpleNamespace, make_ctx: Any) -> None:
    """torch-int8-dynamic and torch-int8-weight-only need the eager module: built directly on it."""
    from core.engine.evaluate import select_prediction_output
    from core.models.loaded import ModelFormat
    from core.models.torch_model import _torch_loaded
    from core.schemes import get_scheme

    data = kit.encoder_data(64, seed=9)
    expected = kit.torch_logits(tx.encoder, data["input_ids"], data["attention_mask"])
    model = _torch_loaded(tx.enc_ts, ModelFormat.TORCH_STATE_DICT, tx.encoder, None, "test")
    from core.models.io_spec import pack_inputs

    x = pack_inputs({"input_ids": data["input_ids"], "attention_mask": data["attention_mask"]})
    for scheme_id in ("torch-int8-dynamic", "torch-int8-weight-only"):
        scheme = get_scheme(scheme_id)
        assert scheme.applicability(model) is None
        built = scheme.build(model, SchemeSpec(scheme_id), make_ctx(scheme_id, calibration=x))
        select_prediction_output(model, built.runner)
        out = built.runner.predict(x)
        assert out.shape == expected.shape
        assert np.mean(out.argmax(1) == expected.argmax(1)) > 0.95, scheme_id
        assert built.coverage.get("quantized_layers", 0) >= 5 or "int8" in built.coverage.get("summary", ""), (
            scheme_id, built.coverage)


# ----------------------------------------------------------------------------- measures and verdict


def test_language_metrics_by_hand() -> None:
    from core.measures.language import causal_lm_metrics, next_token_divergence

    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]))
    ids = np.array([[0, 1, 2]])
    mask = np.array([[1, 1, 0]])  # the last token is padding: only position 0 -> token 1 is scored
    m = causal_lm_metrics(logits, ids, mask)
    assert m["tokens"] == 1 and m["perplexity"] == pytest.approx(1 / 0.2)
    assert m["next_token_accuracy"] == 0.0
    other = np.log(np.array([[[0.5, 0.4, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]))
    kl = next_token_divergence(logits, other, ids, mask)
    assert kl["kl_divergence"] == pytest.approx(0.7 * math.log(0.7 / 0.5) + 0.2 * math.log(0.2 / 0.4))
    assert kl["next_token_agreement"] == 1.0


@pytest.mark.parametrize(("ratio", "grade"), [(1.019, "good"), (1.05, "acceptable"), (1.11, "bad")])
def test_language_model_verdict_uses_the_perplexity_ratio(ratio: float, grade: str) -> None:
    from core.measures.verdict import verdict, verdict_legend

    v = verdict(
        task=Task.CAUSAL_LM, baseline_metrics={"perplexity": 10.0}, metrics={"perplexity": 10.0 * ratio},
        baseline_size=100, size=40, baseline_p50=1.0, p50=1.0, fastest_float_p50=1.0, agreement=None,
        thresholds=Thresholds(),
    )
    assert v.accuracy.value == grade
    assert v.overall.value == {"good": "good", "acceptable": "acceptable", "bad": "bad"}[grade]
    legend = verdict_legend(Thresholds(perplexity_ratio_good=1.05), Task.CAUSAL_LM)
    assert "perplexity ≤ 1.05× the baseline's" in legend and "perplexity > 1.1× the baseline's" in legend


# ----------------------------------------------------------------------------- the command line


def _quantbench(*args: str, home: Path) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "QUANTBENCH_HOME": str(home)}
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=180)


def test_cli_output_option_and_language_model_table(tx: SimpleNamespace, tmp_path: Path) -> None:
    import json

    base = ["run", "--model", str(tx.dec_ts), "--trust", str(tx.dec_ts), "--dataset", f"npz:{tx.dec_npz}",
            "--scheme", "onnx-fp32", "--threads", "1", "--max-time", "0.05", "--in-process", "--quiet"]
    refused = _quantbench(*base, home=tmp_path / "home")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"quantbench: {tx.dec_ts}: the model has 2 outputs ('output0', 'output1') and none is plainly the "
        "prediction; name the one to judge with --output NAME."
    ]
    done = _quantbench(*base, "--output", "output0", "--perplexity-good", "1.5", "--json", str(tmp_path / "lm.json"),
                       home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    study = json.loads((tmp_path / "lm.json").read_text())
    assert study["dataset"]["task"] == "causal-lm" and study["model"]["prediction_output"] == "output0"
    rows = {r["label"]: r for r in study["results"]}
    assert rows["onnx-fp32"]["metrics"]["perplexity"] == pytest.approx(rows["fp32"]["metrics"]["perplexity"], rel=1e-5)
    assert rows["onnx-fp32"]["verdict"]["thresholds"]["perplexity_ratio_good"] == 1.5
    header = next(line for line in done.stdout.splitlines() if line.startswith("Variant"))
    assert "Perplexity" in header


def test_output_and_perplexity_thresholds_survive_a_project_file_and_the_reproduce_command() -> None:
    from core.study.project import reproduce_command, spec_from_dict

    spec = StudySpec(
        model=ModelSpec(path="/m/decoder.pt", output="output0"),
        dataset=replace(DatasetSpec.parse("npz:/d/tokens.npz"), task=Task.CAUSAL_LM),
        thresholds=Thresholds(perplexity_ratio_good=1.05, perplexity_ratio_bad=1.2),
    )
    again = spec_from_dict(spec.to_dict())
    assert again.model.output == "output0" and again.dataset.task is Task.CAUSAL_LM
    assert again.thresholds.perplexity_ratio_good == 1.05 and again.thresholds.perplexity_ratio_bad == 1.2
    command = reproduce_command(spec.to_dict())
    assert "--output output0" in command and "--task causal-lm" in command
    assert "--perplexity-good 1.05 --perplexity-bad 1.2" in command


def test_logit_fidelity_chunk_by_chunk_equals_the_whole_computation() -> None:
    from core.measures.fidelity import fidelity, logit_fidelity

    rng = np.random.default_rng(0)
    base = rng.standard_normal((37, 5, 11)).astype(np.float32)
    var = base + rng.standard_normal(base.shape).astype(np.float32) * 0.1
    var[3, 1, 2] = np.nan  # one sample left out of the error figures, as in the whole computation
    whole, chunked = fidelity(base, var, classification=False), logit_fidelity(base, var, chunk=4)
    assert chunked.keys() == whole.keys()
    for key, value in whole.items():
        assert chunked[key] == pytest.approx(value, rel=1e-9), key


# ----------------------------------------------------------------------------- TFLite with two inputs


def _two_input_tflite(path: Path, table: np.ndarray, seq: int) -> Path:
    """ids int32 [1, T] ─ GATHER(table [V, 4]) ─▶ [1, T, 4] ─ MUL ◀─ RESHAPE(mask float32 [1, T], [1, T, 1])
    ─▶ output [1, T, 4]: each token's row of the table, zeroed where the mask is 0."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def tensor(name: str, shape: list[int], ttype: int, buffer: int) -> Any:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buffer
        return t

    def buffer(data: np.ndarray | None) -> Any:
        b = s.BufferT()
        b.data = None if data is None else np.frombuffer(data.tobytes(), dtype=np.uint8)
        return b

    def opcode(code: int) -> Any:
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, code, 1
        return c

    def op(code_index: int, inputs: list[int], outputs: list[int], kind: int | None = None, options: Any = None) -> Any:
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code_index, inputs, outputs
        if kind is not None:
            o.builtinOptionsType, o.builtinOptions = kind, options
        return o

    f32, i32 = s.TensorType.FLOAT32, s.TensorType.INT32
    buffers = [buffer(None), buffer(table.astype(np.float32)), buffer(np.array([1, seq, 1], dtype=np.int32))]
    buffers += [buffer(None) for _ in range(5)]
    tensors = [
        tensor("ids", [1, seq], i32, 3), tensor("mask", [1, seq], f32, 4), tensor("table", list(table.shape), f32, 1),
        tensor("rows", [1, seq, table.shape[1]], f32, 5), tensor("mask_shape", [3], i32, 2),
        tensor("mask3", [1, seq, 1], f32, 6), tensor("output", [1, seq, table.shape[1]], f32, 7),
    ]
    gather = s.GatherOptionsT()
    gather.axis = 0
    mul = s.MulOptionsT()
    ops = [op(0, [2, 0], [3], s.BuiltinOptions.GatherOptions, gather), op(1, [1, 4], [5]),
           op(2, [3, 5], [6], s.BuiltinOptions.MulOptions, mul)]
    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = tensors, [0, 1], [6], ops, "main"
    model = s.ModelT()
    model.version, model.description = 3, "quantbench two-input test graph"
    model.operatorCodes = [opcode(s.BuiltinOperator.GATHER), opcode(s.BuiltinOperator.RESHAPE),
                           opcode(s.BuiltinOperator.MUL)]
    model.subgraphs, model.buffers = [sub], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def test_tflite_with_two_named_inputs_is_fed_by_name(tmp_path: Path) -> None:
    from core.models import load_model

    table = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    path = _two_input_tflite(tmp_path / "two.tflite", table, seq=6)
    model = load_model(ModelSpec(path=str(path)))
    assert [(t.name, t.dtype, t.vocab) for t in model.inputs] == [("ids", "int32", 9), ("mask", "float32", None)]
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 9, size=(10, 6)).astype(np.int32)
    mask = (rng.random((10, 6)) < 0.7).astype(np.float32)
    np.savez(tmp_path / "two.npz", mask=mask, ids=ids)  # in another order than the model's: fed by name
    rows = _by_label(_study(path, f"npz:{tmp_path / 'two.npz'}", (), task=Task.UNLABELLED))
    assert rows["fp32"].status.value == "ok", rows["fp32"].error
    from core.runtimes.litert_runner import LiteRTRunner

    ds = _dataset(model, f"npz:{tmp_path / 'two.npz'}")
    out = LiteRTRunner(path, 1).predict(ds.x)
    np.testing.assert_allclose(out, table[ds.x["ids"]] * ds.x["mask"][..., None], rtol=1e-6)
    synthetic = _dataset(model, "synthetic:5")
    assert synthetic.x["ids"].max() < 9 and set(np.unique(synthetic.x["mask"])) <= {0.0, 1.0}


# ----------------------------------------------------------------------------- layers and half precision


def test_layer_analysis_feeds_every_input_of_a_transformer_by_name(tx: SimpleNamespace) -> None:
    """A two-input encoder is compared layer by layer (the automatic analysis reaches it: a few dozen nodes);
    its integer tensors (token gathers, shapes) are said apart from layers that could not be matched."""
    from core.engine.run import run_study
    from core.study.events import StudyFinished

    spec = StudySpec(
        model=ModelSpec(path=str(tx.enc_onnx), trusted=True), dataset=DatasetSpec.parse(f"npz:{tx.enc_npz}"),
        variants=(VariantSpec(scheme=SchemeSpec.parse("ort-int8-dynamic")),), timing=TIMING,
    )
    assert spec.layer_samples is None  # automatic
    (finished,) = [e for e in run_study(spec) if isinstance(e, StudyFinished)]
    row = _by_label(finished.result)["ort-int8-dynamic"]
    assert row.layers, row.notes
    matmuls = [layer for layer in row.layers if layer["op_type"] in ("MatMul", "Gemm")]
    assert len(matmuls) >= 4
    # Dynamic int8 on a trained encoder: every compared MatMul output keeps its signal (not a broken feed).
    assert all(layer["activation"]["sqnr_db"] > 10 for layer in matmuls), [
        (layer["name"], layer["activation"]["sqnr_db"]) for layer in matmuls]
    assert any("integer tensors" in note and "nothing quantizes them" in note for note in row.notes), row.notes
    assert not any("analysis failed" in note for note in row.notes), row.notes
    assert row.profile and row.profile["by_op_type"]


@pytest.mark.parametrize("scheme", ["torch-fp16", "torch-bf16"])
def test_half_precision_runs_a_torch_export_program_of_a_transformer(tx: SimpleNamespace, tmp_path: Path,
                                                                     scheme: str) -> None:
    """A torch.export graph keeps the float32 casts it was traced with (the attention mask's): the scheme makes
    them half too, so the program runs in half precision and agrees with the float program."""
    import torch

    ids = torch.zeros((2, kit.SEQ), dtype=torch.int64)
    mask = torch.ones((2, kit.SEQ), dtype=torch.int64)
    batch = torch.export.Dim("batch")
    path = tmp_path / "enc.pt2"
    torch.export.save(torch.export.export(tx.encoder, (ids, mask), dynamic_shapes=({0: batch}, {0: batch})), str(path))
    rows = _by_label(_study(path, f"npz:{tx.enc_npz}", (scheme,), output="output0"))
    row = rows[scheme]
    assert row.status.value == "ok", row.error
    assert any("float32 cast" in note and "exported graph" in note for note in row.notes), row.notes
    assert row.fidelity["agreement"] > 0.9 and row.size_bytes < 0.6 * rows["fp32"].size_bytes
    assert any("traced graph that calls no layer module" in note for note in row.notes), row.notes
