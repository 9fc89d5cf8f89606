"""What one running study carries from step to step: the plan's rows and the study's working state."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.memory_limit import give_memory_back
from core.study.cancel import CancelToken
from core.study.result import VariantResult
from core.study.spec import SchemeSpec, StudySpec, Task, VariantSpec


@dataclass
class PlannedVariant:
    """One row of the study, before it runs: a scheme to build, or a file to load."""

    label: str
    scheme_id: str
    scheme: Any | None  # a core.schemes.Scheme, or None for a file variant
    scheme_spec: SchemeSpec | None
    variant: VariantSpec | None
    skip_reason: str | None = None
    #: The float model every other row is compared with; exactly one row of a plan has it.
    is_baseline: bool = False


@dataclass
class StudyState:
    """The loaded model and dataset, and what the baseline's run left for the variants after it."""

    spec: StudySpec
    model: Any
    dataset: Any
    task: Task
    cancel: CancelToken
    workdir: Path
    baseline_out: np.ndarray | None = None
    baseline: VariantResult | None = None
    #: Every timed variant's runner for the end of the study: the baseline is re-timed then, and all
    #: of them again if the machine's speed changed (see core.engine.drift). A runner that can reopen
    #: its file is closed as soon as its variant is measured and reopened only then.
    runners: RunnerPool = field(default_factory=lambda: RunnerPool())
    shared: dict[str, Any] | None = None
    #: The largest evaluation batch (core.engine.evaluate.eval_batch_for), fixed when it is first asked.
    eval_batch: int | None = None
    #: Seconds per sample the baseline's evaluation took after its first call (None: not measured yet).
    baseline_eval_s_per_sample: float | None = None

    def close_runners(self) -> None:
        """Close every runner kept for the end of the study."""
        self.runners.close_all()


#: A baseline whose file (with its external data) is at least this large is closed once measured, while the
#: variants build, and reopened for the end-of-study re-check: its session would otherwise hold the float weights
#: beside every quantizer's work (0.53 GB for a 438 MB BERT-base-shaped encoder). A smaller one stays open and is
#: re-timed in the very session first timed.
LARGE_BASELINE_BYTES = 256 * 2**20


def baseline_reopens(result: VariantResult) -> bool:
    """Whether the baseline ``result``'s runner is closed while the variants build (a large model's)."""
    return (result.size_bytes or 0) >= LARGE_BASELINE_BYTES


class RunnerPool(Mapping[str, Any]):
    """The measured variants' runners by label, each either kept open or reopened from its file when asked.

    A measured variant's memory (an ONNX Runtime session with the arena its evaluation batches grew, a
    LiteRT interpreter) is given back at once when its runner has a ``reopener()`` for its file; the re-check
    at the end opens it again, fresh. A PyTorch module built in memory is given back too when its build was
    quick (core.engine.run.REBUILD_MAX_S): the re-check builds it again; a slower one stays open.
    ``release(label)`` closes a reopened runner again once it has been used."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}
        self._reopen: dict[str, Callable[[], Any]] = {}
        self._rebuilt: set[str] = set()

    def keep(self, label: str, runner: Any, reopen: bool = True, rebuild: Callable[[], Any] | None = None) -> None:
        """Hold ``runner`` for the end of the study: open, unless it can be reopened (then closed now).

        ``reopen=False`` keeps it open (the baseline: re-timed at the end in the very session first timed);
        ``rebuild`` makes the variant again, for a runner with no file to reopen (then closed now too)."""
        reopener = getattr(runner, "reopener", None)
        if reopen and (callable(reopener) or rebuild is not None):
            self._reopen[label] = reopener() if callable(reopener) else rebuild  # type: ignore[assignment]
            if not callable(reopener):
                self._rebuilt.add(label)
            runner.close()
        else:
            self._open[label] = runner

    def __getitem__(self, label: str) -> Any:
        if label not in self._open:
            self._open[label] = self._reopen[label]()  # KeyError: no such runner
        return self._open[label]

    def __contains__(self, label: object) -> bool:
        return label in self._open or label in self._reopen

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._open), **dict.fromkeys(self._reopen)})

    def __len__(self) -> int:
        return len(set(self._open) | set(self._reopen))

    def rebuilt(self) -> set[str]:
        """The labels whose variant is built again when it is asked for (no file to reopen)."""
        return set(self._rebuilt)

    def release(self, label: str) -> None:
        """Close ``label``'s runner if it can be reopened later; a runner kept open stays open."""
        if label in self._reopen and label in self._open:
            self._open.pop(label).close()
            give_memory_back()  # else glibc keeps the session's pages: +140 MB for a ResNet-18 at the re-check

    def close_all(self) -> None:
        for runner in self._open.values():
            runner.close()
        self._open.clear()
        self._reopen.clear()
        self._rebuilt.clear()
