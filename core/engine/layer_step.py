"""The optional per-layer step of a study: where each quantized variant departs from the float model.

Run after a variant's evaluation and before its timing (never inside it) unless the study turns it off
(``StudySpec.layer_samples``: None, the default, analyses models of at most AUTO_MAX_LAYERS layers on
DEFAULT_LAYER_SAMPLES samples and says in the variant's notes when a larger one is skipped; 0 never; N
always, on N samples; ``quantbench run --layers / --no-layers / --layer-samples N``). The analysis is
``core.layers``; this step picks the float model that matches the variant's runtime, streams its progress,
and writes the records on the result. A failure here is a note on the variant, never its failure.
"""

from __future__ import annotations

import queue
from collections.abc import Generator
from pathlib import Path
from typing import Any

from core.engine.build import in_thread
from core.engine.state import StudyState
from core.study.events import Event, Progress
from core.study.result import VariantResult


def analyse_variant_layers(
    state: StudyState, label: str, built: Any, result: VariantResult
) -> Generator[Event, None, None]:
    """Compare ``built`` layer by layer with the float model on ``state.spec.layer_samples`` samples (or, left
    automatic, on DEFAULT_LAYER_SAMPLES when the model is small enough)."""
    pair = _float_and_variant(state, built)
    if pair is None:
        result.notes.append("layers: not analysed (this variant's runtime has no per-layer comparison yet)")
        return
    float_model, variant_model, runtime = pair
    spec = state.spec
    samples = _samples_to_analyse(state, float_model, runtime, result)
    if not samples:
        return
    n = min(samples, len(state.dataset.x))
    events: queue.Queue[Progress] = queue.Queue()
    box: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        events.put(Progress(spec.study_id, label, "analysing layers", done, total, f"comparing {label}'s layers"))

    flipped = _flipped_to_analyse(result, len(state.dataset.x))

    def work() -> None:
        from core.layers import analyse_layers, analyse_samples

        try:
            box["out"] = analyse_layers(
                float_model, variant_model, runtime, state.dataset.x[:n], state.cancel, progress,
                max_samples=n, threads=spec.timing.resolved_threads,
                float_profile=(state.shared or {}).get(f"float_profile:{runtime}"),
            )
        except BaseException as exc:  # handed to the generator's thread below
            box["error"] = exc
            return
        if not flipped:
            return
        events.put(Progress(spec.study_id, label, "analysing layers", 0, len(flipped),
                            f"comparing {label}'s layers on its flipped samples"))
        try:
            box["samples"] = analyse_samples(float_model, variant_model, runtime, state.dataset.x[flipped],
                                             flipped, state.cancel, threads=spec.timing.resolved_threads)
        except BaseException as exc:  # the whole-set analysis stands; a cancel still stops the study
            box["samples_error"] = exc

    progress(0, n)
    yield from in_thread(work, events, f"layers-{label}")
    error = box.get("error")
    if error is not None:
        from core.errors import Cancelled

        if isinstance(error, Cancelled):
            raise error
        result.notes.append(f"layers: the analysis failed ({type(error).__name__}: {str(error)[:200]})")
        return
    _write_records(state, runtime, result, box)


def _write_records(state: StudyState, runtime: str, result: VariantResult, box: dict[str, Any]) -> None:
    """The analysis's records on ``result`` (and the float profile kept for the variants after it)."""
    out = box["out"]
    result.layers, result.profile = out.get("layers"), out.get("profile")
    samples_error = box.get("samples_error")
    if samples_error is not None:
        from core.errors import Cancelled

        if isinstance(samples_error, Cancelled):
            raise samples_error
        result.notes.append(f"layers: the flipped samples' layers were not compared ({type(samples_error).__name__}: "
                            f"{str(samples_error)[:200]})")
    if box.get("samples") is not None and result.fidelity is not None:
        # Beside "flipped": each analysed flipped sample's own per-layer error (the window shows it on a click).
        result.fidelity["flipped_layers"] = box["samples"]
    if result.profile is not None and out.get("float_profile") is not None:
        # The float model in this variant's own runtime, for the float bars beside the variant's (a PyTorch
        # baseline's profile says nothing of an ONNX Runtime variant's ops).
        result.profile = {**result.profile, "float": out["float_profile"]}
    result.notes.extend(_condensed(out.get("notes") or []))
    if out.get("float_profile") is not None:
        state.shared = state.shared if state.shared is not None else {}
        state.shared[f"float_profile:{runtime}"] = out["float_profile"]
        if state.baseline is not None and state.baseline.runtime == runtime:
            state.baseline.profile = out["float_profile"]  # the float bars beside each variant's


#: The automatic analysis (``StudySpec.layer_samples`` None) compares models of at most this many layers: a few
#: hundred layers take seconds, while a large transformer's thousands would add minutes to every study.
AUTO_MAX_LAYERS = 300


def wants_layer_analysis(state: StudyState, result: VariantResult) -> bool:
    """Whether ``result``'s variant goes through this step: every variant but the baseline, unless the study
    turned the analysis off (``layer_samples`` 0); the automatic size rule is applied inside the step."""
    return state.spec.layer_samples != 0 and not result.is_baseline


def _samples_to_analyse(state: StudyState, float_model: Any, runtime: str, result: VariantResult) -> int:
    """The samples to compare on: the study's own count, or, left automatic, DEFAULT_LAYER_SAMPLES when the
    float model has at most AUTO_MAX_LAYERS layers, else 0 with a note on ``result`` saying why."""
    from core.layers import DEFAULT_LAYER_SAMPLES

    if state.spec.layer_samples is not None:
        return state.spec.layer_samples
    count = _layer_count(state, float_model, runtime)
    if count is None or count <= AUTO_MAX_LAYERS:
        return DEFAULT_LAYER_SAMPLES
    result.notes.append(
        f"layers: not analysed: the model has {count} layers, more than the {AUTO_MAX_LAYERS} the automatic "
        "layer analysis takes (quantbench run --layers, or a sample count in the Run panel's Layer analysis, "
        "analyses it anyway)"
    )
    return 0


def _layer_count(state: StudyState, float_model: Any, runtime: str) -> int | None:
    """The float model's layer count in ``runtime``, counted once per study (None: it could not be counted,
    and the analysis itself will say what is wrong)."""
    from core.layers import count_layers

    state.shared = state.shared if state.shared is not None else {}
    key = f"layer_count:{runtime}"
    if key not in state.shared:
        try:
            state.shared[key] = count_layers(float_model, runtime)
        except Exception:  # an unreadable float model fails the analysis below, with its own note
            state.shared[key] = None
    return state.shared[key]


def _flipped_to_analyse(result: VariantResult, samples: int) -> list[int]:
    """The dataset indices of the first flipped samples (at most FLIPPED_SAMPLES_ANALYSED) of ``result``."""
    from core.layers import FLIPPED_SAMPLES_ANALYSED

    flipped = (result.fidelity or {}).get("flipped") or []
    return [int(i) for i in flipped if 0 <= int(i) < samples][:FLIPPED_SAMPLES_ANALYSED]


def _condensed(notes: list[str]) -> list[str]:
    """The analysis's notes for the variant's note list: the layers it could not compare said in one note per
    reason (integer tensors, such as token ids and shapes, are nothing a quantizer changes)."""
    prefix = "not compared: "
    integer, changed = [], []
    for note in notes:
        if note.startswith(prefix):
            name, _, why = note.removeprefix(prefix).partition(":")
            (integer if why.strip() == "not a float tensor" else changed).append(name)
    kept = [f"layers: {note}" for note in notes if not note.startswith(prefix)]

    def listed(names: list[str]) -> str:
        return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")

    if changed:
        kept.append(f"layers: {len(changed)} layers not compared with the float model (their shapes or names "
                    f"changed): {listed(changed)}")
    if integer:
        kept.append(f"layers: {len(integer)} integer tensors (indices, shapes, masks) not compared: nothing "
                    f"quantizes them: {listed(integer)}")
    return kept


def _float_and_variant(state: StudyState, built: Any) -> tuple[Any, Any, str] | None:
    """(float model, variant model, runtime) for ``core.layers``; None when there is no comparison."""
    runtime = getattr(built.runner, "runtime", "")
    if runtime == "onnxruntime" and built.artifact is not None:
        exported = (state.shared or {}).get("onnx_fp32")
        if exported:
            return Path(exported), Path(built.artifact), "onnxruntime"
        if str(state.model.path).endswith(".onnx") or getattr(state.model.format, "value", "") == "onnx":
            return Path(state.model.path), Path(built.artifact), "onnxruntime"
        return None
    if runtime == "litert" and built.artifact is not None:
        if getattr(state.model.format, "value", "") == "tflite":
            return Path(state.model.path), Path(built.artifact), "litert"
        return None
    module = getattr(built.runner, "module", None)
    if runtime in ("pytorch", "torch") and module is not None and getattr(state.model.format, "is_torch", False):
        return state.model, module, "pytorch"
    return None
