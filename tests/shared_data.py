"""Where the third-party test models live: ``shared/data`` beside the checkout (as CI lays it out)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """$QUANTBENCH_SHARED_DATA, else ``../shared/data`` next to the repository."""
    if os.environ.get("QUANTBENCH_SHARED_DATA"):
        return Path(os.environ["QUANTBENCH_SHARED_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = shared_data_dir()
