"""10. A BERT-base-shaped encoder studied whole: fp32 against ort-int8-dynamic and ort-int4-weight (issue 18).

The encoder is built here with random weights in the shape of BERT-base (12 layers, hidden 768, 12 heads,
feed-forward 3072, a 30 522-token vocabulary, 512 positions, a 2-class head: about 110 M parameters),
exported to ONNX (two int64 inputs, ``input_ids`` and ``attention_mask``; batch and sequence dynamic),
and studied by ``quantbench run`` in its own process on 64 sequences of 128 tokens (each padded after a
real length drawn between 64 and 128), so that the study's peak resident memory is its own. Reported:

- ``transformer_study_s``: the whole study's wall time (load, three variants built, evaluated and timed);
- ``transformer_int8_speedup`` and ``transformer_int4_speedup``: the study's own speed-ups against fp32
  (baseline median ÷ variant median of one 128-token sequence, or the paired rounds' median when the
  machine's speed changed during the study);
- ``transformer_int4_int8_compute_speedup``: the same for ``ort-int4-weight:accuracy_level=4`` (the 4-bit
  weights multiplied in int8 rather than unpacked to float);
- ``transformer_peak_rss_ratio``: the study process's peak resident memory ÷ the float file's size
  (goal ≤ 3: the weights are never held more than about twice at once).
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tests.perf.common import run_child

LAYERS, HIDDEN, HEADS, FFN, VOCAB, POSITIONS = 12, 768, 12, 3072, 30522, 512
SEQUENCES, TOKENS = 64, 128
THREADS = 1


def _bert_shaped() -> Any:
    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
            self.out = nn.Linear(HIDDEN, HIDDEN)
            self.ln1 = nn.LayerNorm(HIDDEN)
            self.ff1 = nn.Linear(HIDDEN, FFN)
            self.ff2 = nn.Linear(FFN, HIDDEN)
            self.ln2 = nn.LayerNorm(HIDDEN)

        def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            b, t = h.shape[0], h.shape[1]
            hd = HIDDEN // HEADS
            q, k, v = (x.reshape(b, t, HEADS, hd).transpose(1, 2) for x in self.qkv(h).chunk(3, dim=-1))
            att = (torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(hd) + bias).softmax(dim=-1)
            h = self.ln1(h + self.out(torch.matmul(att, v).transpose(1, 2).reshape(b, t, HIDDEN)))
            return self.ln2(h + self.ff2(torch.nn.functional.gelu(self.ff1(h))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, HIDDEN)
            self.positions = nn.Embedding(POSITIONS, HIDDEN)
            self.ln = nn.LayerNorm(HIDDEN)
            self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
            self.pooler = nn.Linear(HIDDEN, HIDDEN)
            self.head = nn.Linear(HIDDEN, 2)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            t = input_ids.shape[1]
            h = self.ln(self.tokens(input_ids) + self.positions(torch.arange(t, device=input_ids.device))[None])
            bias = (1.0 - attention_mask.to(h.dtype))[:, None, None, :] * -10000.0
            for layer in self.layers:
                h = layer(h, bias)
            return self.head(torch.tanh(self.pooler(h[:, 0])))

    torch.manual_seed(0)
    return Encoder().eval()


def _export(path: Path) -> int:
    """The encoder as one ONNX file; returns its parameter count."""
    import torch

    model = _bert_shaped()
    params = sum(p.numel() for p in model.parameters())
    ids = torch.zeros((1, TOKENS), dtype=torch.int64)
    mask = torch.ones((1, TOKENS), dtype=torch.int64)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamic_axes=axes)
    return int(params)


def _tokens(path: Path) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(TOKENS // 2, TOKENS + 1, size=SEQUENCES)
    mask = (np.arange(TOKENS)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, VOCAB, size=(SEQUENCES, TOKENS)).astype(np.int64) * mask
    np.savez(path, input_ids=ids, attention_mask=mask)


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qb-perf-transformer-") as tmp:
        folder = Path(tmp)
        model, data, out = folder / "bert_base_shaped.onnx", folder / "tokens.npz", folder / "study.json"
        params = _export(model)
        _tokens(data)
        float_bytes = model.stat().st_size
        child = run_child(
            ["-m", "core.cli", "run", "--model", str(model), "--dataset", f"npz:{data}",
             "--calibration-data", "same", "--scheme", "ort-int8-dynamic", "--scheme", "ort-int4-weight",
             "--scheme", "ort-int4-weight:accuracy_level=4", "--no-layers",
             "--threads", str(THREADS), "--max-time", "1" if quick else "3", "--in-process", "--quiet",
             "--json", str(out)],
            timeout_s=1800, env={"QUANTBENCH_HOME": str(folder / "home")}, rss_limit_mb=12 * float_bytes / 2**20,
        )
        if child["rc"] != 0 or not out.exists():
            return {"error": f"the study failed (rc {child['rc']}, {child['killed_for']}): {child['stderr'][-400:]}"}
        study = json.loads(out.read_text())
    rows = {r["label"]: r for r in study["results"]}

    def speedup(label: str) -> float | None:
        verdict = rows[label].get("verdict") or {}
        return verdict.get("speedup")

    peak_bytes = child["peak_rss_mb"] * 2**20
    return {
        "transformer_study_s": child["wall_s"],
        "transformer_int8_speedup": speedup("ort-int8-dynamic"),
        "transformer_int4_speedup": speedup("ort-int4-weight"),
        "transformer_int4_int8_compute_speedup": speedup("ort-int4-weight:accuracy_level=4"),
        "transformer_peak_rss_ratio": peak_bytes / float_bytes,
        "transformer": {
            "params": params,
            "float_file_bytes": float_bytes,
            "peak_rss_mb": child["peak_rss_mb"],
            "sequences": SEQUENCES, "tokens": TOKENS, "threads": THREADS,
            "variants": {
                s: {"status": r["status"], "error": r.get("error"), "size_bytes": r.get("size_bytes"),
                    "p50_ms": (r.get("latency_ms") or {}).get("p50"), "speedup": speedup(s),
                    "agreement": (r.get("fidelity") or {}).get("agreement"),
                    "sqnr_db": (r.get("fidelity") or {}).get("sqnr_db"),
                    "coverage": (r.get("coverage") or {}).get("summary"), "build_s": r.get("build_s")}
                for s, r in rows.items()
            },
            "paired": (study.get("timing") or {}).get("paired") is not None,
        },
    }


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
