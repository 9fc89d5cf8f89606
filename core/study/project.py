"""Project files: a StudySpec saved as small JSON, to re-run later from the window or the CLI.

A project file holds what to run, never results. Paths in it may be relative;
they are read relative to the project file's folder, so a project folder can be
moved or shared with its model and data. Loading gives the study a new id: a
re-run is a new study in the history.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.files.atomic import read_json
from core.study.spec import (
    CALIBRATE_ON_SAME,
    DatasetKind,
    DatasetSpec,
    Device,
    ModelSpec,
    Preprocess,
    SchemeSpec,
    StudySpec,
    Task,
    Thresholds,
    TimingMode,
    TimingSpec,
    VariantSpec,
    spec_problem,
)

PROJECT_VERSION = 1
_PATH_KINDS = (DatasetKind.NPZ, DatasetKind.CSV, DatasetKind.FOLDER)


def save_spec(spec: StudySpec, path: Path) -> None:
    """Write ``spec`` to ``path`` as a project file (atomically); paths are stored absolute."""
    from core.files.atomic import write_atomic

    d = spec.to_dict()
    d.pop("study_id", None)  # each run of a project is its own study
    d["model"]["path"] = _absolute(d["model"]["path"])
    for v in d["variants"]:
        if v.get("path"):
            v["path"] = _absolute(v["path"])
    if DatasetKind(d["dataset"]["kind"]) in _PATH_KINDS:
        d["dataset"]["location"] = _absolute(d["dataset"]["location"])
    d["dataset"]["calibration"] = _calibration(d["dataset"].get("calibration"), _absolute)
    payload = {"quantbench_project": PROJECT_VERSION, "spec": d}
    write_atomic(Path(path), json.dumps(payload, indent=1) + "\n")


def load_spec(path: Path, source: str | None = None) -> StudySpec:
    """Read a project file written by ``save_spec`` (or by hand); BadInput names the source and the field.

    ``source`` is the words that name the file to whoever opened it: the command line passes
    ``"--spec PATH"``, the window leaves it to the default, the file's path.
    """
    path = Path(path).expanduser()
    source = source or str(path)
    payload = read_json(path, source, "a QuantBench project file")
    if not isinstance(payload, dict) or "spec" not in payload:
        raise BadInput(f"{source}: not a QuantBench project file (no \"spec\" object).")
    version = payload.get("quantbench_project", PROJECT_VERSION)
    if not isinstance(version, int) or version > PROJECT_VERSION:
        raise BadInput(
            f"{source}: written by a newer QuantBench "
            f"(project version {version}; this one reads up to {PROJECT_VERSION})."
        )
    return spec_from_dict(payload["spec"], base=path.parent, source=source)


def spec_from_dict(d: dict[str, Any], base: Path | None = None, source: str = "the study spec") -> StudySpec:
    """Rebuild a StudySpec from ``StudySpec.to_dict()`` output; relative paths resolve against ``base``.

    BadInput names ``source`` and the field at fault, e.g. ``study.json: the field 'device' has ...``.
    """
    if not isinstance(d, dict):
        raise BadInput(f"{source}: the spec is not a JSON object.")

    def read(name: str, build: Any) -> Any:
        # Each part is read on its own so that the message can say which field was wrong.
        try:
            return build()
        except KeyError as exc:
            missing = exc.args[0]
            where = "" if missing == name else f" from '{name}'"
            raise BadInput(f"{source}: the field {missing!r} is missing{where}.") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadInput(f"{source}: the field {name!r} has the wrong value ({exc}).") from None

    model = read("model", lambda: _model(dict(d["model"]), base))
    dataset = read("dataset", lambda: _dataset(dict(d["dataset"]), base))
    variants = read("variants", lambda: tuple(_variant(dict(v), base) for v in d.get("variants", [])))
    timing = read("timing", lambda: _timing(dict(d.get("timing") or {})))
    thresholds = read(
        "thresholds", lambda: Thresholds(**{k: float(v) for k, v in dict(d.get("thresholds") or {}).items()})
    )
    device = read("device", lambda: Device(d.get("device", Device.CPU.value)))
    seed = read("seed", lambda: int(d.get("seed", 0)))
    # null: automatic (the default since the analysis runs by itself on small models); a spec written before
    # that, with 0 or without the field, keeps its analysis off.
    layer_samples = read("layer_samples", lambda: None if d.get("layer_samples", 0) is None
                         else max(0, int(d.get("layer_samples", 0))))
    spec = StudySpec(
        model=model, dataset=dataset, variants=variants, timing=timing, thresholds=thresholds, device=device,
        seed=seed, layer_samples=layer_samples,
    )  # study_id left to its default: a new id
    problem = spec_problem(spec)
    if problem:
        raise BadInput(f"{source}: {problem}.")
    return spec


def _model(d: dict[str, Any], base: Path | None) -> ModelSpec:
    return ModelSpec(
        path=_resolve(d["path"], base),
        arch=d.get("arch"),
        # A stored "trusted" is never read back: trust comes only from the user's trust list
        # (core.files.trust), which drivers consult; a project file or history entry cannot grant it.
        input_shape=_int_tuple(d.get("input_shape")),
        output=d.get("output"),
    )


def _dataset(d: dict[str, Any], base: Path | None) -> DatasetSpec:
    kind = DatasetKind(d["kind"])
    location = str(d.get("location", ""))
    if kind in _PATH_KINDS:
        location = _resolve(location, base)
    pre = d.get("preprocess")
    preprocess = None
    if pre:
        pre = dict(pre)
        preprocess = Preprocess(
            size=_int_tuple(pre.get("size")),  # type: ignore[arg-type]
            channels=pre.get("channels"),
            scale=float(pre.get("scale", 1.0 / 255.0)),
            mean=tuple(float(x) for x in pre.get("mean", (0.0,))),
            std=tuple(float(x) for x in pre.get("std", (1.0,))),
            preset=str(pre.get("preset", "unit")),
        )
    limit = d.get("limit")
    return DatasetSpec(
        kind=kind,
        location=location,
        label_column=d.get("label_column"),
        task=Task(d.get("task", Task.AUTO.value)),
        preprocess=preprocess,
        limit=None if limit is None else int(limit),
        calibration=_calibration(d.get("calibration"), lambda path: _resolve(path, base)),
    )


def _calibration(text: Any, place: Any) -> str | None:
    """``DatasetSpec.calibration`` with the path of another dataset passed through ``place``."""
    if text is None or str(text) == CALIBRATE_ON_SAME:
        return None if text is None else CALIBRATE_ON_SAME
    try:
        other = DatasetSpec.parse(str(text))
    except BadInput as exc:
        raise ValueError(f"calibration: {exc}") from None
    if other.kind in _PATH_KINDS:
        other = replace(other, location=place(other.location))
    return other.describe()


def _variant(d: dict[str, Any], base: Path | None) -> VariantSpec:
    scheme = d.get("scheme")
    if scheme:
        params = tuple((str(k), str(v)) for k, v in scheme.get("params", []))
        return VariantSpec(
            scheme=SchemeSpec(id=str(scheme["id"]), params=params), if_applicable=bool(d.get("if_applicable"))
        )
    if not d.get("path"):
        raise ValueError("a variant needs a scheme or a path")
    return VariantSpec(path=_resolve(d["path"], base))  # never trusted from the file: see spec_from_dict


def _timing(d: dict[str, Any]) -> TimingSpec:
    known = {f.name for f in fields(TimingSpec)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown timing option {unknown[0]!r}")
    if "mode" in d:
        d["mode"] = TimingMode(d["mode"])
    return TimingSpec(**d)


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(x) for x in value)


def _resolve(path: str, base: Path | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def reproduce_command(spec: dict[str, Any]) -> str:
    """The `quantbench run` command line that repeats a study, from its stored spec dict."""
    parts = ["quantbench", "run", "--model", str(spec["model"]["path"])]
    model = spec["model"]
    if model.get("arch"):
        parts += ["--arch", model["arch"]]
    if model.get("input_shape"):
        parts += ["--input-shape", ",".join(str(x) for x in model["input_shape"])]
    if model.get("trusted"):
        parts += ["--trust", str(model["path"])]
    if model.get("output"):
        parts += ["--output", str(model["output"])]
    ds = spec["dataset"]
    text = f"{ds['kind']}:{ds['location']}" + (f"#label={ds['label_column']}" if ds.get("label_column") else "")
    parts += ["--dataset", text]
    if ds.get("task", "auto") != "auto":
        parts += ["--task", ds["task"]]
    if ds.get("limit"):
        parts += ["--limit", str(ds["limit"])]
    if ds.get("calibration"):
        parts += ["--calibration-data", str(ds["calibration"])]
    schemes = [v["scheme"] for v in spec.get("variants", []) if v.get("scheme") and not v.get("if_applicable")]
    defaults = any(v.get("if_applicable") for v in spec.get("variants", []))  # run adds them when no --scheme
    for s in schemes:
        params = ",".join(f"{k}={v}" for k, v in s.get("params", []))
        parts += ["--scheme", s["id"] + (":" + params if params else "")]
    if not schemes and not defaults:
        parts += ["--scheme", "fp32"]  # without any --scheme, run would add the default set
    for v in spec.get("variants", []):
        if v.get("path"):
            parts += ["--variant", v["path"]] + (["--trust", v["path"]] if v.get("trusted") else [])
    parts += _timing_options(spec.get("timing", {}))
    parts += _layer_options(spec)
    if spec.get("device", "cpu") != "cpu":
        parts += ["--device", spec["device"]]
    if spec.get("seed", 0):
        parts += ["--seed", str(spec["seed"])]
    parts += _threshold_options(spec.get("thresholds") or {})
    return " ".join(shlex.quote(p) for p in parts)


def _timing_options(timing: dict[str, Any]) -> list[str]:
    parts = ["--threads", str(timing["threads"])] if timing.get("threads") else []
    parts += ["--timing", str(timing.get("mode", "quick")), "--max-time", f"{timing.get('max_time_s', 2.0):g}"]
    if timing.get("batch_size", 1) != 1:
        parts += ["--batch-size", str(timing["batch_size"])]
    if timing.get("eval_batch_size"):
        parts += ["--eval-batch-size", str(timing["eval_batch_size"])]
    if timing.get("slow_variant_samples"):
        parts += ["--slow-variant-samples", str(timing["slow_variant_samples"])]
    return parts


def _layer_options(spec: dict[str, Any]) -> list[str]:
    """The layer analysis as the study ran it: N samples, off, or nothing for the automatic default (null)."""
    samples = spec.get("layer_samples", 0)  # a spec from before the automatic analysis had it off
    if samples is None:
        return []
    return ["--layers", "--layer-samples", str(samples)] if samples else ["--no-layers"]


def _threshold_options(t: dict[str, Any]) -> list[str]:
    default = Thresholds()
    pairs = (
        ("--accuracy-good", "accuracy_drop_good"),
        ("--accuracy-bad", "accuracy_drop_bad"),
        ("--size-good", "size_reduction_good"),
        ("--speed-good", "latency_reduction_good"),
        ("--class-recall-bad", "class_recall_drop_bad"),
    )
    out: list[str] = []
    for option, key in pairs:
        value = t.get(key)
        if value is not None and abs(float(value) - getattr(default, key)) > 1e-12:
            out += [option, f"{float(value) * 100:g}"]
    for option, key in (("--perplexity-good", "perplexity_ratio_good"), ("--perplexity-bad", "perplexity_ratio_bad")):
        value = t.get(key)
        if value is not None and abs(float(value) - getattr(default, key)) > 1e-12:
            out += [option, f"{float(value):g}"]  # a ratio, not a percentage
    return out
