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
    sweeps = _checked_sweeps(args)
    if args.max_drop is None and not sweeps:
        raise BadInput("--max-drop is required: the accuracy budget in points (or ask for a sweep alone with "
                       "--calibration-sweep or --batch-sizes).")
    if args.max_drop is not None and not args.max_drop >= 0:
        raise BadInput(f"--max-drop must be zero or more accuracy points, not {args.max_drop:g}.")
    limit = time_limit_s(args.time_limit)
    json_path = _checked_output(args.json)
    html_path = _checked_output(args.html, "--html")
    save_path = _checked_save(args.save_best)
    from core.cli.history import check_home
    from core.files.atomic import check_distinct

    check_distinct({"--json": json_path, "--html": html_path, "--save-best": save_path})
    check_home(args)
    loaded, dataset, spec = _model_and_data(args)
    if dataset.y is None or dataset.task.value != "classification":
        print("quantbench tune: the dataset has no class labels; candidates are judged by agreement with the "
              "float model's predictions.", file=sys.stderr)
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        searched = None if args.max_drop is None else _search(args, loaded, dataset, spec, limit, save_path, cancel)
        swept = _sweeps(args, loaded, dataset, sweeps, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    result = searched[0] if searched is not None else {"schema_version": 1, "kind": "sweeps"}
    result.update(swept)
    failure = _write_outputs(result, json_path, html_path, str(loaded.path))
    if searched is not None:
        failure = failure or searched[1]
        if save_path is not None and result["best"] is None:
            failure = failure or f"--save-best {save_path}: no candidate beat the float model, so nothing was saved."
    if failure is not None:
        print(f"quantbench: {failure}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if searched is None:
        cancelled = any(s.get("status") == "cancelled" for s in swept.values())
        return EXIT_CANCELLED if cancelled else EXIT_OK
    return {"met": EXIT_OK, "missed": EXIT_FAIL_ON}.get(result["status"], EXIT_CANCELLED)


def _search(
    args: argparse.Namespace, loaded: Any, dataset: Any, spec: Any, limit: float, save_path: Path | None,
    cancel: Any,
) -> tuple[dict[str, Any], str | None]:
    """The search, recorded in the history; (its ``kind: "tune"`` dict, why --save-best failed or None)."""
    from core.files.scratch import Scratch
    from core.study.spec import default_threads
    from core.tune.record import SearchStudy, save_best
    from core.tune.search import tune

    recording = _recording(args, spec)
    saved: Path | None = None
    save_failed: str | None = None
    try:
        study = SearchStudy(spec, recording.handle)
        threads = args.threads or default_threads()
        study.start(loaded, dataset, threads, {"max_drop": args.max_drop, "objective": args.objective})
        with Scratch("tune") as workdir:
            result = tune(
                loaded.path, dataset.x, dataset.y if dataset.task.value == "classification" else None,
                lambda n: dataset.calibration_samples(n, args.seed), args.max_drop, args.objective, limit, cancel,
                None if args.quiet else _print_candidate, threads=threads, model=loaded,
                workdir=Path(workdir), on_variant=study.variant,
            )
            study.finish(result)
            if save_path is not None and result["best"] is not None:
                try:
                    saved = save_best(study.result_of(result["best"]["label"]), save_path, study.sidecar_info())
                except BadInput as exc:  # said after the JSON is written: the search itself is kept
                    save_failed = str(exc)
    finally:
        recording.close("interrupted")
    _print_outcome(result)
    if saved is not None:
        sidecar = saved.parent / (saved.stem + ".quantbench.json")
        print(f"saved the best variant to {saved} (how it was made: {sidecar})")
    if recording.finished and not args.quiet:
        print(f"recorded as study {spec.study_id} (quantbench show {spec.study_id})", file=sys.stderr)
    return result, save_failed


def _checked_sweeps(args: argparse.Namespace) -> dict[str, Any]:
    """The sweeps asked for, their options read: {"calibration": counts, "batch": sizes}."""
    from core.tune.sweeps import parse_sizes

    sweeps: dict[str, Any] = {}
    from core.cli.parser import DEFAULT_SWEEP_SAMPLES

    if not args.calibration_sweep and args.sweep_samples != DEFAULT_SWEEP_SAMPLES:
        raise BadInput("--sweep-samples sets the calibration sweep's counts: add --calibration-sweep.")
    if args.calibration_sweep:
        sweeps["calibration"] = parse_sizes(args.sweep_samples, "--sweep-samples")
    if args.batch_sizes:
        sweeps["batch"] = parse_sizes(args.batch_sizes, "--batch-sizes")
    if args.latency_limit is not None and not args.latency_limit > 0:
        raise BadInput(f"--latency-limit must be a positive number of milliseconds, not {args.latency_limit:g}.")
    if (args.scheme or args.latency_limit is not None) and "batch" not in sweeps:
        raise BadInput("--scheme and --latency-limit choose the batch sweep's variants and limit: add --batch-sizes.")
    if args.scheme:
        from core.schemes.params import check_params
        from core.schemes.registry import get_scheme
        from core.study.spec import SchemeSpec

        for text in args.scheme:
            spec = SchemeSpec.parse(text)
            try:
                scheme = get_scheme(spec.id)
            except Exception:  # noqa: BLE001 - the registry's own error for an unknown id
                raise BadInput(f"--scheme {text}: no such scheme (see quantbench schemes).") from None
            check_params(spec, scheme.info)
    return sweeps


def _sweeps(args: argparse.Namespace, loaded: Any, dataset: Any, sweeps: dict[str, Any], cancel: Any) -> dict[str, Any]:
    """Run the sweeps asked for, printing each point; {"calibration_sweep": ..., "batch_sweep": ...}."""
    from core.tune.sweeps import DEFAULT_BATCH_SCHEMES, batch_sweep, calibration_sweep

    out: dict[str, Any] = {}
    calib = lambda n: dataset.calibration_samples(n, args.seed)  # noqa: E731 - one line, used twice
    labels = dataset.y if dataset.task.value == "classification" else None
    if "calibration" in sweeps and not cancel.cancelled:
        out["calibration_sweep"] = calibration_sweep(
            loaded.path, dataset.x, labels, calib, counts=sweeps["calibration"], cancel=cancel,
            on_point=None if args.quiet else _print_calibration_point, threads=args.threads, model=loaded,
        )
        _print_calibration_sweep(out["calibration_sweep"])
    if "batch" in sweeps and not cancel.cancelled:
        out["batch_sweep"] = batch_sweep(
            loaded.path, dataset.x, calib, schemes=tuple(args.scheme) or DEFAULT_BATCH_SCHEMES,
            batch_sizes=sweeps["batch"], latency_limit_ms=args.latency_limit, cancel=cancel,
            on_point=None if args.quiet else _print_batch_point, threads=args.threads, model=loaded,
        )
        _print_batch_sweep(out["batch_sweep"])
    return out


def _write_outputs(result: dict[str, Any], json_path: Path | None, html_path: Path | None, model: str) -> str | None:
    """The JSON and the sweeps' HTML page; the first that could not be written, as one sentence (else None)."""
    from core.files.atomic import could_not_write, write_atomic

    if json_path is not None:
        try:
            write_atomic(json_path, json.dumps(result, indent=1, allow_nan=False))
        except OSError as exc:
            return could_not_write(json_path, exc)
    if html_path is not None:
        from core.tune.sweep_report import render_sweeps_html

        if "calibration_sweep" not in result and "batch_sweep" not in result:
            return f"--html {html_path}: the page shows the sweeps; add --calibration-sweep or --batch-sizes."
        try:
            write_atomic(html_path, render_sweeps_html(result.get("calibration_sweep"), result.get("batch_sweep"),
                                                       Path(model).name))
        except OSError as exc:
            return could_not_write(html_path, exc)
        print(f"wrote {html_path}", file=sys.stderr)
    return None


def _print_calibration_point(p: dict[str, Any]) -> None:
    if p["status"] != "ok":
        print(f"  {p['method']:<10} {p['samples']:>5} samples  failed: {p.get('error', '')}", file=sys.stderr)
        return
    sqnr = "-" if p["sqnr_db"] is None else f"{p['sqnr_db']:.1f} dB"
    print(f"  {p['method']:<10} {p['samples']:>5} samples  {p['accuracy'] * 100:6.2f} %  {_change(p):>9}  "
          f"SQNR {sqnr}", file=sys.stderr, flush=True)


def _print_calibration_sweep(sweep: dict[str, Any]) -> None:
    ok = [p for p in sweep["points"] if p["status"] == "ok"]
    print(f"calibration sweep ({sweep['status']}): {len(ok)} of {len(sweep['points'])} points measured.")
    if ok:
        top = max(ok, key=lambda p: (p["accuracy"], p["sqnr_db"] or 0.0))
        print(f"most accurate: {top['scheme']} ({_change(top)}, SQNR {top['sqnr_db']} dB)")
    for note in sweep.get("notes", []):
        print(f"note: {note}.")


def _print_batch_point(p: dict[str, Any]) -> None:
    per_s = p["throughput_per_s"]
    print(f"  {p['label']:<24} batch {p['batch_size']:>5}  p50 {p['latency_ms']['p50']:.4g} ms/call  "
          f"{'-' if per_s is None else f'{per_s:,.0f}'} samples/s", file=sys.stderr, flush=True)


def _print_batch_sweep(sweep: dict[str, Any]) -> None:
    limit = sweep.get("latency_limit_ms")
    within = f" within {limit:g} ms per call" if limit is not None else ""
    print(f"batch sweep ({sweep['status']}): best throughput{within}:")
    for v in sweep["variants"]:
        if v["status"] != "ok":
            print(f"  {v['label']}: failed: {v.get('error', '')}")
            continue
        best = next((p for p in v["points"] if p["batch_size"] == v.get("best_batch_size")), None)
        said = "none" if best is None else (f"batch {best['batch_size']}, {best['throughput_per_s']:,.0f} samples/s, "
                                            f"p50 {best['latency_ms']['p50']:.4g} ms/call")
        print(f"  {v['label']}: {said}" + (f" (stopped: {v['stopped']})" if v.get("stopped") else ""))


def _checked_output(path: str | None, option: str = "--json") -> Path | None:
    if path is None:
        return None
    from core.files.atomic import check_output_file

    return check_output_file(option, path)


def _checked_save(path: str | None) -> Path | None:
    if path is None:
        return None
    from core.files.atomic import check_output_file

    target = check_output_file("--save-best", path)
    if target.is_dir():
        raise BadInput(f"--save-best {path} is a folder; give the file to save the best variant as (e.g. best.onnx).")
    return target


def _recording(args: argparse.Namespace, spec: Any) -> Any:
    """The search's record in the history (``quantbench history`` lists it), as ``run`` records a study."""
    from core.history.recorder import StudyRecording
    from core.history.store import StudyStore
    from core.tune.record import study_name

    return StudyRecording(
        spec,
        open_store=None if args.no_history else lambda: StudyStore(args.home),
        name=args.name or study_name(args.max_drop, args.objective),
        on_store_failed=lambda sentence: sys.stderr.write(f"quantbench: warning: {sentence}\n"),
    )


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
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
    spec = replace(spec, seed=args.seed, timing=replace(spec.timing, threads=args.threads))
    loaded = load_model(spec.model)
    return loaded, load_dataset(spec.dataset, loaded.input, args.seed), spec


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
