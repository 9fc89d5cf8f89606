"""What the window loads in the background, and what it gets back.

These run in a TaskRunner pool thread, never in a slot: they import torch or
ONNX Runtime on first use and may create sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.study.spec import DatasetSpec, ModelSpec

if TYPE_CHECKING:
    from core.datasets.base import Dataset
    from core.models.loaded import LoadedModel
    from core.schemes.base import Scheme


@dataclass
class ModelLoad:
    spec: ModelSpec
    model: LoadedModel
    #: scheme id -> why it cannot apply to this model (None: it can)
    applicability: dict[str, str | None] = field(default_factory=dict)


@dataclass
class DatasetLoad:
    spec: DatasetSpec
    dataset: Dataset
    #: Why this dataset cannot be fed to the model (None: it fits, or no model yet)
    mismatch: str | None = None


def load_catalogue() -> list[Scheme]:
    from core.schemes import catalogue

    return list(catalogue())


def load_model(spec: ModelSpec) -> ModelLoad:
    from core.models import load_model as core_load_model

    model = core_load_model(spec)
    reasons: dict[str, str | None] = {}
    for scheme in load_catalogue():
        try:
            reasons[scheme.info.id] = scheme.applicability(model)
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            reasons[scheme.info.id] = f"could not check: {exc}"
    return ModelLoad(spec, model, reasons)


def load_dataset(spec: DatasetSpec, model: LoadedModel | None) -> DatasetLoad:
    from core.datasets import load_dataset as core_load_dataset

    dataset = core_load_dataset(spec, model.inputs if model is not None else None)
    mismatch = None
    if model is not None:
        from core.datasets.check import describe_mismatch

        mismatch = describe_mismatch(dataset, model.inputs, [model.output])  # the output chosen to predict
        from core.measures.language import looks_like_language_model
        from core.study.spec import Task

        if dataset.y is None and spec.task is Task.AUTO and looks_like_language_model(model):
            dataset.task = Task.CAUSAL_LM  # as the engine will judge it (core.engine.plan.resolve_task)
    return DatasetLoad(spec, dataset, mismatch)
