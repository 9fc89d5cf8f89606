"""SWEEP.json: ``{"studies": [SPEC, ...]}``, each SPEC a study as ``quantbench run --save-spec`` writes it.

A SPEC may be the whole project file (``{"quantbench_project": 1, "spec": {...}}``) or its ``spec`` object
alone; relative paths in it are read relative to the sweep file's folder. Every mistake is one sentence naming
the file, the study (by its place in the list) and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.files.atomic import read_json
from core.study.project import PROJECT_VERSION, spec_from_dict
from core.study.spec import StudySpec


def load_sweep(path: Path | str, source: str | None = None, home: Path | str | None = None) -> list[StudySpec]:
    """The studies of a sweep file, in its order; BadInput names ``source`` (default: the path) and the problem.

    As with ``run --spec``, the file's own word on trust is never taken: a model or variant file is trusted when
    the user's trust list (in ``home``) holds its bytes."""
    path = Path(path).expanduser()
    source = source or str(path)
    payload = read_json(path, source, "a sweep file")
    studies = payload.get("studies") if isinstance(payload, dict) else None
    if not isinstance(studies, list):
        raise BadInput(f"{source}: not a sweep file (it needs a \"studies\" list of study specs).")
    if not studies:
        raise BadInput(f"{source}: the \"studies\" list is empty.")
    from core.files.trust import with_trust_from_list

    specs = [_study(entry, index, path.parent, source) for index, entry in enumerate(studies)]
    return [with_trust_from_list(spec, home) for spec in specs]


def _study(entry: Any, index: int, base: Path, source: str) -> StudySpec:
    where = f"{source}, study {index + 1}"
    if not isinstance(entry, dict):
        raise BadInput(f"{where}: not a JSON object (each study is a spec as --save-spec writes it).")
    if "spec" in entry:
        version = entry.get("quantbench_project", PROJECT_VERSION)
        if not isinstance(version, int) or version > PROJECT_VERSION:
            raise BadInput(f"{where}: written by a newer QuantBench (project version {version}).")
        entry = entry["spec"]
    return spec_from_dict(entry, base=base, source=where)


def spec_fingerprint(spec: StudySpec | dict[str, Any]) -> str:
    """What makes two studies the same study, whatever their ids: a hash of the spec without its id and trust
    flags (trust comes from the user's list, not from the spec). A sweep skips studies whose fingerprint
    the history already holds as finished."""
    d = spec.to_dict() if isinstance(spec, StudySpec) else json.loads(json.dumps(spec))
    d.pop("study_id", None)
    d.get("model", {}).pop("trusted", None)
    for variant in d.get("variants", []):
        variant.pop("trusted", None)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
