"""The headless ``quantbench`` commands: ``run`` and ``schemes`` here, the history commands in
``core.cli.history``; the options of all of them (and the window's) in ``core.cli.parser``.

Exit codes: 0 done; 2 bad input (one sentence on stderr, no traceback); 1 internal error;
3 a variant graded at or below --fail-on; 130 cancelled. Nothing heavy is imported before it
is needed, so ``quantbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAIL_ON, EXIT_INTERNAL, EXIT_OK
from core.cli.parser import build_parser, parse_args
from core.errors import BadInput, Cancelled
from core.printable import PrintableStream, counted, printable


def safety_limits(args: argparse.Namespace) -> dict[str, Any]:
    """``run_study_isolated`` keyword arguments from --max-memory and --hang-timeout; BadInput names a bad value."""
    from core.memory_limit import ceiling_from_option

    try:
        memory = ceiling_from_option(args.max_memory)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    # --hang-timeout is a positive number already: the parser refuses anything else.
    return {"hang_timeout_s": args.hang_timeout, "max_memory_bytes": memory}


@contextmanager
def _printable_streams() -> Iterator[None]:
    """Whatever a file put into a message (an ANSI escape in a name, metadata, a runtime's error), and whatever
    a usage error repeats from the command line, is shown written out, never obeyed by the terminal."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(sys.stdout), PrintableStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a ``quantbench`` command line with the one parser (``core.cli.parser``); ``command`` is None for
    the window. ``--help`` and ``--version`` print and exit 0; a usage error is one sentence and exit 2."""
    with _printable_streams():
        return parse_args(argv)


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """The headless commands. ``args``: ``argv`` already parsed (the console script parses once, then
    opens the window itself or comes here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with _printable_streams():
        if args is None:
            args = parse_args(argv)
        if args.command is None:
            sys.stderr.write(
                "quantbench: the window is opened by the `quantbench` command; here use a subcommand such as `run`.\n"
            )
            return EXIT_BAD_INPUT
        if hasattr(signal, "SIGXFSZ"):
            # Past a file-size limit (ulimit -f) a write should fail and be told in a sentence, not kill us.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from core.files.logs import quiet_runtime_consoles

        quiet_runtime_consoles()  # before any runtime loads here or in a study process started from here
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        if args.command == "schemes":
            return _cmd_schemes()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "tune":
            from core.cli.tune import cmd_tune

            return cmd_tune(args)
        if args.command == "sweep":
            from core.cli.sweep import cmd_sweep

            return cmd_sweep(args, safety_limits(args))
        from core.cli.history import dispatch

        code = dispatch(args)
        if code is not None:
            return code
    except BadInput as exc:
        sys.stderr.write(f"quantbench: {printable(exc)}\n")
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Cancelled):
        sys.stderr.write("quantbench: cancelled.\n")
        return EXIT_CANCELLED
    except Exception as exc:  # an internal error: still one line, plus where to look
        from core.files.logs import log_exception

        log = log_exception(exc, f"quantbench {' '.join(argv)}", getattr(args, "home", None))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        sys.stderr.write(f"quantbench: internal error: {type(exc).__name__}: {printable(first)} (details in {log}).\n")
        if os.environ.get("QUANTBENCH_DEBUG"):
            raise
        return EXIT_INTERNAL
    build_parser().print_help()
    return EXIT_OK


def _cmd_schemes() -> int:
    from core.schemes import catalogue

    for scheme in catalogue():
        info = scheme.info
        print(f"{info.id:<22} {info.description}")
        print(f"{'':<22} needs: {info.needs}")
        for p in info.params:
            choices = f" ({'|'.join(p.choices)})" if p.choices else ""
            print(f"{'':<22}   {p.name}={p.default}{choices}: {p.explained}")
    return EXIT_OK


def spec_from_args(args: argparse.Namespace) -> Any:
    """Turn `quantbench run` options into a StudySpec; BadInput names the option at fault."""
    from core.study.spec import (
        DatasetSpec,
        Device,
        ModelSpec,
        StudySpec,
        Task,
        Thresholds,
        TimingMode,
        TimingSpec,
    )

    trusted = _trust_files(args)
    _check_run_numbers(args)
    timing = TimingSpec(
        threads=args.threads, mode=TimingMode(args.timing), batch_size=args.batch_size, max_time_s=args.max_time,
        eval_batch_size=args.eval_batch_size, slow_variant_samples=args.slow_variant_samples,
    )
    thresholds = Thresholds(
        accuracy_drop_good=args.accuracy_good / 100, accuracy_drop_bad=args.accuracy_bad / 100,
        size_reduction_good=args.size_good / 100, latency_reduction_good=args.speed_good / 100,
        class_recall_drop_bad=args.class_recall_bad / 100,
        perplexity_ratio_good=args.perplexity_good, perplexity_ratio_bad=args.perplexity_bad,
    )
    if args.demo:
        from core.engine.run import demo_study_spec

        base = demo_study_spec(timing)
        model = base.model
        dataset = base.dataset if not args.dataset else DatasetSpec.parse(args.dataset)
    else:
        shape = None
        if args.input_shape:
            try:
                shape = tuple(int(d) for d in args.input_shape.split(","))
            except ValueError:
                raise BadInput(
                    f"--input-shape {args.input_shape!r} must be integers separated by commas, e.g. 1,3,224,224."
                ) from None
        if not args.model.strip():
            raise BadInput("--model needs a file name.")
        path = str(Path(args.model).expanduser())
        model = ModelSpec(path=path, arch=args.arch, trusted=str(Path(path).resolve()) in trusted, input_shape=shape,
                          output=args.output or None)
        if not args.dataset:
            raise BadInput("--dataset is required with --model (e.g. npz:val.npz, or synthetic:256 for latency only).")
        dataset = DatasetSpec.parse(args.dataset)
    dataset = _with(dataset, task=Task(args.task), limit=args.limit, calibration=_calibration_data(args))
    return StudySpec(
        model=model, dataset=dataset, variants=_variants_from_args(args, trusted), timing=timing,
        thresholds=thresholds, device=Device(args.device), seed=args.seed,
        layer_samples=_layer_samples(args),
    )


def _calibration_data(args: argparse.Namespace) -> str | None:
    """``--calibration-data`` as ``DatasetSpec.calibration``; BadInput names the option when it cannot be read."""
    from core.study.spec import CALIBRATE_ON_SAME, DatasetSpec

    text = (getattr(args, "calibration_data", None) or "").strip()
    if not text or text.lower() == CALIBRATE_ON_SAME:
        return text.lower() or None
    try:
        DatasetSpec.parse(text)
    except BadInput as exc:
        raise BadInput(f"--calibration-data: {exc}") from None
    return text


def _trust_files(args: argparse.Namespace) -> set[str]:
    """Trust every --trust file (remembered for later runs) and return their resolved paths."""
    from core.files.trust import trust_files

    return trust_files(args.trust, getattr(args, "home", None))


#: The verdict's threshold options of `quantbench run` (points, percent or ratios; never negative).
THRESHOLD_OPTIONS = ("--accuracy-good", "--accuracy-bad", "--size-good", "--speed-good", "--class-recall-bad",
                     "--perplexity-good", "--perplexity-bad")


def _check_run_numbers(args: argparse.Namespace) -> None:
    """BadInput for a numeric `quantbench run` option out of range."""
    if args.threads is not None and args.threads < 1:
        raise BadInput("--threads must be at least 1.")
    if args.batch_size < 1:
        raise BadInput("--batch-size must be at least 1.")
    if args.eval_batch_size is not None and args.eval_batch_size < 1:
        raise BadInput("--eval-batch-size must be at least 1.")
    if args.slow_variant_samples is not None and args.slow_variant_samples < 1:
        raise BadInput("--slow-variant-samples must be at least 1.")
    if not (math.isfinite(args.max_time) and args.max_time > 0):
        raise BadInput("--max-time must be positive.")
    if args.no_history and args.name is not None:
        raise BadInput("--name names the study in the history, which --no-history turns off: drop one of them.")
    if args.demo and args.arch is not None:
        raise BadInput("--arch is for a model file; --demo brings its own model and architecture.")
    from core.engine.isolation import DEFAULT_HANG_TIMEOUT_S

    if args.in_process and (args.max_memory is not None or args.hang_timeout != DEFAULT_HANG_TIMEOUT_S):
        raise BadInput("--max-memory and --hang-timeout guard the study's own process, which --in-process does not "
                       "start: drop one or the other.")
    if args.limit is not None and args.limit < 1:
        raise BadInput("--limit must be at least 1.")
    if args.layer_samples is not None and args.layer_samples < 1:
        raise BadInput("--layer-samples must be at least 1 (--no-layers turns the layer analysis off).")
    if args.no_layers and (args.layers or args.layer_samples is not None):
        raise BadInput("--no-layers cannot go with --layers or --layer-samples: choose one.")
    for option in THRESHOLD_OPTIONS:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        ratio = option.startswith("--perplexity")
        if not (math.isfinite(value) and value >= 0 and (ratio or value <= 100)):
            raise BadInput(f"{option} must be a number {'of 0 or more' if ratio else 'from 0 to 100'}, not {value:g}.")


def _layer_samples(args: argparse.Namespace) -> int | None:
    """StudySpec.layer_samples from --layers / --no-layers / --layer-samples: None (automatic) when none is given."""
    from core.layers import DEFAULT_LAYER_SAMPLES

    if args.no_layers:
        return 0
    if args.layer_samples is not None:
        return args.layer_samples
    return DEFAULT_LAYER_SAMPLES if args.layers else None


def _variants_from_args(args: argparse.Namespace, trusted: set[str]) -> tuple[Any, ...]:
    """The VariantSpecs of the --scheme ids (fp32, the baseline, left out) and then the --variant files.

    Without --scheme: the default schemes, each left out where it cannot apply to the model; with --variant
    files and no --scheme, only the files (compared with the baseline)."""
    from core.engine.run import DEFAULT_SCHEMES, DEMO_SCHEMES
    from core.schemes import get_scheme
    from core.schemes.params import check_params
    from core.study.spec import SchemeSpec, VariantSpec

    defaults = not args.scheme
    named = DEMO_SCHEMES if args.demo else DEFAULT_SCHEMES
    schemes = args.scheme or ([] if args.variant else list(named[1:]))
    variants = []
    for text in schemes:
        s = SchemeSpec.parse(text)
        check_params(s, get_scheme(s.id).info)  # unknown ids and bad values are bad input before anything runs
        if s.id != "fp32":
            variants.append(VariantSpec(scheme=s, if_applicable=defaults))
    for p in args.variant:
        resolved = str(Path(p).expanduser().resolve())
        if not Path(resolved).exists():
            raise BadInput(f"--variant {p}: no such file.")
        variants.append(VariantSpec(path=str(Path(p).expanduser()), trusted=resolved in trusted))
    return tuple(variants)


def _with(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


def _cmd_run(args: argparse.Namespace) -> int:
    from core.cli.history import RunExtras
    from core.engine.isolation import run_study_isolated
    from core.engine.run import run_study
    from core.files.atomic import check_distinct, check_output_file, write_atomic
    from core.reports.text import format_table, terminal_width
    from core.study.cancel import CancelToken
    from core.study.events import StudyFinished

    json_path = check_output_file("--json", args.json) if args.json is not None else None
    limits = safety_limits(args)
    extras = RunExtras(args)  # --html, --spec, --save-spec, --save-variants, the history
    check_distinct({"--json": json_path, "--html": extras.html, "--csv": extras.csv,
                    "--save-spec": extras.save_spec_path})
    spec = extras.load_spec() or spec_from_args(args)
    _check_device(args, spec)
    extras.begin(spec)
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    finished = None
    printer = _ProgressPrinter(args)
    try:
        if args.in_process:
            events = run_study(spec, cancel, workdir=extras.workdir)
        else:
            # A runtime that crashes or hangs on this file ends only the child process.
            events = run_study_isolated(spec, cancel, **limits, **extras.isolation_options())
        for event in events:
            extras.handle(event)
            printer.show(event)
            if isinstance(event, StudyFinished):
                finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
        extras.close()
    if finished is None:
        sys.stderr.write("quantbench: internal error: the study ended without its result.\n")
        return EXIT_INTERNAL
    result = finished.result
    _check_baseline(result, finished.cancelled)
    print(format_table(result, terminal_width()))
    if json_path is not None:
        write_atomic(json_path, json.dumps(result.to_json_dict(), indent=1, allow_nan=False))
        _say(args, f"wrote {json_path}")
    extras.finish(result)
    if finished.cancelled:
        sys.stderr.write(f"quantbench: {cancelled_summary(printer.planned or _planned_labels(spec), result)}\n")
        return EXIT_CANCELLED
    tripped = fail_on_reasons(result, args.fail_on)
    if tripped:
        sys.stderr.write(f"quantbench: --fail-on {args.fail_on}: {'; '.join(tripped)}.\n")
        return EXIT_FAIL_ON
    return EXIT_OK


def _check_baseline(result: Any, cancelled: bool) -> None:
    """A study whose baseline did not run never exits 0: BadInput (2) when the model itself does not run,
    an internal error (1) when the study ended without the baseline's result at all."""
    from core.study.result import VariantStatus

    failure = result.baseline_failure()
    if failure is not None:
        raise BadInput(failure)  # a model that does not run is the file's problem: exit 2, one sentence
    base = result.baseline()
    if not cancelled and (base is None or base.status is not VariantStatus.OK):
        raise RuntimeError(f"the study ended ({result.status}) without measuring the baseline")


def fail_on_reasons(result: Any, level: str | None) -> list[str]:
    """Why ``--fail-on level`` trips on ``result`` (empty: it passes). A variant trips it when its overall
    grade is at or below ``level``, or when it failed; the baseline and skipped variants never do."""
    from core.study.result import Grade, VariantStatus

    if level is None:
        return []
    tripping = {Grade.BAD} if level == "bad" else {Grade.BAD, Grade.ACCEPTABLE}
    reasons = []
    for v in result.results:
        if v.is_baseline or v.status is VariantStatus.SKIPPED:
            continue
        if v.status is VariantStatus.FAILED:
            reasons.append(f"{v.label} failed")
        elif v.verdict is not None and v.verdict.overall in tripping:
            reasons.append(f"{v.label} graded {v.verdict.overall.value.upper()}")
    return reasons


def cancelled_summary(planned: Sequence[str], result: Any) -> str:
    """"cancelled: 1 of 3 variants measured; not run: b (stopped midway), c." for a study stopped midway.

    A variant whose process was ended under it by the Cancel is "stopped midway"; those never started follow."""
    from core.study.result import VariantStatus

    stopped = {v.label for v in result.results if v.status is VariantStatus.FAILED and v.error_stage == "running"}
    done = {v.label for v in result.results} - stopped
    measured = sum(1 for v in result.results if v.ok)
    not_run = [label + (" (stopped midway)" if label in stopped else "") for label in planned if label not in done]
    text = f"cancelled: {measured} of {counted(len(planned), 'variant')} measured"
    return text + (f"; not run: {', '.join(not_run)}." if not_run else ".")


def _planned_labels(spec: Any) -> list[str]:
    """The rows a study would have had, when it was cancelled before it said (while loading)."""
    from core.study.result import BASELINE_SCHEME

    return [BASELINE_SCHEME, *(v.label for v in spec.variants)]


def _check_device(args: argparse.Namespace, spec: Any) -> None:
    """BadInput, before anything runs or is written, when the study asks for a device this machine lacks."""
    from core.study.spec import Device

    if spec.device is not Device.CUDA:
        return
    from core.runtimes.devices import cuda_problem

    problem = cuda_problem()
    if problem:
        asked = f"--spec {args.spec} asks for CUDA" if args.spec and args.device != "cuda" else "--device cuda"
        raise BadInput(f"{asked}, but there is {problem}; use --device cpu.")


class _ProgressPrinter:
    """Writes a study's events to stderr as `quantbench run` goes (nothing with --quiet)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n_variants = 0
        #: The labels the study planned, from its StudyStarted (empty until then).
        self.planned: list[str] = []
        self.last_stage: tuple[str, str] | None = None  # a stage is shown once, not at every step

    def show(self, event: Any) -> None:
        from core.study.events import Progress, StudyStarted, VariantFailed, VariantFinished, VariantStarted

        args = self.args
        if isinstance(event, StudyStarted):
            self.n_variants = len(event.variants)
            self.planned = list(event.variants)
            self._study_started(event)
        elif isinstance(event, VariantStarted):
            _say(args, f"[{event.index + 1}/{self.n_variants}] {event.label}")
            self.last_stage = None
        elif isinstance(event, Progress):
            key = (event.label, event.stage)
            if key != self.last_stage:
                _say(args, f"    {event.message}")
                self.last_stage = key
        elif isinstance(event, VariantFinished):
            r = event.result
            _say(args, f"    done: p50 {r.latency.p50:.3f} ms, {r.size_bytes:,} bytes" if r.latency else "    done")
        elif isinstance(event, VariantFailed):
            _say(args, f"    {event.error}")

    def _study_started(self, event: Any) -> None:
        args, model, dataset = self.args, event.model, event.dataset
        _say(args, f"model {model['format']} {model['path']} ({model['params']:,} params); "
                   f"dataset {dataset['spec']}: {dataset['samples']} samples, {dataset['task']}")
        for note in model.get("notes", []):
            _say(args, f"model: {note}")
        for label, notes in event.advice.items():
            for note in notes:
                _say(args, f"advice for {label}: {note}")


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
