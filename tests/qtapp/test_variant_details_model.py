"""The details view's content, without Qt: what a variant's details say, and the per-class order."""

from __future__ import annotations

from core.study.events import StudyFinished, StudyStarted, VariantFinished, VariantStarted
from core.study.result import Grade, StudyResult, VariantResult, VariantStatus, Verdict
from qtapp.models.study_state import StudyState
from qtapp.models.variant_details import CLASS_COLUMNS, variant_details


def _per_class(recalls: list[float]) -> list[dict]:
    return [{"label": i, "precision": 0.9, "recall": r, "f1": 0.8, "support": 10 + i} for i, r in enumerate(recalls)]


def _results() -> list[VariantResult]:
    base = VariantResult(
        label="fp32", scheme="fp32", status=VariantStatus.OK, size_bytes=400_000, build_s=0.5,
        metrics={"accuracy": 0.95, "per_class": _per_class([0.9, 0.9, 0.9, 0.9])},
        fidelity=None, coverage={"summary": "pytorch file"},
    )
    verdict = Verdict(Grade.BAD, Grade.GOOD, Grade.BAD, Grade.BAD, 0.03, 0.7, -0.2, 0.83, 0.8, thresholds={},
                      reasons=["class 2's recall fell by 78 points"])
    int8 = VariantResult(
        label="int8", scheme="ort-int8-static", status=VariantStatus.OK, size_bytes=110_000, build_s=1.25,
        params={"activations": "u8"},
        metrics={"accuracy": 0.92, "per_class": _per_class([0.95, 0.8, 0.12, 0.9])},
        fidelity={"mae": 0.0123, "mse": 0.0004, "max_abs": 0.5, "sqnr_db": 31.24, "cosine": 0.9991,
                  "agreement": 0.97, "flipped_count": 3, "flipped": [1, 2, 3]},
        coverage={"summary": "20 of 20 Conv as integer kernels"},
        advice=["calibrate on more samples"], explanation=["4 QuantizeLinear/DequantizeLinear pairs"],
        notes=["the machine's speed changed during the study: said above the table", "ran on 1 thread"],
        verdict=verdict,
    )
    return [base, int8]


def _state(finish: bool = True) -> StudyState:
    state = StudyState()
    state.apply(StudyStarted("s", model={}, dataset={"task": "classification", "class_names": list("abcd")},
                             variants=["fp32", "int8"], environment={}, advice={"int8": ["calibrate on more samples"]}))
    results = _results()
    state.apply(VariantFinished("s", results[0]))
    state.apply(VariantStarted("s", index=1, label="int8", scheme="ort-int8-static"))
    if finish:
        state.apply(VariantFinished("s", results[1]))
        study = StudyResult("s", "2025-01-01T00:00:00Z", "finished", {}, {}, {}, {}, {}, results=results)
        state.apply(StudyFinished("s", study))
    return state


def test_details_say_coverage_advice_why_slower_and_notes():
    details = variant_details(_state(), "int8")
    assert details is not None and details.title == "int8: BAD, against fp32"
    sections = dict(details.sections)
    assert sections["What changed"] == ["20 of 20 Conv as integer kernels"]
    assert sections["Parameters"] == ["activations=u8"]
    assert sections["Advice"] == ["calibrate on more samples"]  # said before the run and after: once
    assert sections["Why slower"] == ["4 QuantizeLinear/DequantizeLinear pairs"]
    assert sections["Verdict: bad"] == ["class 2's recall fell by 78 points"]
    assert sections["Notes"] == ["ran on 1 thread"]  # the drift is said once, above the table


def test_details_give_every_fidelity_figure_and_the_build_time():
    figures = dict(variant_details(_state(), "int8").figures)
    assert figures["Output MAE"] == "0.0123"
    assert figures["Output MSE"] == "0.0004"
    assert figures["Output max |error|"] == "0.5"
    assert figures["SQNR (dB)"] == "31.2"
    assert figures["Cosine similarity"] == "0.9991"
    assert figures["Agreement with the baseline"] == "97.00 %"
    assert figures["Flipped predictions"] == "3"
    assert figures["Accuracy"] == "92.00 %"
    assert figures["Size on disk"] == "110 kB"
    assert figures["Build time"] == "1.25 s"


def test_classes_are_sorted_by_the_largest_recall_drop():
    details = variant_details(_state(), "int8")
    assert [row.name for row in details.classes] == ["c", "b", "d", "a"]
    worst = details.classes[0]
    assert len(worst.cells()) == len(CLASS_COLUMNS)
    assert worst.cells()[:5] == ["c", "12", "90.0 %", "12.0 %", "−78.0 pt"]
    assert details.classes[-1].cells()[4] == "+5.0 pt"


def test_an_unfinished_variant_says_so_and_fills_in_when_it_finishes():
    state = _state(finish=False)
    waiting = variant_details(state, "int8")
    assert "appear when it finishes" in waiting.title and not waiting.figures and not waiting.classes
    assert dict(waiting.sections)["Advice"] == ["calibrate on more samples"]  # known before the run
    state.apply(VariantFinished("s", _results()[1]))
    assert variant_details(state, "int8").classes


def test_the_baseline_and_unknown_labels():
    state = _state()
    base = variant_details(state, "fp32")
    assert base.title.startswith("fp32: the baseline") and len(base.classes) == 4
    assert variant_details(state, "nope") is None and variant_details(state, None) is None



def test_details_say_what_the_coverage_was_counted_on():
    """A large model's coverage is counted on the nodes one profiled call ran, not the written-out graph: the
    details say which."""
    state = _state()
    details = variant_details(state, "int8")
    assert details is not None and "counted on:" not in " ".join(dict(details.sections)["What changed"])
    for r in _results():  # the same rows, the int8 one's coverage now naming what was counted
        if r.label == "int8":
            r.coverage["graph"] = "nodes one call of the optimized session ran (ORT_ENABLE_ALL)"
        state.apply(VariantFinished("s", r))
    sections = dict(variant_details(state, "int8").sections)
    assert sections["What changed"] == [
        "20 of 20 Conv as integer kernels", "counted on: nodes one call of the optimized session ran (ORT_ENABLE_ALL)"]
