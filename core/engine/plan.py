"""Planning a study: which rows it has (the float baseline first), and which task it is judged on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.engine.state import PlannedVariant
from core.study.result import BASELINE_SCHEME
from core.study.spec import ModelSpec, SchemeSpec, StudySpec, Task, VariantSpec


def plan_variants(spec: StudySpec, model: Any) -> list[PlannedVariant]:
    """The baseline, then each asked-for variant once; a scheme that cannot apply is planned as skipped.
    BadInput, before anything runs, for a scheme parameter it does not know or a value it cannot take."""
    from core.schemes import get_scheme
    from core.schemes.params import check_params

    baseline = PlannedVariant(
        BASELINE_SCHEME, BASELINE_SCHEME, get_scheme(BASELINE_SCHEME), SchemeSpec(BASELINE_SCHEME), None,
        is_baseline=True,
    )
    plan = [baseline]
    seen = {baseline.label}
    seen_files: set[str] = set()
    for variant in spec.variants:
        label = variant.label
        if variant.path is not None:
            resolved = str(Path(variant.path).expanduser().resolve())
            if resolved in seen_files:
                continue  # the same file twice is one row
            seen_files.add(resolved)
            n = 2
            while label in seen:  # same file name in another folder: keep both rows, told apart
                label, n = f"{variant.label} ({n})", n + 1
        elif label in seen:
            continue
        seen.add(label)
        if variant.scheme is not None:
            scheme = get_scheme(variant.scheme.id)
            check_params(variant.scheme, scheme.info)
            reason = scheme.applicability(model)
            if reason and variant.if_applicable:
                continue  # a default nobody asked for, which cannot apply here: left out, not a SKIPPED row
            plan.append(PlannedVariant(label, scheme.info.id, scheme, variant.scheme, variant, reason))
        else:
            _refuse_if_unfit(spec, variant, model)
            plan.append(PlannedVariant(label, "file", None, None, variant))
    return plan


def _refuse_if_unfit(spec: StudySpec, variant: VariantSpec, model: Any) -> None:
    """BadInput, before anything runs, when a variant file's inputs or outputs are not the model's.

    A file that does not load is left to its build, where it becomes a failed row as before.
    """
    from core.errors import BadInput
    from core.models import load_model
    from core.models.signature import signature_mismatch

    base = spec.model
    try:
        loaded = load_model(ModelSpec(path=variant.path or "", arch=base.arch, trusted=variant.trusted,
                                      input_shape=base.input_shape))
    except Exception:  # noqa: BLE001 - its build says why, as one failed row
        return
    reason = signature_mismatch(model, loaded)
    if reason:
        raise BadInput(reason)


def resolve_task(spec: StudySpec, data_task: Task, y: np.ndarray | None, model: Any) -> Task:
    """The task the study is judged on: the spec's, else what the labels and the model's output say."""
    if spec.dataset.task is not Task.AUTO:
        return spec.dataset.task
    if y is None:
        from core.measures.language import looks_like_language_model

        return Task.CAUSAL_LM if looks_like_language_model(model) else Task.UNLABELLED
    out_dim = model.output.shape[-1] if model.output.shape else None
    if data_task is Task.CLASSIFICATION and out_dim == 1:
        return Task.REGRESSION  # a single output scores a value, not ten classes
    return data_task
