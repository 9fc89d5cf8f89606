"""A local Hugging Face model folder (issue 18): read offline when the optional transformers package is installed,
refused with a sentence saying what to install when it is not."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.errors import BadInput
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec


def _tiny_llama(folder: Path) -> Path:
    """A one-layer Llama with random weights (its projections are nn.Linear), saved as config.json + safetensors."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_without_transformers_the_folder_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.models import load_model

    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers raises ImportError
    with pytest.raises(BadInput) as caught:
        load_model(ModelSpec(path=str(tmp_path)))
    assert str(caught.value) == (
        f"{tmp_path} is a Hugging Face model folder; reading it needs the optional transformers package "
        "(pip install 'quantbench[transformers]')."
    )


def test_a_hugging_face_causal_lm_folder_is_studied_offline(tmp_path: Path) -> None:
    folder = _tiny_llama(tmp_path / "llama")
    import torch
    import transformers

    from core.engine.run import run_study
    from core.models import load_model
    from core.study.events import StudyFinished

    model = load_model(ModelSpec(path=str(folder)))
    assert [(t.name, t.dtype, t.vocab) for t in model.inputs] == [("input_ids", "int64", 50),
                                                                  ("attention_mask", "int64", None)]
    assert model.output.name == "logits" and model.output.shape == ("batch", "sequence", 50)
    ids = np.random.default_rng(0).integers(0, 50, size=(24, 10)).astype(np.int64)
    mask = np.ones_like(ids)
    np.savez(tmp_path / "tokens.npz", input_ids=ids, attention_mask=mask)
    spec = StudySpec(
        model=ModelSpec(path=str(folder)), dataset=replace(DatasetSpec.parse(f"npz:{tmp_path / 'tokens.npz'}")),
        variants=tuple(VariantSpec(scheme=SchemeSpec(s)) for s in ("torch-int8-dynamic", "ort-int8-dynamic")),
        timing=TimingSpec(threads=1, max_time_s=0.05, min_samples=3, warmup_runs=1, warmup_s=0.0),
    )
    result = [e for e in run_study(spec) if isinstance(e, StudyFinished)][-1].result
    rows = {r.label: r for r in result.results}
    assert result.dataset["task"] == "causal-lm"
    assert all(r.status.value == "ok" for r in rows.values()), {k: r.error for k, r in rows.items()}
    # The baseline's perplexity is the one the Hugging Face model gives on the evaluated samples.
    from core.datasets import load_dataset

    ds = load_dataset(spec.dataset, model.inputs)
    direct = transformers.LlamaForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.inference_mode():
        x_ids = torch.from_numpy(np.ascontiguousarray(ds.x["input_ids"]))
        loss = direct(input_ids=x_ids, labels=x_ids).loss  # the mean over every next token
    assert rows["fp32"].metrics["perplexity"] == pytest.approx(float(torch.exp(loss)), rel=1e-4)
    assert rows["ort-int8-dynamic"].coverage["matmul_integer"] >= 1
    assert rows["torch-int8-dynamic"].coverage["quantized_layers"] >= 1
