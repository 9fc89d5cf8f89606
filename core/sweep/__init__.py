"""Sweeps: many independent studies, run here one after another or as tasks on a Ray cluster.

``load_sweep`` reads a SWEEP.json ({"studies": [SPEC, ...]}, each SPEC as ``--save-spec`` writes it);
``run_sweep`` is a generator of ``SweepEvent`` values, like the engine, stopped with a CancelToken.
Ray is optional and imported only when a sweep asks for it (``quantbench[cluster]``).
"""

from core.sweep.events import SweepEvent, SweepFinished, SweepNote, SweepStudyChanged
from core.sweep.file import load_sweep, spec_fingerprint
from core.sweep.outcome import TABLE_HEADERS, StudyOutcome, StudyState, best_variant, table_row
from core.sweep.where import RAY_MISSING, Where, ray_problem

__all__ = [
    "RAY_MISSING",
    "StudyOutcome",
    "StudyState",
    "TABLE_HEADERS",
    "SweepEvent",
    "SweepFinished",
    "SweepNote",
    "SweepStudyChanged",
    "Where",
    "best_variant",
    "load_sweep",
    "ray_problem",
    "spec_fingerprint",
    "table_row",
]


def run_sweep(*args, **kwargs):  # type: ignore[no-untyped-def]
    """``core.sweep.driver.run_sweep`` (imported when called: it pulls in the engine)."""
    from core.sweep.driver import run_sweep as run

    return run(*args, **kwargs)
