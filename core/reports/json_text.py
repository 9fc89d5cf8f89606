"""The result contract as JSON text, written the same by ``quantbench export``/``compare`` and the window.

Strict JSON: no ``NaN``/``Infinity`` tokens, which many parsers reject; a non-finite number becomes null.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_text(payload: Any) -> str:
    """``payload`` (a study's ``to_json_dict()`` or a list of them) as indented strict JSON."""
    try:
        return json.dumps(payload, indent=1, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_only(payload), indent=1, allow_nan=False)


def _finite_only(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_only(v) for v in value]
    return value
