"""Keep the variants a study builds: ``quantbench run --save-variants DIR``.

The engine writes each variant into a work folder; a ``VariantSaver`` hands
the engine a work folder inside DIR and, as each variant finishes, copies its
file(s) to ``DIR/<label>.<ext>`` in the runtime's own format, next to a small
``DIR/<label>.quantbench.json`` sidecar that says how it was made. The work
folder is removed at the end. The baseline and ``--variant`` files are the
user's own files and are not copied.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.errors import BadInput

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
        try:
            dest.mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix=".quantbench-work-", dir=dest))
        except OSError as exc:
            raise BadInput(f"--save-variants {dest}: cannot write there ({exc.strerror}).") from None
        self.dest = dest
        self.saved: dict[str, Path] = {}  # label -> saved model file (or folder)
        self.skipped: dict[str, str] = {}  # label -> why not saved
        self._study: dict[str, Any] = {}

    def handle(self, event: Any) -> None:
        from core.events import StudyStarted, VariantFinished

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
        shutil.rmtree(self.workdir, ignore_errors=True)

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
        if companions:
            # ONNX external data is found by the file name recorded in the model: keep the names, in a folder.
            target = self.dest / name
            target.mkdir(exist_ok=True)
            files = [_copy(p, target / p.name) for p in (source, *companions)]
            model_file = target / source.name
        else:
            model_file = _copy(source, self.dest / (name + source.suffix))
            files = [model_file]
            target = model_file
        sidecar = {
            "quantbench_variant": 1,
            "label": result.label,
            "scheme": result.scheme,
            "params": dict(result.params),
            "runtime": result.runtime,
            "file": str(model_file.relative_to(self.dest)),
            "files": [str(f.relative_to(self.dest)) for f in files],
            "size_bytes": sum(f.stat().st_size for f in files),
            "sha256": _sha256(model_file),
            "load": _LOAD_HINTS.get(source.suffix, ""),
            "source_model": {k: self._study.get("model", {}).get(k) for k in ("path", "format", "arch", "params", "file_bytes")},
            "dataset": self._study.get("dataset"),
            "study_id": self._study.get("study_id"),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quantbench_version": self._study.get("quantbench_version"),
            "coverage": result.coverage.get("summary", ""),
            "notes": list(result.notes),
        }
        from core.cli import write_atomic

        write_atomic(self.dest / (name + SIDECAR_SUFFIX), json.dumps(sidecar, indent=1) + "\n")
        self.saved[result.label] = target


def _copy(src: Path, dst: Path) -> Path:
    # Copy beside the target and rename, so an interrupted copy never leaves half a model under the real name.
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return dst


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip(".")[:80] or "variant"
