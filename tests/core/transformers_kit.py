"""Two tiny transformers trained in seconds on synthetic rules, for the multi-input and language-model tests.

    encoder classifier:  input_ids [B, T] int64, attention_mask [B, T] int64
        ─ embedding 40x32 + positions ─ 1 block (4 heads, masked attention, LayerNorm, MLP) ─ masked mean
        ─ Linear 2 ─▶ logits [B, 2]            rule: class 1 when token 7 is among the real tokens
    causal decoder:      input_ids [B, T] int64, attention_mask [B, T] int64
        ─ embedding 24x32 + positions ─ 1 causal block ─ LayerNorm ─ Linear 24 ─▶ logits [B, T, 24]
                                                    rule: the next token is (token + 3) mod 24

Both are plain PyTorch modules (no fused attention kernels), so they export to ONNX with the TorchScript
exporter and script to TorchScript as they are. Each also returns a second output (the pooled or hidden
features), so choosing the prediction output is exercised.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ENCODER_VOCAB = 40
DECODER_VOCAB = 24
SEQ = 12
MARKER = 7
STEP = 3


def _block_class() -> type:
    import torch
    from torch import nn

    class Block(nn.Module):
        """Pre-norm attention + MLP block; ``causal`` masks the future positions."""

        def __init__(self, d: int, heads: int, causal: bool) -> None:
            super().__init__()
            self.heads = heads
            self.causal = causal
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.ff1 = nn.Linear(d, 2 * d)
            self.ff2 = nn.Linear(2 * d, d)

        def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            b, t, d = h.shape[0], h.shape[1], h.shape[2]
            hd = d // self.heads
            q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=-1)
            q = q.reshape(b, t, self.heads, hd).transpose(1, 2)
            k = k.reshape(b, t, self.heads, hd).transpose(1, 2)
            v = v.reshape(b, t, self.heads, hd).transpose(1, 2)
            att = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(hd)
            att = att + (1.0 - mask.to(att.dtype))[:, None, None, :] * -10000.0
            if self.causal:
                future = torch.triu(torch.ones(t, t, dtype=att.dtype, device=att.device), diagonal=1)
                att = att + future * -10000.0
            out = torch.matmul(att.softmax(dim=-1), v).transpose(1, 2).reshape(b, t, d)
            h = h + self.proj(out)
            return h + self.ff2(torch.nn.functional.gelu(self.ff1(self.ln2(h))))

    return Block


def make_encoder(seed: int = 0) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    block = _block_class()

    class EncoderClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(ENCODER_VOCAB, 32)
            self.pos = nn.Parameter(torch.randn(SEQ, 32) * 0.02)
            self.block = block(32, 4, False)
            self.head = nn.Linear(32, 2)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            t = input_ids.shape[1]
            h = self.embed(input_ids) + self.pos[:t]
            h = self.block(h, attention_mask)
            m = attention_mask.to(h.dtype)[:, :, None]
            pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            return self.head(pooled), pooled

    return EncoderClassifier()


def make_decoder(seed: int = 0) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    block = _block_class()

    class CausalDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(DECODER_VOCAB, 32)
            self.pos = nn.Parameter(torch.randn(SEQ, 32) * 0.02)
            self.block = block(32, 4, True)
            self.norm = nn.LayerNorm(32)
            self.head = nn.Linear(32, DECODER_VOCAB)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            t = input_ids.shape[1]
            h = self.block(self.embed(input_ids) + self.pos[:t], attention_mask)
            h = self.norm(h)
            return self.head(h), h

    return CausalDecoder()


def encoder_data(n: int, seed: int) -> dict[str, np.ndarray]:
    """Token sequences padded at the end (lengths 4..SEQ); y = 1 when MARKER is among the real tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, ENCODER_VOCAB, size=(n, SEQ)).astype(np.int64)
    ids[ids == MARKER] = MARKER + 1
    half = rng.random(n) < 0.5
    where = (rng.random(n) * lengths).astype(int)
    ids[half, where[half]] = MARKER
    ids *= mask
    y = ((ids == MARKER) & (mask == 1)).any(axis=1).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "y": y}


def decoder_data(n: int, seed: int) -> dict[str, np.ndarray]:
    """Sequences counting up by STEP mod DECODER_VOCAB from a random start, padded at the end."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, DECODER_VOCAB, size=n)
    ids = ((start[:, None] + STEP * np.arange(SEQ)[None, :]) % DECODER_VOCAB).astype(np.int64)
    lengths = rng.integers(5, SEQ + 1, size=n)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask}


def _one_thread() -> Any:
    """Train on one thread: a tiny model's steps are slower on several on a busy machine."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def pinned() -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return pinned()


def train_encoder(steps: int = 200) -> Any:
    with _one_thread():
        return _train_encoder(steps)


def train_decoder(steps: int = 200) -> Any:
    with _one_thread():
        return _train_decoder(steps)


def _train_encoder(steps: int) -> Any:
    import torch

    model = make_encoder()
    data = encoder_data(2048, seed=1)
    ids, mask, y = (torch.from_numpy(data[k]) for k in ("input_ids", "attention_mask", "y"))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(ids), (64,), generator=gen)
        logits, _ = model(ids[idx], mask[idx])
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _train_decoder(steps: int) -> Any:
    import torch

    model = make_decoder()
    data = decoder_data(2048, seed=1)
    ids, mask = torch.from_numpy(data["input_ids"]), torch.from_numpy(data["attention_mask"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(ids), (64,), generator=gen)
        logits, _ = model(ids[idx], mask[idx])
        targets = ids[idx][:, 1:].clone()
        targets[mask[idx][:, 1:] == 0] = -100
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, DECODER_VOCAB), targets.reshape(-1),
                                                 ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def export_onnx(model: Any, path: Path, outputs: tuple[str, str]) -> Path:
    """Both inputs and both outputs named, batch and sequence axes dynamic."""
    import torch

    ids = torch.zeros((2, SEQ), dtype=torch.int64)
    mask = torch.ones((2, SEQ), dtype=torch.int64)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            outputs[0]: {0: "batch"}, outputs[1]: {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=list(outputs),
                          dynamic_axes=axes)
    return path


def save_torchscript(model: Any, path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript announces its deprecation
        torch.jit.script(model).save(str(path))
    return path


def torch_logits(model: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(torch.from_numpy(ids), torch.from_numpy(mask))[0].numpy()
