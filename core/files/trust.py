"""Files the user has explicitly trusted to contain code, remembered by content hash.

TorchScript archives, torch.export programs and pickled modules run code when
loaded. They open only after the user trusted that exact file; trusting is
recorded by SHA-256 of the bytes, so a different file at the same path (or the
same path after an update) is not trusted by accident.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_FILE = "trusted-files.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TrustList:
    def __init__(self, home: Path | str | None = None) -> None:
        from core.files.home import resolve_home

        self.path = Path(resolve_home(home)) / _FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def is_trusted(self, path: Path | str) -> bool:
        entries = self._read()
        return bool(entries) and file_sha256(Path(path)) in entries

    def trust(self, path: Path | str) -> str:
        """Remember ``path``'s current bytes as trusted; returns the hash."""
        digest = file_sha256(Path(path))
        entries = self._read()
        entries[digest] = str(Path(path).resolve())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".trust.", dir=str(self.path.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh, indent=1)
        os.replace(tmp, self.path)
        return digest

    def revoke(self, path: Path | str) -> None:
        digest = file_sha256(Path(path))
        entries = self._read()
        if entries.pop(digest, None) is not None:
            self.path.write_text(json.dumps(entries, indent=1), encoding="utf-8")


def with_trust_from_list(spec: Any, home: Path | str | None = None) -> Any:
    """``spec`` (a StudySpec) with each file marked trusted exactly when the user's trust list holds its
    current bytes, whatever the spec said.

    Specs read back from a project file or the history never carry trust of their own; this is how a
    re-run regains it, for files the user trusted, and only as long as those files are unchanged.
    """
    from dataclasses import replace

    trust = TrustList(home)

    def listed(path: str) -> bool:
        try:
            return trust.is_trusted(Path(path).expanduser())
        except OSError:
            return False  # missing or unreadable: loading it will say so

    model = replace(spec.model, trusted=listed(spec.model.path))
    variants = tuple(replace(v, trusted=listed(v.path)) if v.path else v for v in spec.variants)
    return replace(spec, model=model, variants=variants)


def trust_files(paths: list[str], home: Path | str | None = None, option: str = "--trust") -> set[str]:
    """Trust each file of ``paths`` (remembered by its content for later runs and the window) and return their
    resolved paths; BadInput names ``option`` and a file that does not exist."""
    from core.errors import BadInput

    trusted: set[str] = set()
    if paths:
        trust_list = TrustList(home)
        for given in paths:
            path = Path(given).expanduser()
            if not path.is_file():
                raise BadInput(f"{option} {given}: no such file.")
            trust_list.trust(path)
            trusted.add(str(path.resolve()))
    return trusted
