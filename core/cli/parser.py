"""The one argument parser of ``quantbench``: the window's options, ``run``'s and the history commands'.

Every option of every face is defined here once: ``quantbench --help`` lists the window's
options, the headless commands parse with it (``core.cli.main``), and the window receives
what it parsed (``qtapp.launcher`` turns the namespace into the window's options).
Building it imports nothing heavy, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from core import quantbench_version
from core.cli import EXIT_BAD_INPUT
from core.engine.isolation import DEFAULT_HANG_TIMEOUT_S

#: The subcommands, each with its one line of help (listed by `quantbench --help` and `quantbench COMMAND -h`).
COMMAND_HELP = {
    "run": "run a study headless and print the comparison table",
    "tune": "find the fastest (or smallest) variant within an accuracy budget, measuring every candidate",
    "sweep": "run many saved studies (SWEEP.json), here one after another or on a Ray cluster",
    "schemes": "list the scheme catalogue with what each needs",
    "history": "list the studies in the history",
    "show": "print a study from the history as a table",
    "export": "write a study's report: --html, --json and/or --csv",
    "compare": "compare studies side by side (ids from the history, or result JSON files)",
}
SUBCOMMANDS = tuple(COMMAND_HELP)
#: The --fail-on levels, strictest last: `bad` trips on BAD only, `acceptable` on ACCEPTABLE or BAD.
FAIL_ON_LEVELS = ("bad", "acceptable")
#: The window's size when --size is not given.
DEFAULT_WINDOW_SIZE = "1600x1000"
#: The window's colour themes (qtapp.window.theme.THEMES holds their colours).
THEMES = ("light", "dark")

_ARCH_HELP = "architecture of a PyTorch state dict: demo or torchvision:NAME (e.g. torchvision:resnet18)"
_HOME_HELP = "QuantBench's data folder holding the history (default: $QUANTBENCH_HOME, else the user data folder)"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence and exit code 2, and an option given an empty value
    (``--dataset ''``, as an unset shell variable makes it) is one too: no option of ours takes nothing, and
    treated as not given it fell back to a default unseen (--dataset '' studied the demo's digits)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.split()[-1] if " " in self.prog else ""
        sys.stderr.write(f"quantbench: {message} (see quantbench {command} --help).\n".replace("  ", " "))
        raise SystemExit(EXIT_BAD_INPUT)

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        if action.option_strings and not arg_string.strip():
            self.error(f"argument {'/'.join(action.option_strings)}: needs a value, not an empty one")
        return super()._get_value(action, arg_string)


class _PrintVersion(argparse.Action):
    """``--version``: the version is read from the package metadata only when it is asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"quantbench {quantbench_version()}\n")
        parser.exit()


#: The calibration sweep's sample counts unless --sweep-samples says otherwise.
DEFAULT_SWEEP_SAMPLES = "16,64,256"
#: The largest window side --size takes: an 8K screen is 7680 wide.
MAX_WINDOW_SIDE = 8192


def window_size(text: str) -> tuple[int, int]:
    """``"1600x1000"`` as ``(1600, 1000)``; argparse turns the error into one sentence naming --size."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write it as WIDTHxHEIGHT, e.g. {DEFAULT_WINDOW_SIZE}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the width and the height must be positive")
    if max(width, height) > MAX_WINDOW_SIDE:  # 100000x100000 was 40 GB of pixels, and the process was killed
        raise argparse.ArgumentTypeError(f"{text!r}: the width and the height must be at most {MAX_WINDOW_SIDE}")
    return width, height


def positive_seconds(text: str) -> float:
    """A positive number of seconds (``--hang-timeout``); NaN and zero are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:  # also false for NaN
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def seed_number(text: str) -> int:
    """A seed: a whole number of 0 or more (numpy's generators take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def build_parser(window: bool = True) -> argparse.ArgumentParser:
    """The ``quantbench`` parser. ``window``: the command line of the window (MODEL and the window's options;
    the subcommands are listed in its help); else the headless subcommands, each with its options.

    Two shapes because argparse cannot have both: an optional MODEL before the subcommand would take
    the subcommand's name (`show ID`), and a subcommand would take MODEL's (`quantbench m.onnx`)."""
    width = max(map(len, SUBCOMMANDS)) + 2
    commands = "\n".join(f"  {name:<{width}}{COMMAND_HELP[name]}" for name in SUBCOMMANDS)
    parser = Parser(
        prog="quantbench",
        description="See what quantizing a model costs and buys.\nWithout a subcommand, opens the window.",
        epilog=f"headless commands (see quantbench COMMAND --help):\n{commands}" if window else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_PrintVersion, help="print QuantBench's version and exit")
    if window:
        _add_window_options(parser)
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    _add_run(sub)
    _add_tune(sub)
    _add_sweep(sub)
    sub.add_parser("schemes", help=COMMAND_HELP["schemes"])
    _add_history_commands(sub)
    return parser


def names_subcommand(argv: Sequence[str]) -> bool:
    """True when ``argv`` names a headless subcommand (``run``, ``schemes``, ``history``...)."""
    return any(a in SUBCOMMANDS for a in argv)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a whole ``quantbench`` command line; ``command`` is None when it asks for the window.

    ``--help`` and ``--version`` print and exit 0; a usage error is one sentence on stderr and exit 2."""
    argv = list(argv)
    return build_parser(window=not names_subcommand(argv)).parse_args(argv)


def run_defaults() -> dict[str, Any]:
    """Every ``run`` option's default value, by destination (what the user did not type)."""
    return vars(build_parser(window=False).parse_args(["run", "--spec", "-"]))


def _add_window_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a model file to open in the window")
    parser.add_argument("--demo", action="store_true", help="open the window on the bundled demo and start the study")
    parser.add_argument("--arch", help=_ARCH_HELP)
    parser.add_argument(
        "--screenshot", metavar="FILE.png", help="with --demo or MODEL: run the study, save the finished window "
        "to FILE.png and exit"
    )
    parser.add_argument(
        "--size", type=window_size, default=DEFAULT_WINDOW_SIZE, metavar="WIDTHxHEIGHT",
        help=f"window size (default {DEFAULT_WINDOW_SIZE})",
    )
    parser.add_argument(
        "--theme", choices=THEMES, default=None, help=f"colour theme (default: the last one chosen, else {THEMES[0]})"
    )
    _add_max_time(parser, default=None, default_text="the Run panel's")
    _add_safety_options(parser)


def _add_max_time(parser: argparse.ArgumentParser, default: float | None, default_text: str) -> None:
    parser.add_argument(
        "--max-time", type=float, default=default, metavar="S",
        help=f"timing budget per variant in seconds (default {default_text})",
    )


def _add_safety_options(parser: argparse.ArgumentParser) -> None:
    """The ceilings a study's process runs under: the same options for `run` and the window."""
    parser.add_argument(
        "--max-memory", metavar="GB",
        help="memory ceiling of the study's process, in GB or with a unit (e.g. 8, 512M); "
             "default: half of this machine's memory",
    )
    parser.add_argument(
        "--hang-timeout", type=positive_seconds, default=DEFAULT_HANG_TIMEOUT_S, metavar="S",
        help=f"stop a study whose current step (one inference, one build step) reports nothing for S seconds "
             f"(default {DEFAULT_HANG_TIMEOUT_S:g})",
    )


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help=COMMAND_HELP["run"])
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--model", metavar="PATH",
        help="the trained model (ONNX, PyTorch state dict, TorchScript, torch.export, TFLite)",
    )
    src.add_argument("--demo", action="store_true", help="the bundled digits CNN on its test split with every scheme")
    src.add_argument("--spec", metavar="FILE", help="run the study saved in a project file (see --save-spec)")
    run.add_argument("--arch", help=_ARCH_HELP)
    run.add_argument("--input-shape", metavar="N,C,H,W", help="input shape when the file does not record it")
    run.add_argument(
        "--trust", action="append", default=[], metavar="FILE",
        help="run code in FILE (TorchScript, torch.export); only for files you trust",
    )
    run.add_argument(
        "--scheme", action="append", default=[], metavar="ID[:k=v,...]",
        help="a scheme to apply (repeatable; see `quantbench schemes`)",
    )
    run.add_argument(
        "--variant", action="append", default=[], metavar="PATH",
        help="an already-quantized file of the same model to compare (repeatable)",
    )
    run.add_argument(
        "--dataset", metavar="SPEC", help="builtin:digits, npz:PATH, csv:PATH[#label=COL], folder:PATH or synthetic:N"
    )
    run.add_argument("--task", choices=["auto", "classification", "regression", "causal-lm"], default="auto",
                     help="what the outputs are judged as (causal-lm: perplexity and next-token accuracy)")
    run.add_argument("--output", metavar="NAME",
                     help="the model output that carries the prediction, for a model with several outputs")
    run.add_argument("--limit", type=int, metavar="N", help="evaluate at most N samples")
    run.add_argument(
        "--calibration-data", metavar="DATASET",
        help="what static schemes calibrate on: another dataset (written as --dataset), or 'same' for the "
        "evaluated samples (warned); default: a held-out split of --dataset (10 %%, at most 500 samples)",
    )
    run.add_argument(
        "--layers", action="store_true",
        help="compare every quantized variant with the float model layer by layer (error per tensor and channel, "
        "time per op type), whatever the model's size; by default this runs by itself on models of at most 300 "
        "layers",
    )
    run.add_argument("--no-layers", action="store_true", help="no layer analysis, whatever the model's size")
    run.add_argument(
        "--layer-samples", type=int, default=None, metavar="N",
        help="samples the layer analysis uses (default 64); implies --layers",
    )
    _add_run_timing(run)
    _add_run_thresholds(run)
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument("--in-process", action="store_true", help="run the engine in this process (no crash isolation)")
    _add_safety_options(run)
    _add_run_outputs(run)


def _add_tune(sub: Any) -> None:
    """The ``tune`` subcommand's options (its model and dataset options read as ``run``'s do)."""
    p = sub.add_parser("tune", help=COMMAND_HELP["tune"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="PATH", help="the trained model (ONNX, or a PyTorch model exported to ONNX)")
    src.add_argument("--demo", action="store_true", help="the bundled digits CNN on its test split")
    p.add_argument("--arch", help=_ARCH_HELP)
    p.add_argument("--trust", action="append", default=[], metavar="FILE",
                   help="run code in FILE (TorchScript, torch.export); only for files you trust")
    p.add_argument("--dataset", metavar="SPEC",
                   help="builtin:digits, npz:PATH, csv:PATH[#label=COL], folder:PATH or synthetic:N")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N samples")
    p.add_argument("--max-drop", type=float, metavar="PT",
                   help="the accuracy budget: at most PT points lost against the float model (the search; "
                   "not needed for the sweeps alone)")
    p.add_argument("--objective", choices=["latency", "size"], default="latency",
                   help="what the best variant minimises within the budget (default latency)")
    p.add_argument("--time-limit", default="10m", metavar="T",
                   help="stop searching after T (e.g. 90s, 10m; default 10m)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: all cores but one)")
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--json", metavar="FILE", help='write the search (kind: "tune") to FILE')
    p.add_argument("--quiet", action="store_true", help="no line per candidate")
    p.add_argument("--save-best", metavar="FILE",
                   help="save the best candidate to FILE (its format's suffix) with a FILE.quantbench.json sidecar")
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)
    p.add_argument("--no-history", action="store_true", help="do not record the search in the history")
    p.add_argument("--name", metavar="TEXT", help="the search's name in the history")
    p.add_argument("--calibration-sweep", action="store_true",
                   help="sweep ort-int8-static's calibration: method x sample count, accuracy and SQNR per point")
    p.add_argument("--sweep-samples", default=DEFAULT_SWEEP_SAMPLES, metavar="N,N,...",
                   help="calibration sample counts of --calibration-sweep (default 16,64,256)")
    p.add_argument("--batch-sizes", metavar="N,N,...",
                   help="sweep the batch size (e.g. 1,8,32): latency per call and throughput of each variant")
    p.add_argument("--scheme", action="append", default=[], metavar="ID",
                   help="a variant of the batch sweep besides the float model (repeatable; default ort-int8-static)")
    p.add_argument("--latency-limit", type=float, metavar="MS",
                   help="the batch sweep marks each variant's best throughput within MS per call")
    p.add_argument("--html", metavar="FILE", help="write the sweeps as an HTML page with their charts")


def _add_sweep(sub: Any) -> None:
    """The ``sweep`` subcommand's options (core.cli.sweep)."""
    p = sub.add_parser("sweep", help=COMMAND_HELP["sweep"])
    p.add_argument("sweep", metavar="SWEEP.json",
                   help='{"studies": [SPEC, ...]}, each SPEC a study as `quantbench run --save-spec` writes it')
    p.add_argument("--ray", nargs="?", const="env", metavar="ADDRESS",
                   help="run each study as a Ray task: 'local' starts Ray on this machine, ADDRESS joins a cluster "
                   "(alone: $RAY_ADDRESS); needs pip install 'quantbench[cluster]'")
    p.add_argument("--target", metavar="NAME",
                   help="with --ray: measure on the node carrying the resource device:NAME")
    p.add_argument("--again", action="store_true",
                   help="run every study, also those the history already holds as finished (default: skip them)")
    p.add_argument("--json", metavar="FILE", help="write each study's result and where it ran to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)
    _add_safety_options(p)


def _add_run_timing(run: argparse.ArgumentParser) -> None:
    run.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: all cores but one)")
    run.add_argument(
        "--timing", choices=["quick", "thorough"], default="quick",
        help="stopping rule: median CI within 3%% (quick) or 1%% (thorough)",
    )
    _add_max_time(run, default=2.0, default_text="2")
    run.add_argument("--batch-size", type=int, default=1, metavar="N", help="samples per timed call (default 1)")
    run.add_argument(
        "--eval-batch-size", type=int, metavar="N",
        help="the largest batch of samples per call while evaluating (default: from the sample's size, at most 32 "
        "and about 256 MB of working memory a call, and the free memory); a model with a fixed batch is evaluated "
        "one batch of its own size at a time; timing keeps --batch-size",
    )
    run.add_argument(
        "--slow-variant-samples", type=int, metavar="N",
        help="evaluate at most N samples of a variant that evaluates 3x slower than the baseline or more (float16 "
        "emulated on a CPU without it, dynamic int8 convolutions); its accuracy is compared with the baseline's on "
        "the same samples (default: every variant on every sample)",
    )
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    run.add_argument("--seed", type=seed_number, default=0)


def _add_run_thresholds(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--perplexity-good", type=float, default=1.02, metavar="X",
        help="a language model whose perplexity is at most X times the baseline's is good (default 1.02)",
    )
    run.add_argument(
        "--perplexity-bad", type=float, default=1.10, metavar="X",
        help="a language model whose perplexity is over X times the baseline's is bad (default 1.10)",
    )
    run.add_argument(
        "--accuracy-good", type=float, default=1.0, metavar="PT",
        help="accuracy drop under PT points is good (default 1)",
    )
    run.add_argument(
        "--accuracy-bad", type=float, default=5.0, metavar="PT", help="accuracy drop over PT points is bad (default 5)"
    )
    run.add_argument(
        "--size-good", type=float, default=50.0, metavar="PCT",
        help="size reduced by PCT%% or more is good (default 50)",
    )
    run.add_argument(
        "--speed-good", type=float, default=30.0, metavar="PCT",
        help="latency reduced by PCT%% or more is good (default 30)",
    )
    run.add_argument(
        "--fail-on", choices=FAIL_ON_LEVELS,
        help="exit 3 when any variant grades at or below this level, or fails (for CI gates)",
    )
    run.add_argument(
        "--class-recall-bad", type=float, default=10.0, metavar="PT",
        help="any class's recall falling by more than PT points is bad (default 10)",
    )


def _add_run_outputs(run: argparse.ArgumentParser) -> None:
    run.add_argument("--json", metavar="FILE", help="write the result contract (schema_version 1) to FILE")
    run.add_argument("--html", metavar="FILE", help="write the self-contained HTML report to FILE")
    run.add_argument("--csv", metavar="FILE", help="write one row per variant to FILE; with --layers, the layer "
                     "table beside it (FILE's name with -layers)")
    run.add_argument("--save-spec", metavar="FILE", help="save this study as a project file, to re-run with --spec")
    run.add_argument(
        "--save-variants", metavar="DIR", help="keep each built variant in DIR in its runtime's format, with a sidecar"
    )
    run.add_argument("--name", help="a name for the study in the history")
    run.add_argument("--home", metavar="DIR", help=_HOME_HELP)
    run.add_argument("--no-history", action="store_true", help="do not record the study in the history")


def _add_history_commands(sub: Any) -> None:
    p = sub.add_parser("history", help=COMMAND_HELP["history"])
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)

    p = sub.add_parser("show", help=COMMAND_HELP["show"])
    p.add_argument("id", help="study id (a unique prefix is enough)")
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)

    p = sub.add_parser("export", help=COMMAND_HELP["export"])
    p.add_argument("id", help="study id (a unique prefix is enough)")
    _add_report_outputs(p)
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)

    p = sub.add_parser("compare", help=COMMAND_HELP["compare"])
    p.add_argument("ids", nargs="+", metavar="ID", help="study ids or prefixes, or result files written by --json")
    _add_report_outputs(p)
    p.add_argument("--home", metavar="DIR", help=_HOME_HELP)


def _add_report_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", metavar="FILE", help="self-contained HTML report")
    p.add_argument("--json", metavar="FILE", help="the result contract (a list of studies for compare)")
    p.add_argument("--csv", metavar="FILE", help="one row per variant (and the layer table beside it, FILE's name "
                   "with -layers, for variants analysed with --layers)")
