"""QuantBench's data folder: the history, the trust list and the logs live there."""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that moves the data folder (``--home`` does the same for one command).
ENV_HOME = "QUANTBENCH_HOME"


def resolve_home(home: Path | str | None = None) -> Path:
    """QuantBench's data folder: ``home``, else $QUANTBENCH_HOME, else the user data folder."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("quantbench", appauthor=False))
