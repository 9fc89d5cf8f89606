"""The recently opened models, kept in QSettings (INI file in the user's config folder)."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings

MAX_RECENT = 10
_KEY = "recent_models"


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "QuantBench", "quantbench")


def recent_models() -> list[tuple[str, str | None]]:
    """(path, architecture) pairs, most recent first."""
    raw = settings().value(_KEY, "[]")
    try:
        items = json.loads(raw if isinstance(raw, str) else "[]")
    except json.JSONDecodeError:
        return []
    return [(str(p), a if isinstance(a, str) else None) for p, a in items if isinstance(p, str)]


def remember_model(path: str, arch: str | None) -> None:
    items = [(p, a) for p, a in recent_models() if p != path]
    items.insert(0, (path, arch))
    s = settings()
    s.setValue(_KEY, json.dumps(items[:MAX_RECENT]))
    s.sync()


def forget_model(path: str) -> None:
    s = settings()
    s.setValue(_KEY, json.dumps([(p, a) for p, a in recent_models() if p != path]))
    s.sync()
