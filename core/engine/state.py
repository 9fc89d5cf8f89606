"""What one running study carries from step to step: the plan's rows and the study's working state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    #: Every timed variant's runner, kept until the end of the study: the baseline is re-timed
    #: then, and all of them again if the machine's speed changed (see core.engine.drift).
    runners: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] | None = None

    def close_runners(self) -> None:
        """Close every runner kept for the end of the study."""
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()
