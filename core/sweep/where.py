"""Where a sweep runs: here (one study after another, as ``quantbench run`` runs them), a local Ray instance, or
an existing Ray cluster; and whether Ray is installed at all (it is an optional dependency)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from core.errors import BadInput

#: What the CLI and the window say when a sweep asks for Ray and it is not installed.
RAY_MISSING = "Ray is not installed; install it with: pip install 'quantbench[cluster]'"
#: The environment variable Ray itself reads for a cluster's address.
ENV_RAY_ADDRESS = "RAY_ADDRESS"
#: ``--ray`` value that starts a Ray instance on this machine for the sweep.
LOCAL = "local"


def ray_problem() -> str | None:
    """None when Ray can be imported, else the sentence saying what to install (nothing is imported here)."""
    return None if importlib.util.find_spec("ray") is not None else RAY_MISSING


@dataclass(frozen=True)
class Where:
    """``ray`` False: here. ``address`` None or "local": a Ray instance started on this machine for the sweep;
    otherwise a running cluster's address (``host:port`` or ``ray://host:port``)."""

    ray: bool = False
    address: str | None = None
    #: A target device: a Ray node carrying the resource ``device:NAME``; studies are measured there.
    target: str | None = None

    @classmethod
    def from_option(cls, ray: str | None, target: str | None = None) -> Where:
        """From ``--ray`` (None: here; "local"; "" or "env": $RAY_ADDRESS; else an address) and ``--target``."""
        if ray is None:
            if target:
                raise BadInput(f"--target {target}: a target is a node of a Ray cluster; add --ray local or "
                               "--ray ADDRESS.")
            return cls()
        text = ray.strip()
        if text in ("", "env"):
            text = os.environ.get(ENV_RAY_ADDRESS, "").strip()
            if not text:
                raise BadInput(f"--ray: no address given and {ENV_RAY_ADDRESS} is not set "
                               "(use --ray local, or --ray HOST:PORT).")
        if target is not None and not target.strip():
            raise BadInput("--target: the target name is empty.")
        return cls(ray=True, address=None if text == LOCAL else text, target=target.strip() if target else None)

    def describe(self) -> str:
        if not self.ray:
            return "here"
        where = "on a local Ray instance" if self.address is None else f"on the Ray cluster at {self.address}"
        return where + (f", measured on target {self.target}" if self.target else "")
