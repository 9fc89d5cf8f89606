"""History commands of ``quantbench`` and what ``run`` does besides running.

``history`` lists the studies in the store, ``show`` prints one as a table,
``export`` writes its HTML/JSON/CSV report, ``compare`` sets several side by
side. ``RunExtras`` gives ``run`` its project file (--spec/--save-spec), its
history record, its saved variants and its HTML report.

What a run does when something cannot be written (the disk fills up, a folder is
read-only), as a user would expect it:

- A folder that cannot take a file at all (the --json/--html/--save-spec folder,
  --save-variants, and QuantBench's home unless --no-history) is refused before the
  study runs: exit 2 and one sentence, nothing run for nothing.
- The history is the run's record, not its result: when a write to it fails
  midway (disk full, another program's lock for over a minute, a damaged file),
  the study goes on, its table is printed and its files are written, and the
  failure is one warning sentence on stderr; the exit code stays 0. The studies
  recorded before, and this study's variants committed so far, stay readable.
- A file the user asked for (--json, --html, a --save-variants variant) that cannot
  be written ends the run with exit 2 and one sentence ("could not write
  out.json: no space left on device (the disk is full)."), after the table is
  printed and the other outputs are written; nothing half-written is left.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.cli import EXIT_OK
from core.cli.parser import run_defaults
from core.errors import BadInput
from core.files.atomic import check_distinct, check_folder, check_output_file, write_atomic
from core.printable import counted
from core.reports.format import format_bytes, format_ms, format_percent, format_speedup, local_time
from core.reports.json_text import json_text

#: `run` options that define what is compared: with --spec, the project file alone decides them.
_SPEC_DEFINES = ("scheme", "variant", "dataset", "arch", "input_shape")


def dispatch(args: argparse.Namespace) -> int | None:
    """Run a history subcommand; None when ``args`` is another command."""
    if args.command == "history":
        return _cmd_history(args)
    if args.command == "show":
        return _cmd_show(args)
    if args.command == "export":
        return _cmd_export(args)
    if args.command == "compare":
        return _cmd_compare(args)
    return None


# ---- history / show / export / compare --------------------------------------------------------


def _history_file(args: argparse.Namespace) -> Path:
    """Where the history's database is (or would be) for ``--home``."""
    from core.files.home import resolve_home
    from core.history.schema import DB_NAME

    return resolve_home(args.home) / DB_NAME


def _reading_store(args: argparse.Namespace) -> Any:
    """The history to read, or None where there is none yet: a command that only reads makes no folder and no
    database (`quantbench history --home newdir` created both)."""
    from core.history.store import StudyStore

    return StudyStore(args.home) if _history_file(args).exists() else None


def _store_holding(args: argparse.Namespace, ident: str) -> Any:
    """The history to read ``ident`` from; BadInput when there is no history at all yet."""
    store = _reading_store(args)
    if store is None:
        raise BadInput(f"no study {ident!r}: there is no history in {_history_file(args).parent} yet "
                       "(quantbench run records one).")
    return store


def _cmd_history(args: argparse.Namespace) -> int:
    store = _reading_store(args)
    studies = store.list_studies() if store is not None else []
    if args.json:
        print(json.dumps([s.to_json_dict() for s in studies], indent=1))
        return EXIT_OK
    if not studies:
        print(f"No studies yet in {_history_file(args)}. Run one with: quantbench run --demo")
        return EXIT_OK
    headers = ["ID", "Created", "Status", "Variants", "Model", "Dataset", "Name"]
    rows = [
        [s.id, local_time(s.created), s.status, f"{s.variants_finished}/{s.variants_planned}",
         Path(s.model).name, s.dataset, s.name + (" *" if s.note else "")]
        for s in studies
    ]
    print(_table(headers, rows))
    if any(s.note for s in studies):
        print("* has a note")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from core.reports.text import format_table, terminal_width

    store = _store_holding(args, args.id)
    summary = store.summary(args.id)
    study = store.load_study(summary.id)
    title = f"Study {summary.id}" + (f" \"{summary.name}\"" if summary.name else "")
    print(f"{title}: {summary.status}, {local_time(summary.created)}, "
          f"{summary.variants_finished} of {counted(summary.variants_planned, 'variant')} finished")
    if summary.note:
        print(f"Note: {summary.note}")
    print()
    print(format_table(study, terminal_width()))
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    targets = _targets(args)
    store = _store_holding(args, args.id)
    summary = store.summary(args.id)
    study = store.load_study(summary.id)
    _write_reports([study], {summary.id: summary.name} if summary.name else {}, targets, single=True)
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    if len(args.ids) < 2:
        raise BadInput("compare needs at least two study ids (see quantbench history).")
    targets = _targets(args, required=False)
    studies, names = _load_for_compare(args.ids, args.home)
    print(format_comparison(studies, names))
    _write_reports(studies, names, targets, single=False)
    return EXIT_OK


def _load_for_compare(ids: list[str], home: str | None) -> tuple[list[Any], dict[str, str]]:
    from core.history.store import StudyStore

    store: StudyStore | None = None
    studies = []
    names: dict[str, str] = {}
    for ident in ids:
        path = Path(ident).expanduser()
        if path.exists() or ident.endswith(".json"):  # a file named, not a study id of the history
            study = _result_file(ident, path)
            names[study.study_id] = path.stem
        else:
            store = store or StudyStore(home)
            summary = store.summary(ident)
            study = store.load_study(summary.id)
            if summary.name:
                names[summary.id] = summary.name
        if any(s.study_id == study.study_id for s in studies):
            raise BadInput(f"study {study.study_id} is given twice.")
        studies.append(study)
    return studies, names


def _result_file(ident: str, path: Path) -> Any:
    """The study in a result file (``run --json``); BadInput says in plain words why ``path`` is not one."""
    from core.files.atomic import read_json
    from core.study.result import SCHEMA_VERSION, study_from_json

    payload = read_json(path, ident, "a QuantBench result file")
    if not isinstance(payload, dict):
        raise BadInput(f"{ident}: not a QuantBench result file (not a JSON object).")
    version = payload.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise BadInput(f"{ident}: written by a newer QuantBench (schema_version {version}; this one reads up to "
                       f"{SCHEMA_VERSION}).")
    try:
        return study_from_json(payload)
    except KeyError as exc:
        raise BadInput(f"{ident}: not a QuantBench result file (it has no {exc.args[0]!r}).") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInput(f"{ident}: not a QuantBench result file ({exc}).") from None


def format_comparison(studies: list[Any], names: dict[str, str]) -> str:
    """A text table of every variant of several studies, each against its own baseline."""
    from core.reports.html import comparison_notes
    from core.reports.names import study_titles

    titles = study_titles(studies, names)
    headers = ["Study", "Variant", "Quality", "vs base", "p50 ms", "p99 ms", "Speed-up", "Size", "Size vs base",
               "Verdict"]
    rows = []
    for s in studies:
        for i, v in enumerate(s.results):
            verdict = v.verdict
            if not v.ok:
                rows.append([titles[s.study_id], v.label, "-", "-", "-", "-", "-", "-", "-", v.status.value.upper()])
                continue
            m = v.metrics or {}
            quality = f"R2 {m['r2']:.4f}" if "r2" in m else "-"
            if "accuracy" in m:
                quality = format_percent(m["accuracy"], decimals=2)
            drop = verdict.accuracy_drop if verdict else None
            speed = "1.00x" if i == 0 else "-"
            if verdict and verdict.speedup is not None:
                speed = format_speedup(verdict.speedup)
            reduction = verdict.size_reduction if verdict else None
            size_change = format_percent(None if reduction is None else -reduction, signed=True)
            rows.append([
                titles[s.study_id],
                v.label,
                quality,
                "(base)" if i == 0 else ("-" if drop is None else f"{0.0 - drop * 100:+.2f} pt"),
                format_ms(v.latency.p50) + ("~" if v.latency.noisy else "") if v.latency else "-",
                format_ms(v.latency.p99) if v.latency else "-",
                speed,
                format_bytes(v.size_bytes),
                "(base)" if i == 0 else size_change,
                verdict.overall.value if verdict else "-",
            ])
    lines = [_table(headers, rows), ""]
    for s in studies:
        lines.append(
            f"{titles[s.study_id]}: study {s.study_id}, {s.status}, {local_time(s.created)} "
            f"| {Path(str(s.model.get('path'))).name} | {s.dataset.get('spec')} ({s.dataset.get('samples')} samples) "
            f"| {s.environment.get('cpu', '?')} "
            f"| threads {s.timing.get('threads')}"
        )
    lines += [f"note: {n}" for n in comparison_notes(studies, titles)]
    return "\n".join(lines)


def _targets(args: argparse.Namespace, required: bool = True) -> dict[str, Path]:
    targets = {
        kind: check_output_file(f"--{kind}", value)
        for kind in ("html", "json", "csv")
        if (value := getattr(args, kind)) is not None
    }
    check_distinct({f"--{kind}": path for kind, path in targets.items()})
    if required and not targets:
        raise BadInput(f"{args.command} needs at least one of --html FILE, --json FILE or --csv FILE.")
    return targets


def _write_reports(studies: list[Any], names: dict[str, str], targets: dict[str, Path], single: bool) -> None:
    for kind, path in targets.items():
        if kind == "html":
            from core.reports.html import render_html

            text = render_html(studies, names)
        elif kind == "csv":
            from core.reports.csv import render_csv

            text = render_csv(studies, names)
        else:
            payload: Any = studies[0].to_json_dict() if single else [s.to_json_dict() for s in studies]
            text = json_text(payload)
        write_atomic(path, text)
        sys.stderr.write(f"wrote {path}\n")
        if kind == "csv":
            _write_layer_table(studies, names, path, lambda line: sys.stderr.write(line + "\n"))


def _write_layer_table(studies: list[Any], names: dict[str, str], path: Path, say: Any) -> None:
    """Beside a CSV report, the layer table (``<stem>-layers.csv``) when a variant was analysed with --layers."""
    from core.reports.csv import has_layers, layers_csv_path, render_layers_csv

    if has_layers(studies):
        layers_path = check_output_file("--csv", str(layers_csv_path(path)))
        write_atomic(layers_path, render_layers_csv(studies, names))
        say(f"wrote {layers_path}")


# ---- what `run` does besides running ----------------------------------------------------------


def check_home(args: argparse.Namespace) -> None:
    """Unless --no-history: QuantBench's home takes a file, else BadInput before any work starts (a study or
    search that could not be recorded would be told only at its end)."""
    if args.no_history:
        return
    from core.files.home import ENV_HOME, resolve_home

    check_folder(
        resolve_home(args.home), "QuantBench's home", create=True,
        hint=f", so the study cannot be recorded: point {ENV_HOME} or --home to a writable folder, or add --no-history",
    )


class RunExtras:
    """`run`'s project file, history record, saved variants and HTML report, around the engine loop.

    Usage in ``_cmd_run``: ``extras = RunExtras(args)`` (checks output paths),
    ``spec = extras.load_spec() or spec_from_args(args)``, ``extras.begin(spec)``,
    ``run_study(spec, cancel, workdir=extras.workdir)`` feeding ``extras.handle``,
    ``extras.close()`` in ``finally`` and ``extras.finish(result)`` at the end.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.html = check_output_file("--html", args.html) if args.html is not None else None
        self.csv = check_output_file("--csv", args.csv) if getattr(args, "csv", None) is not None else None
        self.save_spec_path = check_output_file("--save-spec", args.save_spec) if args.save_spec is not None else None
        check_home(args)
        #: The history record and the saved variants (core.history.recorder.StudyRecording), from ``begin``.
        self.recording: Any = None

    @property
    def workdir(self) -> Path | None:
        """Where the engine should build variants (None: its own temporary folder)."""
        return self.recording.workdir if self.recording is not None else None

    def isolation_options(self) -> dict[str, Any]:
        """Keyword arguments for ``run_study_isolated``: the child's fault log in the home, the variants' workdir."""
        options: dict[str, Any] = {}
        store = self.recording.store if self.recording is not None else None
        if store is not None:
            options["log_dir"] = store.logs_dir
        if self.workdir is not None:
            options["workdir"] = self.workdir
        return options

    def load_spec(self) -> Any:
        """The StudySpec of --spec, with any run-condition options given on the command line applied; else None."""
        if not self.args.spec:
            return None
        from core.study.project import load_spec

        given = _given_options(self.args)
        for dest in _SPEC_DEFINES:
            if dest in given:
                raise BadInput(
                    f"--{dest.replace('_', '-')} cannot be combined with --spec: the project file defines the study "
                    "(edit it, or run without --spec)."
                )
        from core.files.trust import TrustList, with_trust_from_list

        home = getattr(self.args, "home", None)
        for path in self.args.trust:  # the user's own say-so, added to the list like any --trust
            if not Path(path).expanduser().is_file():
                raise BadInput(f"--trust {path}: no such file.")
            TrustList(home).trust(Path(path).expanduser())
        # The project file's own word on trust is never taken: only the user's trust list is.
        spec = with_trust_from_list(load_spec(Path(self.args.spec), source=f"--spec {self.args.spec}"), home)
        return _apply_overrides(spec, self.args, given)

    def begin(self, spec: Any) -> None:
        """Open the variant folder, save the project file, open the history, before the engine starts."""
        from core.history.recorder import StudyRecording
        from core.history.store import StudyStore

        saver = None
        if self.args.save_variants:  # first: a folder it refuses leaves nothing written
            from core.history.saved_variants import VariantSaver

            saver = VariantSaver(Path(self.args.save_variants))
        if self.save_spec_path is not None:
            from core.study.project import save_spec

            save_spec(spec, self.save_spec_path)
            self._say(f"saved the study spec to {self.save_spec_path}")
        self.recording = StudyRecording(
            spec,
            open_store=None if self.args.no_history else lambda: StudyStore(self.args.home),
            saver=saver,
            name=self.args.name or "",
            on_store_failed=lambda sentence: sys.stderr.write(f"quantbench: warning: {sentence}\n"),
            # A variant that cannot be saved ends the run with exit 2: say so early too.
            on_save_failed=lambda sentence: self._say(f"quantbench: warning: {sentence}"),
        )

    def handle(self, event: Any) -> None:
        """Feed one engine event to the history record and the variant saver."""
        if self.recording is not None:
            self.recording.handle(event)

    def close(self) -> None:
        """After the engine loop: a study that stopped before its end is marked interrupted; the work folder goes."""
        if self.recording is not None:
            self.recording.close("interrupted")

    def finish(self, result: Any) -> None:
        """Write the HTML report and say where the study and the variants went; then BadInput (exit 2) with
        the first output that could not be written (the HTML report, a variant), if any."""
        failure: str | None = None
        if self.html is not None:
            from core.reports.html import render_html

            names = {result.study_id: self.args.name} if self.args.name else {}
            try:
                write_atomic(self.html, render_html([result], names))
                self._say(f"wrote {self.html}")
            except BadInput as exc:
                failure = str(exc)
        if self.csv is not None:
            from core.reports.csv import render_csv

            names = {result.study_id: self.args.name} if self.args.name else {}
            try:
                write_atomic(self.csv, render_csv([result], names))
                self._say(f"wrote {self.csv}")
                _write_layer_table([result], names, self.csv, self._say)
            except BadInput as exc:
                failure = failure or str(exc)
        saver = self.recording.saver if self.recording is not None else None
        if saver is not None:
            for label, path in saver.saved.items():
                self._say(f"saved {label} to {path}")
            for label, why in saver.skipped.items():
                self._say(f"not saved: {label}: {why}")
            failure = failure or next(iter(saver.failed.values()), None)
        if self.recording is not None and self.recording.finished:
            self._say(f"recorded as study {result.study_id} (quantbench show {result.study_id})")
        if failure is not None:
            raise BadInput(failure)

    def _say(self, text: str) -> None:
        if not self.args.quiet:
            sys.stderr.write(text + "\n")


def _given_options(args: argparse.Namespace) -> set[str]:
    """The `run` options whose value differs from the parser's default, i.e. the ones the user typed."""
    defaults = run_defaults()
    return {k for k, v in vars(args).items() if k in defaults and v != defaults[k] and k not in ("spec", "command")}


def _apply_overrides(spec: Any, args: argparse.Namespace, given: set[str]) -> Any:
    from core.study.spec import Device, Task, TimingMode

    if "threads" in given and args.threads < 1:
        raise BadInput("--threads must be at least 1.")
    if "batch_size" in given and args.batch_size < 1:
        raise BadInput("--batch-size must be at least 1.")
    if "max_time" in given and not (math.isfinite(args.max_time) and args.max_time > 0):
        raise BadInput("--max-time must be positive.")
    if "limit" in given and args.limit < 1:
        raise BadInput("--limit must be at least 1.")
    if "eval_batch_size" in given and args.eval_batch_size < 1:
        raise BadInput("--eval-batch-size must be at least 1.")
    if "slow_variant_samples" in given and args.slow_variant_samples < 1:
        raise BadInput("--slow-variant-samples must be at least 1.")
    timing = {"threads": "threads", "batch_size": "batch_size", "max_time": "max_time_s",
              "eval_batch_size": "eval_batch_size", "slow_variant_samples": "slow_variant_samples"}
    changes = {field: getattr(args, dest) for dest, field in timing.items() if dest in given}
    if "timing" in given:
        changes["mode"] = TimingMode(args.timing)
    dataset = {}
    if "limit" in given:
        dataset["limit"] = args.limit
    if "task" in given:
        dataset["task"] = Task(args.task)
    thresholds = {
        field: getattr(args, dest) / 100
        for dest, field in (("accuracy_good", "accuracy_drop_good"), ("accuracy_bad", "accuracy_drop_bad"),
                            ("size_good", "size_reduction_good"), ("speed_good", "latency_reduction_good"))
        if dest in given
    }
    top: dict[str, Any] = {}
    if "device" in given:
        top["device"] = Device(args.device)
    if "seed" in given:
        top["seed"] = args.seed
    return replace(
        spec,
        timing=replace(spec.timing, **changes),
        dataset=replace(spec.dataset, **dataset),
        thresholds=replace(spec.thresholds, **thresholds),
        **top,
    )


# ---- text helpers -----------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
