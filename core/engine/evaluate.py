"""Evaluating a built variant on the dataset, and scoring its outputs: task metrics and fidelity."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import numpy as np

from core.engine.state import StudyState
from core.errors import BadInput
from core.study.events import Event, Progress
from core.study.result import VariantResult
from core.study.spec import Task

#: The largest evaluation chunk, in samples.
EVAL_CHUNK = 64
#: An evaluation chunk grows while it takes less than this, and shrinks past four times it.
EVAL_CHUNK_S = 0.5


def evaluate_variant(state: StudyState, label: str, runner: Any) -> Generator[Event, None, np.ndarray]:
    """Every sample's output, in growing chunks, with a Progress event after each chunk."""
    x = state.dataset.x
    total = len(x)
    chunks = []
    # Chunks start at one sample and double while they stay short: a slow model still reports
    # after every few calls, which is how the driver tells a slow study from a hung one.
    size, start = 1, 0
    while start < total:
        state.cancel.raise_if_cancelled()
        t0 = time.perf_counter()
        chunks.append(runner.predict(x[start : start + size]))
        elapsed = time.perf_counter() - t0
        start = min(total, start + size)
        yield Progress(state.spec.study_id, label, "evaluating", start, total, f"evaluating {label} {start}/{total}")
        if elapsed < EVAL_CHUNK_S:
            size = min(size * 2, EVAL_CHUNK)
        elif elapsed > 4 * EVAL_CHUNK_S:
            size = max(1, size // 2)
    out = np.concatenate(chunks, axis=0)
    if out.shape[0] != total:
        raise BadInput(f"the model returned {out.shape[0]} outputs for {total} inputs.")
    return out


def score(state: StudyState, result: VariantResult, out: np.ndarray) -> None:
    """The task metrics against the labels, and (after the baseline) the fidelity against its outputs."""
    from core.measures.fidelity import fidelity
    from core.measures.task_metrics import classification_metrics, regression_metrics

    y = state.dataset.y
    task = state.task
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        result.notes.append(f"{bad} output values are NaN or infinite")
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
        result.fidelity = fidelity(state.baseline_out, out, classification)
        if _note_degenerate(result, state.baseline_out, classification):
            # Read by the verdict (core.engine.verdicts): graded on fidelity only.
            result.fidelity["baseline_degenerate"] = True
        if y is not None and task is Task.CLASSIFICATION and result.metrics is not None:
            from core.measures.task_metrics import accuracy_delta_ci95

            result.metrics["accuracy_delta_ci95"] = accuracy_delta_ci95(y, state.baseline_out, out)


def _note_degenerate(result: VariantResult, baseline_out: np.ndarray, classification: bool) -> bool:
    """Whether the baseline's outputs are degenerate (core.measures.degenerate); if so, say so on ``result``."""
    from core.measures.degenerate import degenerate_note, degenerate_outputs

    reason = degenerate_outputs(baseline_out, classification)
    if reason is not None:
        result.notes.append(degenerate_note(reason))
    return reason is not None
