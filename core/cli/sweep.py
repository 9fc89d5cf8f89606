"""``quantbench sweep SWEEP.json``: many studies, here one after another or on a Ray cluster.

A line on stderr at each change of a study (running, done, skipped, retried), a table of the sweep at the end,
and with ``--json`` each study's result and where it ran. Exit codes as ``run``: 0 every study done (or already
in the history), 2 bad input (the sweep file, an option, or a study's own files), 1 an internal error in a
study, 130 cancelled (Ctrl-C; the studies finished so far stay in the history).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from core.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK
from core.errors import BadInput
from core.printable import counted


def cmd_sweep(args: argparse.Namespace, isolation: dict[str, Any]) -> int:
    """``isolation``: the ``run_study_isolated`` options of --max-memory and --hang-timeout; on Ray they guard each
    study's process on its node, and without --max-memory each node takes its own default share of its memory."""
    from core.files.atomic import check_output_file, write_atomic
    from core.study.cancel import CancelToken
    from core.sweep import SweepFinished, SweepNote, SweepStudyChanged, Where, load_sweep, ray_problem, run_sweep

    where = Where.from_option(args.ray, args.target)
    if where.ray and ray_problem():
        raise BadInput(f"--ray: {ray_problem()}.")
    if where.ray and getattr(args, "max_memory", None) is None:
        isolation = {k: v for k, v in isolation.items() if k != "max_memory_bytes"}
    json_path = check_output_file("--json", args.json) if args.json is not None else None
    specs = load_sweep(args.sweep, home=args.home)
    _say(args, f"sweep {args.sweep}: {counted(len(specs), 'study', 'studies')}, run {where.describe()}")
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    finished: Any = None
    try:
        events = run_sweep(specs, where, home=args.home, cancel=cancel, resume=not args.again,
                           isolation=isolation)
        for event in events:
            if isinstance(event, SweepStudyChanged):
                _say(args, _change_line(event.outcome, len(specs)))
            elif isinstance(event, SweepNote):
                sys.stderr.write(f"quantbench: {event.message}\n")
            elif isinstance(event, SweepFinished):
                finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
    print(sweep_table(finished.outcomes))
    if json_path is not None:
        payload = {"kind": "sweep", "schema_version": 1, "sweep": str(args.sweep), "where": finished.where,
                   "cancelled": finished.cancelled, "studies": [o.to_json_dict() for o in finished.outcomes]}
        write_atomic(json_path, json.dumps(payload, indent=1, allow_nan=False))
        _say(args, f"wrote {json_path}")
    return _exit_code(finished)


def _exit_code(finished: Any) -> int:
    if finished.cancelled:
        sys.stderr.write("quantbench: cancelled; the studies finished so far are in the history.\n")
        return EXIT_CANCELLED
    kinds = {o.error_kind for o in finished.outcomes if o.state.value == "failed"}
    for o in finished.outcomes:
        if o.state.value == "failed":
            sys.stderr.write(f"quantbench: study {o.index + 1} ({o.model_name}): {o.error}\n")
    if "internal" in kinds:
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if kinds else EXIT_OK


def _change_line(outcome: Any, total: int) -> str:
    head = f"[{outcome.index + 1}/{total}] {outcome.state.value:<9} {outcome.model_name}"
    if outcome.state.value == "done":
        best = outcome.best
        return f"{head}  on {outcome.where}" + (f"; best {best}" if best else "") + f"  (study {outcome.study_id})"
    if outcome.state.value == "running" and outcome.where:
        return f"{head}  on {outcome.where}"
    return f"{head}  {outcome.error}" if outcome.error else head


def sweep_table(outcomes: list[Any]) -> str:
    """The sweep as a plain-text table: one row per study, in the sweep file's order."""
    from core.cli.history import _table
    from core.sweep.outcome import TABLE_HEADERS, table_row

    return _table(list(TABLE_HEADERS), [table_row(o) for o in outcomes])


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
