"""CSV export: one row per variant, fixed columns, ready for a spreadsheet or pandas.

Fractions stay fractions (0.012, not "1.2 %") and missing values are empty
cells, so the file parses without cleaning. Several studies go into one file,
told apart by the study columns.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

from core.study.result import StudyResult, VariantResult

_Getter = Callable[[StudyResult, VariantResult], Any]


def _lat(name: str) -> _Getter:
    return lambda s, v: getattr(v.latency, name) if v.latency else None


def _metric(name: str) -> _Getter:
    return lambda s, v: (v.metrics or {}).get(name)


def _fid(name: str) -> _Getter:
    return lambda s, v: (v.fidelity or {}).get(name)


def _verdict(name: str) -> _Getter:
    def get(s: StudyResult, v: VariantResult) -> Any:
        value = getattr(v.verdict, name) if v.verdict else None
        return getattr(value, "value", value)

    return get


COLUMNS: list[tuple[str, _Getter]] = [
    ("study_id", lambda s, v: s.study_id),
    ("study_created", lambda s, v: s.created),
    ("model", lambda s, v: s.model.get("path")),
    ("dataset", lambda s, v: s.dataset.get("spec")),
    ("task", lambda s, v: s.dataset.get("task")),
    ("samples", lambda s, v: s.dataset.get("samples")),
    ("threads", lambda s, v: s.timing.get("threads")),
    ("cpu", lambda s, v: s.environment.get("cpu")),
    ("label", lambda s, v: v.label),
    ("scheme", lambda s, v: v.scheme),
    ("params", lambda s, v: ";".join(f"{k}={x}" for k, x in v.params.items())),
    ("runtime", lambda s, v: v.runtime),
    ("status", lambda s, v: v.status.value),
    ("error", lambda s, v: v.error),
    ("is_float", lambda s, v: v.is_float),
    ("size_bytes", lambda s, v: v.size_bytes),
    ("p50_ms", _lat("p50")),
    ("p50_ci95_low_ms", lambda s, v: v.latency.ci95_p50[0] if v.latency else None),
    ("p50_ci95_high_ms", lambda s, v: v.latency.ci95_p50[1] if v.latency else None),
    ("p90_ms", _lat("p90")),
    ("p99_ms", _lat("p99")),
    ("mean_ms", _lat("mean")),
    ("std_ms", _lat("std")),
    ("min_ms", _lat("min")),
    ("max_ms", _lat("max")),
    ("latency_samples", _lat("n")),
    ("noisy", _lat("noisy")),
    ("batch_size", _lat("batch_size")),
    ("throughput_per_s", lambda s, v: v.throughput_per_s),
    ("accuracy", _metric("accuracy")),
    ("precision_macro", _metric("precision_macro")),
    ("recall_macro", _metric("recall_macro")),
    ("f1_macro", _metric("f1_macro")),
    ("mse", _metric("mse")),
    ("mae", _metric("mae")),
    ("r2", _metric("r2")),
    ("perplexity", _metric("perplexity")),
    ("next_token_accuracy", _metric("next_token_accuracy")),
    ("tokens_per_s", _metric("tokens_per_s")),
    ("kl_divergence", _fid("kl_divergence")),
    ("agreement", _fid("agreement")),
    ("flipped", _fid("flipped_count")),
    ("output_mae", _fid("mae")),
    ("output_max_abs", _fid("max_abs")),
    ("sqnr_db", _fid("sqnr_db")),
    ("cosine", _fid("cosine")),
    ("accuracy_drop", _verdict("accuracy_drop")),
    ("size_reduction", _verdict("size_reduction")),
    ("latency_reduction", _verdict("latency_reduction")),
    ("speedup", _verdict("speedup")),
    ("speedup_vs_fastest_float", _verdict("speedup_vs_fastest_float")),
    ("verdict_accuracy", _verdict("accuracy")),
    ("verdict_size", _verdict("size")),
    ("verdict_speed", _verdict("speed")),
    ("verdict", _verdict("overall")),
    ("coverage", lambda s, v: v.coverage.get("summary")),
    ("build_s", lambda s, v: v.build_s),
]


def render_csv(study: StudyResult | list[StudyResult], names: Mapping[str, str] | None = None) -> str:
    """One header row, then one row per variant of ``study`` (or of each study, in order)."""
    studies = study if isinstance(study, list) else [study]
    names = names or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["study_name"] + [name for name, _ in COLUMNS])
    for s in studies:
        for v in s.results:
            writer.writerow([names.get(s.study_id, "")] + [_cell(get(s, v)) for _, get in COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


# ----------------------------------------------------------------------------- the layer table (--layers)

#: The layer table's file beside the variant table's: ``results.csv`` -> ``results-layers.csv``.
LAYERS_SUFFIX = "-layers"

_LayerGetter = Callable[[dict[str, Any]], Any]


def _act(name: str) -> _LayerGetter:
    return lambda layer: (layer.get("activation") or {}).get(name)


def _weight(name: str) -> _LayerGetter:
    return lambda layer: (layer.get("weight") or {}).get(name)


#: One row per layer of each analysed variant, in model order (the Layers tab's table, plus its figures).
LAYER_COLUMNS: list[tuple[str, _LayerGetter]] = [
    ("layer", lambda layer: layer.get("name")),
    ("op_type", lambda layer: layer.get("op_type")),
    ("tensor", lambda layer: layer.get("tensor")),
    ("sqnr_db", _act("sqnr_db")),
    ("relative_mse", _act("mse")),
    ("cosine", _act("cosine")),
    ("max_abs", _act("max_abs")),
    ("min_channel_sqnr_db", _act("min_channel_sqnr_db")),
    ("outlier_channels", lambda layer: ";".join(str(c) for c in _act("outlier_channels")(layer) or [])),
    ("clipped_fraction", _act("clipped_fraction")),
    ("weight_sqnr_db", _weight("sqnr_db")),
    ("weight_min_channel_sqnr_db", _weight("min_channel_sqnr_db")),
]


def layers_csv_path(path: Any) -> Any:
    """Where the layer table of the CSV report at ``path`` goes: ``<stem>-layers.csv`` beside it."""
    return path.with_name(f"{path.stem}{LAYERS_SUFFIX}{path.suffix or '.csv'}")


def has_layers(studies: list[StudyResult]) -> bool:
    """Whether any variant of ``studies`` carries a layer analysis."""
    return any(v.layers for s in studies for v in s.results)


def render_layers_csv(study: StudyResult | list[StudyResult], names: Mapping[str, str] | None = None) -> str:
    """One header row, then one row per layer of every variant analysed with --layers, in model order, with the
    layer's time per call in the float model and the variant (profiler runs) and its share of the variant's."""
    from core.layers.profile import float_profile_for, layer_shares, layer_times

    studies = study if isinstance(study, list) else [study]
    names = names or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["study_name", "study_id", "label", "scheme", "runtime", "index",
                     *(name for name, _ in LAYER_COLUMNS), "float_ms", "variant_ms", "share"])
    for s in studies:
        baseline = next((v for v in s.results if v.is_baseline), None)
        for v in s.results:
            if not v.layers:
                continue
            float_ms = layer_times(v.layers, float_profile_for(v.profile, baseline.profile if baseline else None))
            variant_ms = layer_times(v.layers, v.profile)
            shares = layer_shares(v.layers, v.profile)
            for i, layer in enumerate(v.layers):
                writer.writerow([names.get(s.study_id, ""), s.study_id, v.label, v.scheme, v.runtime, i,
                                 *(_cell(get(layer)) for _, get in LAYER_COLUMNS),
                                 _cell(float_ms[i]), _cell(variant_ms[i]), _cell(shares[i])])
    return out.getvalue()
