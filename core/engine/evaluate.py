"""Evaluating a built variant on the dataset, and scoring its outputs: task metrics and fidelity."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from core.engine.state import StudyState
from core.errors import BadInput
from core.study.events import Event, Progress
from core.study.result import VariantResult
from core.study.spec import Task

#: The largest evaluation batch chosen on its own: past it a CPU runs no faster per sample, and memory grows.
MAX_AUTO_EVAL_BATCH = 32
#: The share of the free memory one evaluation batch may take.
EVAL_MEMORY_SHARE = 0.25
#: A sample's working memory while it is evaluated, as a multiple of its input's size: a CNN's largest
#: activations are a few times its input (ResNet-18: about 5x), with room for the runtime's own buffers.
ACTIVATION_FACTOR = 32
#: One evaluation call's working memory (ACTIVATION_FACTOR per sample) is kept to about this much, however much
#: is free: a model whose samples are large gains nothing per sample from a larger batch on a CPU, while its
#: activations grow with it. ResNet-18 (224x224) at one thread: 45-49 ms a sample at batches 4 to 32 alike, the
#: process above its resting size by 28 MB at 4, 59 MB at 8 and 196 MB at 32 (PyTorch; ONNX Runtime about
#: two thirds of that). A small model's samples fit MAX_AUTO_EVAL_BATCH within it.
EVAL_CALL_BYTES = 256 * 2**20
#: One evaluation call takes about this long at most, so a slow model still reports every second or so
#: (which is how the driver tells a slow study from a hung one).
EVAL_CALL_S = 1.0
#: A doubled evaluation batch is kept only when it makes a sample at least this much cheaper (_BatchClimb).
CLIMB_GAIN = 0.05


class _BatchClimb:
    """Each evaluation call's batch, chosen by measuring: the batch doubles while a sample gets cheaper by
    CLIMB_GAIN or more, and settles on the cheapest batch seen once a larger one is not.

    A larger batch is not always faster: a small model's per-call overhead shrinks with it (the digits CNN:
    several times faster at 32 than at 1), but a convolutional network on one thread can get slower per sample
    as its activations outgrow the caches (ResNet-18 here: batch 1 or 4 beat 16), and holds more memory. The
    first call, which warms the runner up, says nothing about speed."""

    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.calls = 0
        self.best: tuple[int, float] | None = None  # (batch, seconds per sample)
        self.settled = False

    def next_size(self, size: int, elapsed: float) -> int:
        """The next call's batch, after a call of ``size`` samples took ``elapsed`` seconds."""
        self.calls += 1
        if self.calls == 1:
            return 1
        per_sample = elapsed / max(1, size)
        within_time = int(EVAL_CALL_S // per_sample) if per_sample > 0 else self.cap
        if not self.settled:
            if self.best is None or per_sample < self.best[1] * (1 - CLIMB_GAIN):
                self.best = (size, per_sample)
                if size * 2 <= min(self.cap, max(1, within_time)):
                    return size * 2
            self.settled = True
        best = self.best[0] if self.best else 1
        return max(1, min(best, self.cap, max(1, within_time)))


def default_eval_batch(x: np.ndarray, free_bytes: int | None) -> int:
    """The evaluation batch chosen from a sample's size and the free memory: at most MAX_AUTO_EVAL_BATCH, and
    the largest power of two whose working memory fits EVAL_CALL_BYTES (the batch climbs in doublings)."""
    per_sample = max(1, int(x[:1].nbytes) * ACTIVATION_FACTOR)
    fits = max(1, EVAL_CALL_BYTES // per_sample)
    cap = min(MAX_AUTO_EVAL_BATCH, 1 << (fits.bit_length() - 1))
    if free_bytes is None:
        return cap
    return int(max(1, min(cap, EVAL_MEMORY_SHARE * free_bytes // per_sample)))


def free_memory_bytes() -> int | None:
    """What this process may still allocate: the machine's available memory, within the study's ceiling."""
    from core.memory_limit import current_limit_bytes
    from core.models.limits import available_memory_bytes

    free = available_memory_bytes()
    limit = current_limit_bytes()
    if limit is not None:
        room = max(0, limit - _resident_bytes())
        free = room if free is None else min(free, room)
    return free


def _resident_bytes() -> int:
    import os

    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def eval_batch_for(state: StudyState) -> int:
    """The largest evaluation batch of this study: the user's ``eval_batch_size``, else chosen here once
    (from the free memory when the study starts), so every variant is evaluated alike."""
    if state.eval_batch is None:
        asked = state.spec.timing.eval_batch_size
        state.eval_batch = max(1, int(asked)) if asked else default_eval_batch(state.dataset.x, free_memory_bytes())
    return state.eval_batch


def evaluate_variant(
    state: StudyState, label: str, runner: Any, notes: list[str] | None = None,
    coverage: dict[str, Any] | None = None, stop_after: Callable[[int, float], bool] | None = None,
) -> Generator[Event, None, np.ndarray]:
    """Every sample's output, in batches of up to ``eval_batch_for(state)``, with a Progress event after each.

    The first call runs one sample (it warms the runner up); then the batch doubles while a sample gets
    cheaper, up to the cap and EVAL_CALL_S a call, and stays at the cheapest (``_BatchClimb``). A model
    whose batch is fixed runs one of its batches at a time, and a model that fails on a batch larger than one
    (a TorchScript traced at batch 1) falls back to one sample at a time; either is said in ``notes``. A variant that
    quantizes its activations per call (dynamic int8: one scale for the whole batch) is evaluated at the
    timed batch size, so that its outputs are the ones it gives as it is timed and used.

    ``stop_after(samples done, seconds spent after the first call)``, asked after each batch, may end the
    evaluation early: the outputs of the first samples are returned (a variant too slow to evaluate whole)."""
    x = state.dataset.x
    total = len(x)
    select_prediction_output(state.model, runner)
    cap = eval_batch_for(state)
    if batch_dependent(runner, coverage) and cap != state.spec.timing.batch_size:
        cap = state.spec.timing.batch_size
        _note(notes, f"its activations are quantized per call with one scale for the whole batch: evaluated "
                     f"{_batches_of(cap)}, as it is timed")
    fixed = _fixed_batch(runner)
    if fixed is not None and cap != fixed:
        cap = fixed
        _note(notes, f"the model's batch is fixed at {fixed}: evaluated {_batches_of(fixed)}")
    chunks: list[np.ndarray] = []
    size, start = (fixed or 1), 0
    climb = _BatchClimb(cap)
    t_after_first = time.perf_counter()
    while start < total:
        state.cancel.raise_if_cancelled()
        part = x[start : start + size]
        t0 = time.perf_counter()
        out = _predict(runner, part, notes)
        elapsed = time.perf_counter() - t0
        if out is None:  # this runner fails on a batch > 1: one sample at a time from here on
            cap = size = 1
            climb = _BatchClimb(1)
            out = np.concatenate([runner.predict(part[i : i + 1]) for i in range(len(part))], axis=0)
        chunks.append(out)
        start += len(part)
        yield Progress(state.spec.study_id, label, "evaluating", start, total, f"evaluating {label} {start}/{total}")
        if len(chunks) == 1:
            t_after_first = time.perf_counter()
        elif stop_after is not None and stop_after(start, time.perf_counter() - t_after_first) and start < total:
            break
        if fixed is None:
            size = climb.next_size(len(part), elapsed)
    if fixed is None and _fixed_batch(runner) is not None:  # found out while running (a TFLite resize refused)
        _note(notes, f"the model's batch is fixed at {_fixed_batch(runner)}: evaluated "
                     f"{_batches_of(_fixed_batch(runner) or 1)}")
    out = np.concatenate(chunks, axis=0)
    if out.shape[0] != start:
        raise BadInput(f"the model returned {out.shape[0]} outputs for {start} inputs.")
    return out


def select_prediction_output(model: Any, runner: Any) -> None:
    """Have a runner of a model with several outputs return the one that carries the prediction
    (``model.output``: by name where the variant's file keeps the names, else by position)."""
    select = getattr(runner, "select_output", None)
    outputs = getattr(model, "outputs", None) or []
    if callable(select) and len(outputs) > 1:
        select(model.output.name, model.output_index)


def _predict(runner: Any, part: np.ndarray, notes: list[str] | None) -> np.ndarray | None:
    """``runner.predict(part)``; None when it fails on this batch of more than one but runs a single sample."""
    try:
        return runner.predict(part)
    except Exception as exc:
        if len(part) < 2:
            raise
        try:
            runner.predict(part[:1])
        except Exception:
            raise exc from None  # it does not run at all: the batch's own error says why
        _note(notes, f"the model fails on a batch of {len(part)} ({_first_line(exc)}): evaluated one sample at a time")
        return None


#: ONNX ops that quantize their input with one scale computed over the whole batch, on every call.
_PER_CALL_QUANT_OPS = ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul",
                       "DynamicQuantizeLSTM")


def batch_dependent(runner: Any, coverage: dict[str, Any] | None) -> bool:
    """Whether one sample's output depends on the others in its batch: dynamic int8, whose activation
    scale is computed per call over the whole batch (ONNX Runtime's dynamic ops, PyTorch's dynamic modules)."""
    ops = (coverage or {}).get("ops")
    if isinstance(ops, dict) and any(ops.get(op) for op in _PER_CALL_QUANT_OPS):
        return True
    module = getattr(runner, "module", None)
    if module is None or not hasattr(module, "modules"):
        return False
    return any(".dynamic" in type(sub).__module__ for sub in module.modules())


def _fixed_batch(runner: Any) -> int | None:
    """The batch the runner's model is fixed at (ONNX, TFLite, a fixed-batch torch.export), or None."""
    fixed = getattr(runner, "fixed_batch", None)
    return int(fixed) if isinstance(fixed, int) and fixed > 0 else None


def _batches_of(n: int) -> str:
    return "one sample at a time" if n == 1 else f"{n} samples at a time"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None and text not in notes:
        notes.append(text)


def score(state: StudyState, result: VariantResult, out: np.ndarray) -> None:
    """The task metrics against the labels, and (after the baseline) the fidelity against its outputs."""
    from core.measures.fidelity import fidelity
    from core.measures.task_metrics import classification_metrics, regression_metrics

    y = state.dataset.y
    task = state.task
    n = len(out)
    partial = n < len(state.dataset.x)  # a slow variant evaluated on the first n samples only
    if partial and y is not None:
        y = y[:n]
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        result.notes.append(f"{bad} output values are NaN or infinite")
    if task is Task.CAUSAL_LM:
        _score_language_model(state, result, out)
        return
    if y is not None and task is Task.CLASSIFICATION:
        n_classes = out.shape[-1] if out.ndim == 2 and out.shape[-1] > 1 else int(np.max(y)) + 1
        result.metrics = classification_metrics(y, out, n_classes)
    elif y is not None and task is Task.REGRESSION:
        result.metrics = regression_metrics(y, out)
    classification = task is Task.CLASSIFICATION or (task is Task.UNLABELLED and out.ndim == 2 and out.shape[-1] > 1)
    if result.is_baseline:
        state.baseline_out = out
        _note_degenerate(result, out, classification)
    elif state.baseline_out is not None:
        base_out = state.baseline_out[:n]  # the same samples as the variant's
        result.fidelity = fidelity(base_out, out, classification)
        if _note_degenerate(result, base_out, classification):
            # Read by the verdict (core.engine.verdicts): graded on fidelity only.
            result.fidelity["baseline_degenerate"] = True
        if y is not None and task is Task.CLASSIFICATION and result.metrics is not None:
            from core.measures.task_metrics import accuracy_delta_ci95

            result.metrics["accuracy_delta_ci95"] = accuracy_delta_ci95(y, base_out, out)
        if partial and result.evaluated is not None and y is not None:
            # The accuracy change and the verdict compare the baseline on these same samples.
            if task is Task.CLASSIFICATION:
                n_classes = out.shape[-1] if out.ndim == 2 and out.shape[-1] > 1 else int(np.max(y)) + 1
                result.evaluated["baseline_metrics"] = classification_metrics(y, base_out, n_classes)
            elif task is Task.REGRESSION:
                result.evaluated["baseline_metrics"] = regression_metrics(y, base_out)


def _score_language_model(state: StudyState, result: VariantResult, out: np.ndarray) -> None:
    """Perplexity and next-token accuracy over the real tokens; against the baseline, the logits' error and
    the KL divergence of the next-token distributions (core.measures.language)."""
    from core.measures.fidelity import logit_fidelity
    from core.measures.language import causal_lm_metrics, next_token_divergence
    from core.models.io_spec import attention_mask, token_ids

    n = len(out)
    x = state.dataset.x[:n]  # a slow variant may have been evaluated on the first n samples only
    ids, mask = token_ids(x), attention_mask(x)
    if ids is None or out.ndim != 3 or ids.shape != out.shape[:2]:
        shape = "none" if ids is None else "x".join(str(d) for d in ids.shape)
        raise BadInput(
            f"the task is causal-lm, but the output '{state.model.output.name}' is "
            f"{'x'.join(str(d) for d in out.shape)} for token ids {shape}: a language model's output is "
            "[batch, sequence, vocabulary]."
        )
    result.metrics = causal_lm_metrics(out, ids, mask)
    if result.is_baseline:
        state.baseline_out = out
    elif state.baseline_out is not None:
        base_out = state.baseline_out[:n]
        result.fidelity = logit_fidelity(base_out, out)  # chunked: logits can be gigabytes
        result.fidelity.update(next_token_divergence(base_out, out, ids, mask))
        if n < len(state.dataset.x) and result.evaluated is not None:
            result.evaluated["baseline_metrics"] = causal_lm_metrics(base_out, ids, mask)


def _note_degenerate(result: VariantResult, baseline_out: np.ndarray, classification: bool) -> bool:
    """Whether the baseline's outputs are degenerate (core.measures.degenerate); if so, say so on ``result``."""
    from core.measures.degenerate import degenerate_note, degenerate_outputs

    reason = degenerate_outputs(baseline_out, classification)
    if reason is not None:
        result.notes.append(degenerate_note(reason))
    return reason is not None
