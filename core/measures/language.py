"""Causal language models: perplexity and next-token accuracy over the real (unpadded) tokens, and how far a
variant's next-token distributions are from the baseline's (KL divergence).

Logits are (N, T, V): sample, position, vocabulary. The prediction at position t is scored against the
token at t + 1; a position counts when that next token is real (its attention mask is 1). Everything is
computed a few samples at a time in float64, so a large vocabulary never needs a second full copy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Samples whose log-probabilities are computed at once.
_CHUNK = 16


def looks_like_language_model(model: Any) -> bool:
    """Whether a model's prediction output is [batch, sequence, vocabulary] over integer token inputs."""
    shape = tuple(model.output.shape)
    if len(shape) != 3 or not isinstance(shape[-1], int) or shape[-1] < 2:
        return False
    return any(t.dtype in ("int32", "int64") for t in model.inputs)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def target_mask(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(N, T-1) booleans: which predictions are scored (their next token is real)."""
    if mask is None:
        return np.ones((ids.shape[0], ids.shape[1] - 1), dtype=bool)
    return np.asarray(mask)[:, 1:] != 0


def causal_lm_metrics(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray | None) -> dict[str, Any]:
    """``perplexity`` (exp of the mean negative log-likelihood of each real next token), ``next_token_accuracy``
    (the share of real next tokens that are the arg-max), ``mean_nll`` and ``tokens`` (how many were scored).

    None for the figures when no token is scored or the outputs are not finite."""
    if logits.ndim != 3 or ids.shape != logits.shape[:2]:
        raise ValueError(f"logits {logits.shape} and token ids {ids.shape} do not match")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= logits.shape[-1]):
        raise ValueError(f"token ids run to {int(ids.max())} but the logits cover {logits.shape[-1]} tokens")
    valid = target_mask(ids, mask)
    nll_sum, correct, count = 0.0, 0, 0
    for start in range(0, len(ids), _CHUNK):
        part = slice(start, start + _CHUNK)
        logp = _log_softmax(logits[part, :-1])
        targets = ids[part, 1:]
        chosen = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
        keep = valid[part]
        nll_sum -= float(chosen[keep].sum())
        correct += int((logp.argmax(axis=-1) == targets)[keep].sum())
        count += int(keep.sum())
    if count == 0 or not math.isfinite(nll_sum):
        return {"perplexity": None, "next_token_accuracy": None, "mean_nll": None, "tokens": count}
    mean_nll = nll_sum / count
    return {
        "perplexity": float(math.exp(min(mean_nll, 700.0))),
        "next_token_accuracy": correct / count,
        "mean_nll": mean_nll,
        "tokens": count,
    }


def next_token_divergence(
    baseline: np.ndarray, variant: np.ndarray, ids: np.ndarray, mask: np.ndarray | None
) -> dict[str, Any]:
    """``kl_divergence``: the mean KL(baseline ‖ variant) of the next-token distributions, in nats, over the
    scored positions; ``next_token_agreement``: the share of them whose arg-max token is the same."""
    valid = target_mask(ids, mask)
    kl_sum, same, count = 0.0, 0, 0
    for start in range(0, len(ids), _CHUNK):
        part = slice(start, start + _CHUNK)
        lb = _log_softmax(baseline[part, :-1])
        lv = _log_softmax(variant[part, :-1])
        kl = (np.exp(lb) * (lb - lv)).sum(axis=-1)
        keep = valid[part]
        kl_sum += float(kl[keep].sum())
        same += int((lb.argmax(axis=-1) == lv.argmax(axis=-1))[keep].sum())
        count += int(keep.sum())
    if count == 0 or not math.isfinite(kl_sum):
        return {"kl_divergence": None, "next_token_agreement": None}
    return {"kl_divergence": max(0.0, kl_sum / count), "next_token_agreement": same / count}
