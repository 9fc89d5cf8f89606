"""``quantbench tune``: find the variant that fits an accuracy budget, measuring every candidate.

The search itself is ``core.tune.search.tune``; this module reads the options, loads the model and
the dataset as ``run`` does (the same dataset split: candidates are evaluated on the evaluation
samples, static schemes calibrate on the held-out ones), prints each candidate as it finishes and
writes the ``kind: "tune"`` JSON. Exit codes: 0 the budget was met, 3 it was missed (a CI gate, like
``run --fail-on``), 130 cancelled (Ctrl-C keeps the candidates measured so far), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

from core.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAIL_ON, EXIT_OK
from core.errors import BadInput

#: ``--time-limit`` values: seconds, or with a unit (90s, 10m, 1h).
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def time_limit_s(text: str) -> float:
    """``--time-limit`` in seconds; BadInput names the option when it cannot be read."""
    match = _DURATION.match(str(text))
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else 0.0
    if not seconds > 0:
        raise BadInput(f"--time-limit {text!r} must be a positive duration, e.g. 90s or 10m.")
    return seconds


def cmd_tune(args: argparse.Namespace) -> int:
    from core.study.cancel import CancelToken

    if args.threads is not None and args.threads < 1:
        raise BadInput("--threads must be at least 1.")
    if args.limit is not None and args.limit < 1:
        raise BadInput("--limit must be at least 1.")
    if not args.max_drop >= 0:
        raise BadInput(f"--max-drop must be zero or more accuracy points, not {args.max_drop:g}.")
    limit = time_limit_s(args.time_limit)
    json_path = _checked_output(args.json)
    loaded, dataset = _model_and_data(args)
    if dataset.y is None or dataset.task.value != "classification":
        print("quantbench tune: the dataset has no class labels; candidates are judged by agreement with the "
              "float model's predictions.", file=sys.stderr)
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        from core.tune.search import tune

        result = tune(
            loaded.path, dataset.x, dataset.y if dataset.task.value == "classification" else None,
            lambda n: dataset.calibration_samples(n, args.seed), args.max_drop, args.objective, limit, cancel,
            None if args.quiet else _print_candidate, threads=args.threads, model=loaded,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    _print_outcome(result)
    if json_path is not None:
        from core.files.atomic import could_not_write, write_atomic

        try:
            write_atomic(json_path, json.dumps(result, indent=1, allow_nan=False))
        except OSError as exc:
            print(f"quantbench: {could_not_write(json_path, exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return {"met": EXIT_OK, "missed": EXIT_FAIL_ON}.get(result["status"], EXIT_CANCELLED)


def _checked_output(path: str | None) -> Path | None:
    if not path:
        return None
    from core.files.atomic import check_output_file

    return check_output_file("--json", path)


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model and dataset as ``quantbench run`` would load them for these options."""
    from dataclasses import replace

    from core.datasets import load_dataset
    from core.files.trust import trust_files, with_trust_from_list
    from core.models import load_model
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec

    if args.demo:
        from core.engine.run import demo_study_spec

        base = demo_study_spec()
        model_spec, dataset_spec = base.model, base.dataset
        if args.dataset:
            dataset_spec = DatasetSpec.parse(args.dataset)
    else:
        if not args.dataset:
            raise BadInput("--dataset is required with --model (e.g. npz:val.npz).")
        model_spec = ModelSpec(path=str(Path(args.model).expanduser()), arch=args.arch)
        dataset_spec = DatasetSpec.parse(args.dataset)
    if args.limit:
        dataset_spec = replace(dataset_spec, limit=args.limit)
    trust_files(args.trust)  # remembered by content, as `run --trust` does
    spec = with_trust_from_list(StudySpec(model=model_spec, dataset=dataset_spec))
    loaded = load_model(spec.model)
    return loaded, load_dataset(spec.dataset, loaded.input, args.seed)


def _print_candidate(c: dict[str, Any]) -> None:
    if c.get("status") == "failed":
        print(f"  {c['label']:<24} failed: {c.get('error', '')}", file=sys.stderr)
        return
    latency = c.get("latency_ms") or {}
    print(
        f"  {c['label']:<24} {c['accuracy'] * 100:6.2f} %  {_change(c):>9}  "
        f"p50 {latency.get('p50', float('nan')):.4g} ms  {c['size_bytes'] / 1000:,.0f} kB  {c['scheme']}",
        file=sys.stderr, flush=True,
    )


def _change(candidate: dict[str, Any]) -> str:
    """A candidate's accuracy change as the reports write it ('-0.44 pt', '±0.00 pt'), rounded toward the worse."""
    from core.reports.format import format_points

    return format_points(-candidate["accuracy_drop_pt"] / 100, decimals=2, typographic=True)


def _print_outcome(result: dict[str, Any]) -> None:
    budget = result["budget"]
    best = result.get("best")
    said = {"met": "budget met", "missed": "budget missed", "cancelled": "cancelled"}[result["status"]]
    measured = sum(1 for c in result["candidates"] if c.get("status") != "failed")
    print(f"{said}: {measured} candidates measured in {result['elapsed_s']:.0f} s "
          f"(at most {budget['max_drop']:g} points lost, by {budget['objective']}).")
    if best is not None:
        latency = best.get("latency_ms") or {}
        print(f"best: {best['scheme']}  ({_change(best)}, p50 {latency.get('p50', 0):.4g} ms, "
              f"{best['size_bytes'] / 1000:,.0f} kB)")
    else:
        print("best: none of the candidates beat the float model on " + budget["objective"] + ".")
