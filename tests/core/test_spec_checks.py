"""A study spec whose numbers cannot give true figures is refused before anything runs, whoever made it: the
command line (in its options' words), a project or sweep file (naming the field), or any other face (the engine)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from core.engine.run import demo_study_spec, run_study
from core.errors import BadInput
from core.study.project import load_spec
from core.study.spec import Thresholds, TimingSpec, spec_problem, threads_problem, thresholds_problem, timing_problem


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
        ({"threads": 0}, "threads must be at least 1, not 0"),
        ({"threads": "abc"}, "threads must be a number, not 'abc'"),
        ({"min_samples": 2.5}, "min_samples must be a whole number, not 2.5"),
        ({"warmup_runs": -1}, "warmup_runs must be zero or more, not -1"),
        ({"max_time_s": float("nan")}, "max_time_s must be a number of seconds above 0, not nan"),
        ({"max_time_s": 0}, "max_time_s must be a number of seconds above 0, not 0"),
        ({"min_samples": 50, "max_samples": 10}, "max_samples (10) must not be below min_samples (50)"),
        ({"eval_batch_size": 0}, "eval_batch_size must be at least 1, not 0"),
    ],
)
def test_timing_numbers_out_of_range(changes: dict, expected: str) -> None:
    assert timing_problem(replace(TimingSpec(), **changes)) == expected


def test_defaults_and_automatic_values_pass() -> None:
    assert timing_problem(TimingSpec()) is None
    assert timing_problem(TimingSpec(threads=None, eval_batch_size=None, slow_variant_samples=None)) is None
    assert thresholds_problem(Thresholds()) is None
    assert spec_problem(demo_study_spec()) is None
    assert threads_problem(os.cpu_count()) is None and threads_problem(None) is None


def test_thresholds_that_are_not_fractions_and_a_bad_limit_below_its_good_one() -> None:
    from core.measures.verdict import ACCURACY_BAD, PERPLEXITY_BAD

    # A bad limit below the good one counts as the good one, whichever face set it (the window's controls did
    # so already): a 20-point drop under good < 50 and bad > 10 was graded BAD from the command line.
    loose = Thresholds(accuracy_drop_good=0.5, accuracy_drop_bad=0.1, perplexity_ratio_good=2.0)
    assert thresholds_problem(loose) is None
    assert ACCURACY_BAD.limit(loose) == 0.5 and not ACCURACY_BAD.applies(0.2, loose)
    assert PERPLEXITY_BAD.limit(loose) == 2.0 and PERPLEXITY_BAD.limit(Thresholds()) == 1.10
    assert "latency_reduction_good must be a number from 0 to 1" in (
        thresholds_problem(Thresholds(latency_reduction_good=-10.0)) or ""
    )
    assert "accuracy_drop_good" in (thresholds_problem(Thresholds(accuracy_drop_good=float("nan"))) or "")


def test_a_project_file_with_a_batch_of_zero_is_refused_naming_it(tmp_path: Path) -> None:
    """Such a study used to run: it timed empty calls and reported them as the model's latency."""
    project = tmp_path / "study.json"
    payload = {"quantbench_project": 1, "spec": demo_study_spec().to_dict()}
    payload["spec"]["timing"]["batch_size"] = 0
    project.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(BadInput, match=r"^study\.json: timing: batch_size must be at least 1, not 0\.$"):
        load_spec(project, source="study.json")
    payload["spec"]["timing"]["batch_size"] = 1
    payload["spec"]["seed"] = -1
    project.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(BadInput, match=r"the seed must be a whole number of 0 or more, not -1\.$"):
        load_spec(project, source="study.json")


@pytest.mark.parametrize(
    ("spec_changes", "expected"),
    [
        ({"timing": TimingSpec(batch_size=0)}, "the study cannot run: timing: batch_size must be at least 1, not 0."),
        ({"timing": TimingSpec(threads=(os.cpu_count() or 1) + 1)}, "logical cores of this machine"),
        ({"seed": -3}, "the seed must be a whole number of 0 or more, not -3."),
    ],
)
def test_the_engine_refuses_before_the_first_event(spec_changes: dict, expected: str) -> None:
    events = run_study(replace(demo_study_spec(), **spec_changes))
    with pytest.raises(BadInput, match=expected.replace(".", r"\.")):
        next(events)
