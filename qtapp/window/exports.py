"""What File > Export report… and Save quantized variants… write; plain functions run off the GUI thread.

Reports are the same files ``quantbench export`` and ``quantbench compare``
write (core.reports.html, core.reports.csv, the JSON contract), for the studies
as the history holds them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core.errors import BadInput

#: Report kinds and their file dialog filters, in the order the dialog offers them.
REPORT_FILTERS = {
    "html": "HTML report (*.html)",
    "json": "JSON result (*.json)",
    "csv": "CSV table, one row per variant (*.csv)",
}


def report_kind(path: str, selected_filter: str = "") -> str:
    """The report kind a save dialog's answer asks for: the file's extension, else the chosen filter."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in REPORT_FILTERS:
        return suffix
    for kind, pattern in REPORT_FILTERS.items():
        if pattern == selected_filter:
            return kind
    return "html"


def load_studies(ids: list[str], fallback: Any = None) -> tuple[list[Any], dict[str, str]]:
    """The studies ``ids`` from the history, with their names; ``fallback`` (a StudyResult) stands in
    for a study the history could not give (recording had failed)."""
    from qtapp.threads.recording import open_store

    try:
        store = open_store()
        summaries = [store.summary(i) for i in ids]
        studies = [store.load_study(s.id) for s in summaries]
    except BadInput:
        if fallback is not None and [fallback.study_id] == ids:
            return [fallback], {}
        raise
    return studies, {s.id: s.name for s in summaries if s.name}


def write_report(studies: list[Any], names: dict[str, str], path: str | Path, kind: str) -> Path:
    """Write the HTML, JSON or CSV report of ``studies`` (a comparison when several) atomically."""
    from core.files.atomic import write_atomic

    path = Path(path)
    if kind == "html":
        from core.reports.html import render_html

        text = render_html(studies, names)
    elif kind == "csv":
        from core.reports.csv import render_csv

        text = render_csv(studies, names)
    elif kind == "json":
        from core.reports.json_text import json_text

        text = json_text(studies[0].to_json_dict() if len(studies) == 1 else [s.to_json_dict() for s in studies])
    else:
        raise ValueError(f"unknown report kind {kind!r}")
    try:
        write_atomic(path, text)
        if kind == "csv":  # the layer table beside it, as `quantbench export --csv` writes it
            from core.reports.csv import has_layers, layers_csv_path, render_layers_csv

            if has_layers(studies):
                write_atomic(layers_csv_path(path), render_layers_csv(studies, names))
    except OSError as exc:
        raise BadInput(f"{path} cannot be written ({exc.strerror or exc}).") from None
    return path


def kept_variant_files(study_id: str) -> list[Path]:
    """The sidecars of the variants kept for ``study_id`` (empty: none kept)."""
    from core.history.saved_variants import SIDECAR_SUFFIX
    from qtapp.threads.recording import kept_variants_dir

    folder = kept_variants_dir(study_id)
    return sorted(folder.glob("*" + SIDECAR_SUFFIX)) if folder.is_dir() else []


def copy_kept_variants(study_id: str, dest: str | Path) -> list[Path]:
    """Copy the variants the window kept for ``study_id``, with their sidecars, into ``dest``.

    Returns the files and folders written. Each variant is in its runtime's own format
    (ONNX, a PyTorch state dict, TFLite) next to ``<label>.quantbench.json``."""
    from qtapp.threads.recording import KEEP_STUDIES, kept_variants_dir

    source = kept_variants_dir(study_id)
    if not kept_variant_files(study_id):
        raise BadInput(
            f"the variants of study {study_id} are not kept (the window keeps the built variants of its last "
            f"{KEEP_STUDIES} studies, and baselines and variant files are your own files): run it again to save them."
        )
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"{dest} is a file; choose a folder.")
    written = []
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for item in sorted(source.iterdir()):
            if item.name.startswith("."):
                continue  # the engine's work folder or a copy cut short
            target = dest / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)
            written.append(target)
    except OSError as exc:
        raise BadInput(f"the variants could not be copied to {dest} ({exc.strerror or exc}).") from None
    return written
