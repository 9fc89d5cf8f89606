"""Per-layer sensitivity of an ONNX model to ONNX Runtime static int8 (QDQ), from one calibration.

The model is prepared and calibrated once, exactly as ``ort-int8-static`` does it (``quant_pre_process``,
u8 activations, per-channel s8 weights, the same calibration chunks); the ranges go to ONNX Runtime's
calibration cache and the fully quantized QDQ graph is kept. For each Conv, Gemm and MatMul layer then:

- ``weights``: the float model with only this layer's weights quantized (the QDQ graph's int8 weight and
  its DequantizeLinear copied in);
- ``activation``: the float model with only this layer's output activation quantized (its
  QuantizeLinear/DequantizeLinear pair copied in, with the cached scale);
- ``leave_one_out``: everything quantized except this layer (``quantize_static`` with
  ``nodes_to_exclude`` replaying the cached ranges: what ``ort-int8-static:exclude=LAYER`` builds).

Each is evaluated on the evaluation samples. ``accuracy_delta_pt`` is always against the float model;
``impact_pt`` is how many points the part is to blame for (the drop it causes alone, or for
leave-one-out the points recovered over the fully quantized model) and orders the ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.files.scratch import Scratch
from core.study.cancel import CancelToken

PARTS = ("weights", "activation", "leave_one_out")
CALIBRATIONS = ("minmax", "entropy", "percentile")


@dataclass
class SensitivityRun:
    """The ranked rows and what they cost (seconds), for the cost ratio the issue bounds."""

    rows: list[dict[str, Any]]
    layers: int
    float_accuracy: float
    quantized_accuracy: float
    quantized_sqnr_db: float | None
    preprocess_s: float  # quant_pre_process (shape inference, graph optimization), as ort-int8-static does first
    calibration_s: float  # calibrating and quantizing the model once
    evaluation_s: float  # one evaluation of the float model (session + predictions)
    total_s: float  # everything, preprocessing included
    evaluations: int

    @property
    def cost_ratio(self) -> float:
        """total ÷ (one calibration + (L + 1) evaluations), preprocessing counted as part of the calibration
        (``ort-int8-static`` does both in one build)."""
        return self.total_s / (self.preprocess_s + self.calibration_s + (self.layers + 1) * self.evaluation_s)

    @property
    def cost_ratio_without_preprocess(self) -> float:
        """The same ratio with the one-off preprocessing taken out of both sides (the stricter reading)."""
        spent = self.total_s - self.preprocess_s
        return spent / (self.calibration_s + (self.layers + 1) * self.evaluation_s)


@dataclass
class _Setup:
    """What every variant is made from: the prepared float graph, the QDQ graph and the range cache."""

    src: Path
    cache: Path
    float_model: Any
    qdq_model: Any
    options: dict[str, Any]
    workdir: Path
    threads: int
    preprocess_s: float = 0.0
    calibration_s: float = 0.0


def quantize_with_cache(setup: _Setup, out: Path, exclude: Sequence[str] = (), reader: Any = None) -> Path:
    """``quantize_static`` with the options of ``ort-int8-static``; ranges from the cache once it exists."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from core.schemes.ort_calls import quiet
    from core.schemes.ort_static import calibration_method

    opts = setup.options
    quiet(
        quantize_static,
        str(setup.src),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=opts["per_channel"],
        calibrate_method=calibration_method(opts["calibration"]),
        nodes_to_exclude=list(exclude) or None,
        extra_options={"CalibMovingAverage": False, "CalibStridedMinMax": opts["chunk"]},
        calibration_cache_path=str(setup.cache),
    )
    return out


def prepare(
    model_path: Path, calib_x: np.ndarray, workdir: Path, threads: int, cancel: CancelToken,
    calibration: str = "minmax", per_channel: bool = True, shared: dict[str, Any] | None = None,
) -> _Setup:
    """Pre-process, calibrate once and quantize fully; the ranges stay in ``workdir``'s cache file.

    ``shared`` is a study's (or search's) scheme cache: a graph the schemes already pre-processed is reused."""
    import onnx

    from core.schemes.base import BuildContext
    from core.schemes.ort_schemes import preprocessed
    from core.schemes.ort_static import CalibrationReader, calibration_chunk
    from core.study.spec import Device

    vdir = workdir / "sensitivity"
    vdir.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(
        workdir=vdir, threads=threads, device=Device.CPU, cancel=cancel,
        calibration=lambda n: calib_x[:n], progress=lambda *_: None, shared=shared if shared is not None else {},
    )
    started = time.perf_counter()
    src = preprocessed(Path(model_path), ctx)
    preprocess_s = time.perf_counter() - started
    float_model = onnx.load(str(src))
    weights = {t.name for t in float_model.graph.initializer}
    input_name = next(i.name for i in float_model.graph.input if i.name not in weights)
    samples = np.asarray(calib_x, dtype=np.float32)
    options = {"calibration": calibration, "per_channel": per_channel, "chunk": calibration_chunk(len(samples))}
    setup = _Setup(src, vdir / f"ranges_{calibration}.json", float_model, None, options, vdir, threads, preprocess_s)
    if setup.cache.exists():
        setup.cache.unlink()
    reader = CalibrationReader(input_name, samples, ctx, "sensitivity")
    started = time.perf_counter()
    full = quantize_with_cache(setup, vdir / "full_int8.onnx", reader=reader)
    setup.qdq_model = onnx.load(str(full))
    setup.calibration_s = time.perf_counter() - started
    return setup


def _noise(sqnr_db: float | None) -> float:
    """Output noise power as a share of the signal's."""
    return 1.0 if sqnr_db is None else 10.0 ** (-sqnr_db / 10.0)


def _rank_key(row: dict[str, Any], full_sqnr_db: float | None) -> tuple[float, float]:
    """Points to blame first; then output noise to blame, comparable across parts: the noise a part adds
    alone, or for leave-one-out the noise removed from the fully quantized model's."""
    noise = _noise(row["sqnr_db"])
    if row["part"] == "leave_one_out":
        noise = _noise(full_sqnr_db) - noise
    return (-row["impact_pt"], -noise)


def layer_sensitivity(
    model_path: Path | str,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None,
    calib_x: np.ndarray,
    *,
    parts: Sequence[str] = PARTS,
    calibration: str = "minmax",
    per_channel: bool = True,
    threads: int | None = None,
    workdir: Path | None = None,
    cancel: CancelToken | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    shared: dict[str, Any] | None = None,
) -> SensitivityRun:
    """Rank the quantizable layers of ``model_path`` for ONNX Runtime static int8 (see the module docstring).

    Rows: ``{"layer", "op_type", "part", "accuracy_delta_pt", "sqnr_db", "impact_pt", "accuracy",
    "exclude"}``, most sensitive first; ``exclude`` lists the nodes to keep in float (``exclude=``) to
    spare that part. Accuracy is against ``eval_y`` when given, else agreement with the float model.
    """
    from core.study.spec import default_threads

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown sensitivity parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    cancel = cancel or CancelToken()
    threads = threads or default_threads()
    with Scratch("tune") as tmp:
        folder = Path(workdir).resolve() if workdir is not None else Path(tmp)
        start = time.perf_counter()
        setup = prepare(Path(model_path).resolve(), calib_x, folder, threads, cancel, calibration, per_channel, shared)
        return _sensitivity(setup, eval_x, eval_y, parts, cancel, on_row, start)


def _outputs(path: Path, x: np.ndarray, threads: int, cancel: CancelToken) -> np.ndarray:
    from core.tune.measure import open_runner, predict

    runner = open_runner(path, threads)
    try:
        return predict(runner, x, cancel)
    finally:
        runner.close()


def _sensitivity(
    setup: _Setup, eval_x: np.ndarray, eval_y: np.ndarray | None, parts: Sequence[str], cancel: CancelToken,
    on_row: Callable[[dict[str, Any]], None] | None, start: float,
) -> SensitivityRun:
    from core.tune.measure import accuracy, sqnr_db
    from core.tune.qdq_edit import quantizable_layers

    t0 = time.perf_counter()
    base = _outputs(setup.src, eval_x, setup.threads, cancel)
    evaluation_s = time.perf_counter() - t0
    float_acc = accuracy(base, base, eval_y)

    def evaluate(path: Path) -> tuple[float, float | None]:
        out = _outputs(path, eval_x, setup.threads, cancel)
        return accuracy(out, base, eval_y), sqnr_db(out, base)

    full_acc, full_sqnr = evaluate(setup.workdir / "full_int8.onnx")
    rows = []
    layers = quantizable_layers(setup.float_model)
    for i, layer in enumerate(layers):
        for part in parts:
            cancel.raise_if_cancelled()
            made = _variant(setup, layer, part, setup.workdir / f"layer{i}_{part}.onnx")
            if made is None:
                continue  # the scheme does not quantize this part (e.g. a MatMul of two activations)
            path, exclude = made
            acc, sqnr = evaluate(path)
            delta = 100.0 * (acc - float_acc)
            impact = 100.0 * (acc - full_acc) if part == "leave_one_out" else -delta
            row = {
                "layer": layer.name, "op_type": layer.op_type, "part": part, "scheme": "ort-int8-static",
                "accuracy_delta_pt": round(delta, 3) + 0.0, "sqnr_db": None if sqnr is None else round(sqnr, 2),
                "impact_pt": round(impact, 3) + 0.0, "accuracy": round(acc, 6), "exclude": exclude,
            }
            rows.append(row)
            if on_row is not None:
                on_row(row)
            path.unlink(missing_ok=True)
    rows.sort(key=lambda r: _rank_key(r, full_sqnr))
    return SensitivityRun(
        rows=rows, layers=len(layers), float_accuracy=float_acc, quantized_accuracy=full_acc,
        quantized_sqnr_db=full_sqnr, preprocess_s=setup.preprocess_s, calibration_s=setup.calibration_s,
        evaluation_s=evaluation_s, total_s=time.perf_counter() - start,
        evaluations=2 + len(rows),
    )


def _variant(setup: _Setup, layer: Any, part: str, out: Path) -> tuple[Path, list[str]] | None:
    """Write ``part`` of ``layer`` as a model file; return (file, nodes to exclude to spare it) or None."""
    import onnx

    from core.tune.qdq_edit import activation_exclusions, activation_only_model, weight_only_model

    if part == "leave_one_out":
        return quantize_with_cache(setup, out, exclude=[layer.name]), [layer.name]
    if part == "weights":
        model = weight_only_model(setup.float_model, setup.qdq_model, layer)
        if model is None:
            return None
        onnx.save(model, str(out))
        return out, [layer.name]
    made = activation_only_model(setup.float_model, setup.qdq_model, layer)
    if made is None:
        return None
    model, tensor = made
    onnx.save(model, str(out))
    return out, activation_exclusions(setup.float_model, layer, tensor)
