"""What a scheme is: a description the window and CLI can show, and a builder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.study.cancel import CancelToken
from core.study.spec import Device, SchemeSpec

if TYPE_CHECKING:
    from core.models.loaded import LoadedModel
    from core.runtimes.base import Runner


@dataclass(frozen=True)
class SchemeParam:
    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()  # empty: free text / number
    #: How a value without ``choices`` is read: "text" (as written), "count" (a whole number above 0) or
    #: "fraction" (a number above 0 and at most ``upper``). core.schemes.params checks it before a study runs.
    kind: str = "text"
    upper: float = 1.0

    @property
    def explained(self) -> str:
        """``help`` with the range a fraction takes, as `quantbench schemes` and the window's tooltips show it."""
        return f"{self.help} (0 to {self.upper:g})" if self.kind == "fraction" and not self.choices else self.help


@dataclass(frozen=True)
class SchemeInfo:
    id: str
    title: str
    description: str  # one line, shown in `quantbench schemes` and as the window's tooltip
    family: str  # "baseline", "pytorch", "onnxruntime", "pruning", "litert"
    runtime: str  # runtime the variant runs in
    needs_calibration: bool = False
    is_float: bool = False  # a float variant (candidate for "fastest float")
    params: tuple[SchemeParam, ...] = ()

    @property
    def needs(self) -> str:
        parts = [f"runs in {self.runtime}"]
        if self.needs_calibration:
            parts.append("calibration samples from the dataset")
        return ", ".join(parts)


@dataclass
class BuildContext:
    """What a scheme may use while building a variant."""

    workdir: Path  # a private folder for files this variant writes
    threads: int
    device: Device
    cancel: CancelToken
    #: Calibration inputs drawn from the dataset (n -> array); only for schemes that need it.
    calibration: Callable[[int], np.ndarray]
    #: progress(stage, done, total, message)
    progress: Callable[[str, int, int, str], None]
    #: Cache shared by the variants of one study (e.g. the float ONNX export).
    shared: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    #: One input sample, shaped (1, ...), to trace or try the model with: see ``example``.
    example_input: Callable[[], np.ndarray] | None = None

    def example(self) -> np.ndarray:
        """One input sample to trace the model with or time a layout on (not to calibrate): the study's first
        evaluated sample, or without one the first calibration sample. A study lets go of its calibration pool
        once no variant left calibrates, and a variant that only needs an example builds after that."""
        return self.example_input() if self.example_input is not None else self.calibration(1)


@dataclass
class BuiltVariant:
    runner: Runner
    size_bytes: int  # the serialized file a user would ship
    artifact: Path | None  # that file
    coverage: dict[str, Any]  # what the scheme actually changed (see core.schemes.coverage)
    notes: list[str] = field(default_factory=list)


class Scheme(ABC):
    info: SchemeInfo

    def applicability(self, model: LoadedModel) -> str | None:
        """Why this scheme cannot apply to ``model``, or None if it can."""
        return None

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        """Warnings shown before the run (e.g. known to be slow for this model on this CPU)."""
        return []

    def advice_for(self, model: LoadedModel, env: dict[str, Any], spec: SchemeSpec) -> list[str]:
        """``advice`` for these parameters; schemes whose options change the picture override it."""
        return self.advice(model, env)

    @abstractmethod
    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        """Make the variant and a runner for it; raise SchemeNotApplicable or BadInput with a reason."""
