"""What a study is asked to do: frozen dataclasses, choices as enums.

A ``StudySpec`` is everything the engine needs; the window edits one, the
command line parses one, and a saved project file is one written as JSON.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from core.errors import BadInput
from core.printable import printable


class Task(str, Enum):
    AUTO = "auto"
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    #: No labels: only fidelity against the baseline and latency are measured.
    UNLABELLED = "unlabelled"
    #: Next-token prediction: the labels are the input tokens shifted by one (perplexity, next-token accuracy).
    CAUSAL_LM = "causal-lm"


class DatasetKind(str, Enum):
    BUILTIN = "builtin"
    NPZ = "npz"
    CSV = "csv"
    FOLDER = "folder"
    SYNTHETIC = "synthetic"


class TimingMode(str, Enum):
    #: Stop when the 95 % interval of the median is within +-3 %.
    QUICK = "quick"
    #: Stop when it is within +-1 %, or at the sample cap.
    THOROUGH = "thorough"


class Device(str, Enum):
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class Preprocess:
    """How images from a folder become model input; shown to the user."""

    size: tuple[int, int] | None = None  # (height, width); None: the model's input size
    channels: int | None = None  # 1 or 3; None: the model's channel count
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    preset: str = "unit"  # "unit" (0..1), "imagenet", "custom"

    @classmethod
    def imagenet(cls) -> Preprocess:
        return cls(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), preset="imagenet")

    def describe(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "model input size"
        if self.preset == "imagenet":
            norm = "ImageNet mean/std"
        elif self.preset == "unit":
            norm = "pixels scaled to 0..1"
        else:
            norm = f"x*{self.scale:g}, mean {list(self.mean)}, std {list(self.std)}"
        return f"resize to {size}, {norm}"


@dataclass(frozen=True)
class DatasetSpec:
    kind: DatasetKind
    location: str = ""  # builtin name, file/folder path, or sample count for synthetic
    label_column: str | None = None  # csv only; default is the last column
    task: Task = Task.AUTO
    preprocess: Preprocess | None = None  # folder only; None means the default preset
    limit: int | None = None  # evaluate at most this many samples
    #: Where static schemes calibrate. None: a held-out split of this dataset (a built-in set's own
    #: train split); ``CALIBRATE_ON_SAME``: the evaluated samples themselves (only when asked: warned);
    #: otherwise another dataset, written as ``parse`` reads it (e.g. ``npz:calib.npz``).
    calibration: str | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """Parse ``builtin:digits``, ``npz:PATH``, ``csv:PATH``, ``folder:PATH``, ``synthetic:N``."""
        kind_text, sep, rest = text.partition(":")
        try:
            kind = DatasetKind(kind_text.strip().lower())
        except ValueError:
            kinds = ", ".join(k.value for k in DatasetKind)
            raise BadInput(
                f"dataset {text!r}: unknown dataset kind {kind_text!r} (use one of {kinds}, e.g. builtin:digits)."
            ) from None
        if not sep or not rest:
            raise BadInput(f"dataset {text!r}: missing the part after '{kind.value}:'.")
        label_column = None
        if kind is DatasetKind.CSV and "#label=" in rest:
            rest, _, label_column = rest.partition("#label=")
        if kind is DatasetKind.SYNTHETIC:
            try:
                n = int(rest)
            except ValueError:
                raise BadInput(f"dataset {text!r}: synthetic needs a sample count, e.g. synthetic:256.") from None
            if n <= 0:
                raise BadInput(f"dataset {text!r}: the sample count must be positive.")
        return cls(kind=kind, location=rest, label_column=label_column or None)

    def describe(self) -> str:
        text = f"{self.kind.value}:{self.location}"
        if self.label_column:
            text += f"#label={self.label_column}"
        return text

    def calibration_dataset(self) -> DatasetSpec | None:
        """The other dataset ``calibration`` names (labels unused), or None for the default split or ``same``."""
        if not self.calibration or self.calibration == CALIBRATE_ON_SAME:
            return None
        other = DatasetSpec.parse(self.calibration)
        # Images are fed to the model as the evaluation data is, so they take its preprocessing.
        preprocess = self.preprocess if other.kind is DatasetKind.FOLDER else None
        return DatasetSpec(other.kind, other.location, other.label_column, Task.UNLABELLED, preprocess)


#: ``DatasetSpec.calibration`` value that calibrates on the evaluated samples themselves.
CALIBRATE_ON_SAME = "same"


@dataclass(frozen=True)
class ModelSpec:
    path: str
    #: Architecture for a bare state dict: "demo" or "torchvision:NAME".
    arch: str | None = None
    #: The user explicitly trusted this file to contain code (TorchScript, pickled modules).
    trusted: bool = False
    #: Input shape with batch first, for formats that do not record it (TorchScript, state dicts).
    input_shape: tuple[int, ...] | None = None
    #: The output that carries the prediction, for a model with several (``--output NAME``); None: chosen
    #: when unambiguous (core.models.io_spec.choose_output).
    output: str | None = None


@dataclass(frozen=True)
class SchemeSpec:
    """A scheme id with its parameters, e.g. ``ort-int8-static:samples=100``."""

    id: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SchemeSpec:
        scheme_id, _, rest = text.strip().partition(":")
        params: list[tuple[str, str]] = []
        if rest:
            for item in rest.split(","):
                key, eq, value = item.partition("=")
                if not eq or not key.strip():
                    raise BadInput(f"scheme {text!r}: parameter {item!r} is not written as key=value.")
                params.append((key.strip(), value.strip()))
        if not scheme_id:
            raise BadInput(f"scheme {text!r}: the scheme id is empty.")
        return cls(id=scheme_id, params=tuple(params))

    def param(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.params:
            if k == key:
                return v
        return default

    @property
    def label(self) -> str:
        if not self.params:
            return self.id
        return self.id + ":" + ",".join(f"{k}={v}" for k, v in self.params)


@dataclass(frozen=True)
class VariantSpec:
    """One row of the comparison: a scheme applied to the model, or a file made elsewhere."""

    scheme: SchemeSpec | None = None
    path: str | None = None  # an already-quantized file of the same model
    trusted: bool = False
    #: A default the user did not pick (`quantbench run` without --scheme): left out of the study, rather than
    #: shown as a SKIPPED row, when its scheme cannot apply to the model.
    if_applicable: bool = False

    def __post_init__(self) -> None:
        if (self.scheme is None) == (self.path is None):
            raise ValueError("a VariantSpec has either a scheme or a path")

    @property
    def label(self) -> str:
        if self.scheme is not None:
            return self.scheme.label
        # A display name taken from a file name: control characters written out (core.printable).
        return "file:" + printable(os.path.basename(self.path or ""))


def default_threads() -> int:
    """Leave one core to the window and the rest of the machine."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class TimingSpec:
    threads: int | None = None  # None: default_threads()
    mode: TimingMode = TimingMode.QUICK
    batch_size: int = 1
    warmup_runs: int = 5
    warmup_s: float = 0.1
    min_samples: int = 30
    max_samples: int = 5000
    max_time_s: float = 2.0
    #: Aim for about this many ms between LatencySamples events.
    report_every_ms: float = 50.0
    #: The largest batch evaluation feeds the model (``--eval-batch-size``); None: chosen from the model and
    #: the free memory (core.engine.evaluate). Timing keeps ``batch_size``.
    eval_batch_size: int | None = None
    #: Evaluate at most this many samples of a variant that evaluates SLOW_EVAL_FACTOR times slower than the
    #: baseline or more (``--slow-variant-samples``; core.engine.run); None: every variant on every sample.
    slow_variant_samples: int | None = None

    @property
    def resolved_threads(self) -> int:
        return self.threads if self.threads else default_threads()

    @property
    def target_ci_rel(self) -> float:
        return 0.03 if self.mode is TimingMode.QUICK else 0.01


@dataclass(frozen=True)
class Thresholds:
    """Verdict thresholds (DESIGN.md defaults); fractions, not percent."""

    accuracy_drop_good: float = 0.01
    accuracy_drop_bad: float = 0.05
    size_reduction_good: float = 0.50
    latency_reduction_good: float = 0.30
    #: Slower than the baseline by more than this is "bad" for speed.
    latency_increase_bad: float = 0.10
    #: Any class's recall falling by more than this (a fraction: 0.10 is 10 points) is "bad" for accuracy.
    class_recall_drop_bad: float = 0.10
    #: A language model (task causal-lm) is graded on its perplexity over the baseline's: good at or under the
    #: first ratio, bad over the second.
    perplexity_ratio_good: float = 1.02
    perplexity_ratio_bad: float = 1.10


#: The TimingSpec numbers that may have a fraction.
_TIMING_FLOATS = ("warmup_s", "report_every_ms")
#: The lowest value of each TimingSpec number, and whether None (automatic) may stand for it.
_TIMING_FLOORS: dict[str, tuple[float, bool]] = {
    "threads": (1, True), "batch_size": (1, False), "warmup_runs": (0, False), "warmup_s": (0, False),
    "min_samples": (1, False), "max_samples": (1, False), "report_every_ms": (0, False),
    "eval_batch_size": (1, True), "slow_variant_samples": (1, True),
}


def timing_problem(timing: TimingSpec) -> str | None:
    """What is wrong with ``timing`` ("batch_size must be at least 1, not 0"), or None. A study with a batch
    of 0 timed empty calls and reported them as the model's latency."""
    for name, (floor, automatic) in _TIMING_FLOORS.items():
        value = getattr(timing, name)
        if value is None and automatic:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return f"{name} must be a number, not {value!r}"
        if value < floor:
            return f"{name} must be {f'at least {floor:g}' if floor else 'zero or more'}, not {value!r}"
        if name not in _TIMING_FLOATS and value != int(value):
            return f"{name} must be a whole number, not {value!r}"
    if not (isinstance(timing.max_time_s, (int, float)) and math.isfinite(timing.max_time_s) and timing.max_time_s > 0):
        return f"max_time_s must be a number of seconds above 0, not {timing.max_time_s!r}"
    if timing.max_samples < timing.min_samples:
        return f"max_samples ({timing.max_samples}) must not be below min_samples ({timing.min_samples})"
    return None


def thresholds_problem(t: Thresholds) -> str | None:
    """What is wrong with the verdict thresholds, or None: each a number of 0 or more, a fraction at most 1 but
    the perplexity ratios. (A "bad" limit below its "good" one counts as the good one: core.measures.verdict.)"""
    for name, value in asdict(t).items():
        ratio = name.startswith("perplexity")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (not ratio and value > 1):
            within = "0 or more" if ratio else "from 0 to 1 (a fraction: 0.05 is 5 points or 5 %)"
            return f"the verdict threshold {name} must be a number {within}, not {value!r}"
    return None


def threads_problem(threads: int | None) -> str | None:
    """Why ``threads`` cannot be timed on this machine (more threads than it has logical cores: the timings
    would measure threads waiting for a core, and thousands crash OpenMP), or None."""
    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        return f"{threads} threads are more than the {cores} logical cores of this machine (at most {cores})"
    return None


def spec_problem(spec: StudySpec) -> str | None:
    """What makes ``spec`` unfit to run, naming the field ("timing: batch_size must be …"), or None: the
    check every study passes (core.engine.run), whichever face made it; a face says it first in its own
    words where it can (the command line names its options, the window's controls keep to their ranges)."""
    problem = timing_problem(spec.timing)
    if problem:
        return f"timing: {problem}"
    problem = thresholds_problem(spec.thresholds)
    if problem:
        return problem
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or not 0 <= spec.seed < 2**63:
        return f"the seed must be a whole number of 0 or more, not {spec.seed!r}"
    if spec.layer_samples is not None and (not isinstance(spec.layer_samples, int) or spec.layer_samples < 0):
        return f"layer_samples must be 0 or more, not {spec.layer_samples!r}"
    return None


def _new_study_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class StudySpec:
    model: ModelSpec
    dataset: DatasetSpec
    variants: tuple[VariantSpec, ...] = ()
    timing: TimingSpec = TimingSpec()
    thresholds: Thresholds = Thresholds()
    device: Device = Device.CPU
    seed: int = 0
    study_id: str = field(default_factory=_new_study_id)
    #: Samples the per-layer analysis compares each quantized variant on (``core.layers``); 0: no analysis;
    #: None: automatic, 64 samples when the model has at most 300 layers (core.engine.layer_step), else none.
    layer_samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
