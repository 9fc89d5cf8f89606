"""Keep the variants a study builds: ``quantbench run --save-variants DIR``.

The engine writes each variant into a work folder; a ``VariantSaver`` hands
the engine a work folder of its own and, as each variant finishes, copies its
file(s) to ``DIR/<label>.<ext>`` in the runtime's own format, next to a small
``DIR/<label>.quantbench.json`` sidecar that says how it was made. The work
folder is removed at the end. The baseline and ``--variant`` files are the
user's own files and are not copied.

The work folder is in the system's temporary folder (where the engine builds
when nothing is saved), not inside DIR: a DIR on a disk that fills up then
fails the saving, which is reported as such ("could not write
DIR/int8.onnx: no space left on device (the disk is full)."), rather than the
builds, which would show as failed variants. Each variant is saved whole or
not at all: its files and its sidecar are first written under temporary names
beside their targets (a hard link when the work folder is on the same disk,
else a copy) and renamed into place together; a write that fails removes them
and leaves what DIR held before as it was. A failed save never stops the
study: it is kept in ``failed`` (label -> one sentence) for the driver to
report; ``quantbench run`` then exits 2 once the study's other outputs are out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.files.atomic import check_folder, could_not_write, os_reason, stage_copy, stage_text
from core.files.scratch import Scratch

SIDECAR_SUFFIX = ".quantbench.json"
_LOAD_HINTS = {
    ".onnx": "onnxruntime.InferenceSession(path)",
    ".pt": "a state dict: torch.load(path, weights_only=True), loaded into the same architecture prepared "
    "the way the scheme describes (e.g. quantize_dynamic for torch-int8-dynamic)",
    ".tflite": "ai_edge_litert.interpreter.Interpreter(model_path=path)",
}


class VariantSaver:
    """Feed it the engine's events; it copies each finished variant out of ``workdir`` into ``dest``."""

    def __init__(self, dest: Path) -> None:
        dest = Path(dest).expanduser()
        if dest.exists() and not dest.is_dir():
            raise BadInput(f"--save-variants {dest} is a file; give a folder.")
        check_folder(dest, "--save-variants: the folder", create=True)
        try:
            self._scratch = Scratch("work")
        except OSError as exc:
            raise BadInput(
                f"the temporary folder {tempfile.gettempdir()} is not writable ({os_reason(exc)}); "
                "set TMPDIR to a writable folder."
            ) from None
        self.workdir = self._scratch.path
        self.dest = dest
        self.saved: dict[str, Path] = {}  # label -> saved model file (or folder)
        self.skipped: dict[str, str] = {}  # label -> why not saved
        self.failed: dict[str, str] = {}  # label -> why it could not be written (one sentence)
        self._study: dict[str, Any] = {}

    def handle(self, event: Any) -> None:
        from core.study.events import StudyStarted, VariantFinished

        if isinstance(event, StudyStarted):
            self._study = {
                "study_id": event.study_id,
                "model": event.model,
                "dataset": event.dataset.get("spec"),
                "quantbench_version": (event.environment.get("versions") or {}).get("quantbench"),
            }
        elif isinstance(event, VariantFinished):
            self._save(event.result)

    def close(self) -> None:
        """Remove the work folder (whatever was saved stays)."""
        self._scratch.remove()

    def _save(self, result: Any) -> None:
        source = Path(result.source_path) if result.source_path else None
        if source is None or not source.is_file():
            self.skipped[result.label] = "it left no file"
            return
        if not source.resolve().is_relative_to(self.workdir.resolve()):
            self.skipped[result.label] = "it is an existing file (the model or a --variant), not something built"
            return
        name = _safe_name(result.label)
        companions = [p for p in (source.with_name(source.name + ".data"),) if p.is_file()]
        # ONNX external data is found by the file name recorded in the model: keep the names, in a folder.
        target = self.dest / name if companions else self.dest / (name + source.suffix)
        sources = (source, *companions) if companions else (source,)
        finals = [target / p.name for p in sources] if companions else [target]
        model_file = finals[0]
        sidecar_path = self.dest / (name + SIDECAR_SUFFIX)
        staged: list[Path] = []
        made_folder = False
        try:
            if companions and not target.is_dir():
                target.mkdir()
                made_folder = True
            for src, final in zip(sources, finals, strict=True):
                staged.append(stage_copy(src, final))
            sidecar = self._sidecar(result, source, model_file, finals, staged)
            staged.append(stage_text(sidecar_path, json.dumps(sidecar, indent=1) + "\n"))
            for part, final in zip(staged, [*finals, sidecar_path], strict=True):
                part.replace(final)
        except (BadInput, OSError) as exc:
            for part in staged:
                _remove(part)
            if made_folder:
                shutil.rmtree(target, ignore_errors=True)
            why = str(exc) if isinstance(exc, BadInput) else could_not_write(model_file, exc)
            self.failed[result.label] = why
            return
        self.saved[result.label] = target

    def _sidecar(
        self, result: Any, source: Path, model_file: Path, finals: list[Path], staged: list[Path]
    ) -> dict[str, Any]:
        return {
            "quantbench_variant": 1,
            "label": result.label,
            "scheme": result.scheme,
            "params": dict(result.params),
            "runtime": result.runtime,
            "file": str(model_file.relative_to(self.dest)),
            "files": [str(f.relative_to(self.dest)) for f in finals],
            "size_bytes": sum(p.stat().st_size for p in staged),
            "sha256": _sha256(staged[0]),
            "load": _LOAD_HINTS.get(source.suffix, ""),
            "source_model": {
                k: self._study.get("model", {}).get(k) for k in ("path", "format", "arch", "params", "file_bytes")
            },
            "dataset": self._study.get("dataset"),
            "study_id": self._study.get("study_id"),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "quantbench_version": self._study.get("quantbench_version"),
            "coverage": result.coverage.get("summary", ""),
            "notes": list(result.notes),
        }


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip(".")[:80] or "variant"
