"""Settings for every test: no window system, and a private QuantBench data folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True, scope="session")
def _private_quantbench_home(tmp_path_factory: pytest.TempPathFactory):
    """History, trust list and logs go to a temporary folder, never the user's."""
    if "QUANTBENCH_HOME" in os.environ and os.environ.get("QUANTBENCH_KEEP_HOME"):
        yield
        return
    home = tmp_path_factory.mktemp("quantbench-home")
    previous = os.environ.get("QUANTBENCH_HOME")
    os.environ["QUANTBENCH_HOME"] = str(home)
    yield
    if previous is None:
        os.environ.pop("QUANTBENCH_HOME", None)
    else:
        os.environ["QUANTBENCH_HOME"] = previous
