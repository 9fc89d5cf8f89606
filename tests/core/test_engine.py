"""The study engine end to end: event order, failures that do not sink a study, cancellation, the JSON contract."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.engine.run import DEMO_SCHEMES, demo_study_spec, run_study
from core.study.cancel import CancelToken
from core.study.events import (
    Event,
    LatencySamples,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.result import VariantStatus
from core.study.spec import (
    CALIBRATE_ON_SAME,
    DatasetSpec,
    ModelSpec,
    SchemeSpec,
    StudySpec,
    TimingMode,
    TimingSpec,
    VariantSpec,
)

#: Short enough that a whole study of the tiny model takes about a second.
QUICK = TimingSpec(threads=1, max_time_s=0.1, min_samples=10, warmup_runs=2, warmup_s=0.01)


def _spec(model: Path, dataset: Path, *variants: VariantSpec, timing: TimingSpec = QUICK, **kw: Any) -> StudySpec:
    return StudySpec(
        model=ModelSpec(path=str(model)),
        dataset=DatasetSpec.parse(f"npz:{dataset}"),
        variants=variants,
        timing=timing,
        **kw,
    )


def _scheme(text: str) -> VariantSpec:
    return VariantSpec(scheme=SchemeSpec.parse(text))


def _finished(events: list[Event]) -> StudyFinished:
    last = events[-1]
    assert isinstance(last, StudyFinished)
    return last


def _segments(events: list[Event]) -> list[list[Event]]:
    """The events of each variant, from its VariantStarted to its VariantFinished/VariantFailed."""
    segments: list[list[Event]] = []
    for event in events[1:-1]:
        if isinstance(event, Progress) and event.stage == "re-checking":
            break  # the baseline's re-timing at the end belongs to no variant's segment
        if isinstance(event, VariantStarted):
            segments.append([])
        segments[-1].append(event)
    return segments


# ----------------------------------------------------------------------------- the bundled digits study


@pytest.fixture(scope="module")
def digits_study() -> tuple[StudySpec, list[Event]]:
    """Every foundation scheme on the bundled digits CNN, 100 test images, 0.2 s of timing per variant."""
    spec = demo_study_spec(TimingSpec(threads=1, max_time_s=0.2, min_samples=10))
    spec = replace(spec, dataset=replace(spec.dataset, limit=100), study_id="digits-study")
    return spec, list(run_study(spec))


def test_events_come_in_order(digits_study: tuple[StudySpec, list[Event]]) -> None:
    _, events = digits_study
    assert isinstance(events[0], StudyStarted)
    assert events[0].variants == list(DEMO_SCHEMES)
    assert sum(isinstance(e, (StudyStarted, StudyFinished)) for e in events) == 2

    segments = _segments(events)
    assert [s[0].label for s in segments] == list(DEMO_SCHEMES)
    for index, segment in enumerate(segments):
        started, last = segment[0], segment[-1]
        assert isinstance(started, VariantStarted) and started.index == index
        assert isinstance(last, VariantFinished), getattr(last, "error", last)
        kinds = [type(e) for e in segment]
        built = kinds.index(VariantBuilt)
        first_samples = kinds.index(LatencySamples)
        assert kinds.count(VariantBuilt) == 1
        assert 0 < built < first_samples < len(segment) - 1
        # Evaluation happens between building and timing; nothing of another variant leaks in.
        assert any(isinstance(e, Progress) and e.stage == "evaluating" for e in segment[built:first_samples])
        labels = {getattr(e, "label", None) for e in segment[1:-1]}
        assert labels == {started.label}
        assert last.result.label == started.label


def test_every_event_carries_the_study_id(digits_study: tuple[StudySpec, list[Event]]) -> None:
    spec, events = digits_study
    assert {e.study_id for e in events} == {"digits-study"} == {spec.study_id}
    assert _finished(events).result.study_id == "digits-study"


def test_latency_samples_add_up(digits_study: tuple[StudySpec, list[Event]]) -> None:
    _, events = digits_study
    results = {r.label: r for r in _finished(events).result.results}
    for label, result in results.items():
        batches = [e for e in events if isinstance(e, LatencySamples) and e.label == label]
        assert batches, label
        streamed = [s for e in batches for s in e.samples_ms]
        assert [e.total for e in batches] == list(np.cumsum([len(e.samples_ms) for e in batches]))
        assert streamed == result.samples_ms
        assert batches[-1].total == len(result.samples_ms) == result.latency.n
        assert result.latency.n >= 10


def test_metrics_match_an_independent_recomputation(digits_study: tuple[StudySpec, list[Event]]) -> None:
    import torch

    from core.datasets.builtin import digits_split
    from core.models.architectures import build_architecture
    from core.study.demo import DEMO_WEIGHTS

    _, _, x_test, y_test = digits_split()
    x, y = x_test[:100], y_test[:100]
    module = build_architecture("demo")
    module.load_state_dict(torch.load(DEMO_WEIGHTS, weights_only=True))
    with torch.inference_mode():
        predicted = module.eval()(torch.from_numpy(x)).argmax(dim=1).numpy()
    expected_matrix = np.zeros((10, 10), dtype=int)
    np.add.at(expected_matrix, (y, predicted), 1)

    result = _finished(digits_study[1]).result
    baseline = result.results[0]
    assert baseline.metrics["confusion_matrix"] == expected_matrix.tolist()
    assert baseline.metrics["accuracy"] == pytest.approx(float(np.mean(predicted == y)))
    for variant in result.results:
        matrix = np.array(variant.metrics["confusion_matrix"])
        assert matrix.sum() == 100 == result.dataset["samples"]
        assert variant.metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
        assert [c["support"] for c in variant.metrics["per_class"]] == np.bincount(y, minlength=10).tolist()
        recall = [c["recall"] for c in variant.metrics["per_class"]]
        assert variant.metrics["recall_macro"] == pytest.approx(np.mean(recall))
        if variant.label != "fp32":
            flipped = variant.fidelity["flipped"]
            assert variant.fidelity["agreement"] == pytest.approx(1 - len(flipped) / 100)


def test_the_onnx_export_is_faithful(digits_study: tuple[StudySpec, list[Event]]) -> None:
    results = {r.label: r for r in _finished(digits_study[1]).result.results}
    assert results["fp32"].fidelity is None
    export = results["onnx-fp32"].fidelity
    assert export["agreement"] == 1.0 and export["flipped"] == []
    assert export["sqnr_db"] > 80 and export["cosine"] > 0.9999
    assert results["ort-int8-static"].size_bytes < 0.4 * results["onnx-fp32"].size_bytes
    assert results["fp32"].verdict.overall.value == "baseline"


def test_the_json_contract(digits_study: tuple[StudySpec, list[Event]]) -> None:
    result = _finished(digits_study[1]).result
    data = json.loads(json.dumps(result.to_json_dict(), allow_nan=False))

    assert data["schema_version"] == 1
    assert data["status"] == "finished"
    assert {"path", "format", "params", "file_bytes"} <= set(data["model"])
    assert data["model"]["format"] == "pytorch-state-dict"
    assert data["dataset"]["spec"] == "builtin:digits"
    assert data["dataset"]["samples"] == 100 and data["dataset"]["task"] == "classification"
    assert {"cpu", "threads", "versions"} <= set(data["environment"])
    assert data["environment"]["threads"] == 1
    assert [r["label"] for r in data["results"]] == list(DEMO_SCHEMES)
    for r in data["results"]:
        assert {"scheme", "label", "status", "error", "size_bytes", "latency_ms", "throughput_per_s", "metrics",
                "fidelity", "coverage", "verdict"} <= set(r)
        assert r["status"] == "ok" and r["error"] is None
        assert r["size_bytes"] > 0
        lat = r["latency_ms"]
        assert {"p50", "p90", "p99", "mean", "std", "min", "n", "ci95_p50"} <= set(lat)
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
        assert lat["ci95_p50"][0] <= lat["p50"] <= lat["ci95_p50"][1]
        assert r["throughput_per_s"] == pytest.approx(1000 / lat["p50"], rel=1e-6)
        assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "per_class", "confusion_matrix"} <= set(
            r["metrics"]
        )
        if r["label"] != "fp32":
            assert {"mae", "mse", "max_abs", "sqnr_db", "cosine", "agreement", "flipped"} <= set(r["fidelity"])
        assert r["coverage"]["summary"]
        assert {"accuracy", "size", "speed", "overall", "thresholds"} <= set(r["verdict"])


# ----------------------------------------------------------------------------- failures and skips


def _broken_onnx(path: Path) -> Path:
    """A graph that loads fine and fails inside ONNX Runtime when it runs.

        input [batch, 1, 8, 8] ─ Reshape [-1, 7] ─▶ [?, 7] ─ MatMul w [7, 10] ─▶ logits [?, 10]

    Each sample has 64 values, so a batch of 64 samples (4096 values) cannot be cut into rows of 7.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "rows"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", 10])],
        [
            numpy_helper.from_array(np.array([-1, 7], dtype=np.int64), "rows"),
            numpy_helper.from_array(np.ones((7, 10), dtype=np.float32), "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_failing_variants_do_not_sink_the_study(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path, kit: SimpleNamespace
) -> None:
    # A different network whose output has 5 classes where the model has 10: refused before the
    # study (issue 14 item 1; it used to become a failed row), see tests/core/test_variant_fits.py.
    from core.errors import BadInput

    other = kit.export_onnx(kit.make_tiny_cnn(num_classes=5, seed=3), tmp_path / "other.onnx", kit.sample_shape)
    with pytest.raises(BadInput, match="other.onnx does not fit the model"):
        list(run_study(_spec(tiny_onnx, tiny_npz, VariantSpec(path=str(other)))))
    broken = _broken_onnx(tmp_path / "broken.onnx")
    spec = _spec(
        tiny_onnx, tiny_npz,
        VariantSpec(path=str(broken)),
        _scheme("torch-int8-dynamic"),
        _scheme("ort-int8-dynamic"),
    )

    events = list(run_study(spec))

    result = _finished(events).result
    assert result.status == "finished" and not _finished(events).cancelled
    statuses = {r.label: (r.status, r.error_stage) for r in result.results}
    assert statuses == {
        "fp32": (VariantStatus.OK, None),
        "file:broken.onnx": (VariantStatus.FAILED, "evaluating"),
        "torch-int8-dynamic": (VariantStatus.SKIPPED, "planning"),
        "ort-int8-dynamic": (VariantStatus.OK, None),
    }
    failed = {e.label: e for e in events if isinstance(e, VariantFailed)}
    assert set(failed) == {"file:broken.onnx", "torch-int8-dynamic"}
    assert failed["file:broken.onnx"].error.startswith("file:broken.onnx failed while evaluating:")
    assert "Reshape" in failed["file:broken.onnx"].error or "reshape" in failed["file:broken.onnx"].error
    assert "eager PyTorch" in failed["torch-int8-dynamic"].error
    for event in failed.values():
        assert "\n" not in event.error and "Traceback" not in event.error
        assert event.result.status is not VariantStatus.OK
    # The failed file variant was built (and measured for size) before it failed.
    built = {e.label for e in events if isinstance(e, VariantBuilt)}
    assert {"file:broken.onnx"} <= built
    json.dumps(result.to_json_dict(), allow_nan=False)


def test_two_variant_files_with_the_same_name_both_run(tmp_path: Path, tiny_onnx: Path, tiny_npz: Path) -> None:
    import shutil

    for folder in ("run_a", "run_b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(tiny_onnx, tmp_path / folder / "model.onnx")
    spec = _spec(
        tiny_onnx, tiny_npz,
        VariantSpec(path=str(tmp_path / "run_a" / "model.onnx")),
        VariantSpec(path=str(tmp_path / "run_b" / "model.onnx")),
    )
    assert len(_finished(list(run_study(spec))).result.results) == 3


# ----------------------------------------------------------------------------- cancellation


def test_cancel_after_the_first_variant_keeps_it(tiny_onnx: Path, tiny_npz: Path) -> None:
    token = CancelToken()
    spec = _spec(tiny_onnx, tiny_npz, _scheme("ort-int8-dynamic"), _scheme("ort-fp16"))
    events: list[Event] = []
    cancelled_at = None
    for event in run_study(spec, token):
        events.append(event)
        if isinstance(event, VariantFinished) and cancelled_at is None:
            token.cancel()
            cancelled_at = time.perf_counter()
    stopped_after = time.perf_counter() - cancelled_at

    finished = _finished(events)
    assert finished.cancelled and finished.result.status == "cancelled"
    assert [r.label for r in finished.result.results] == ["fp32"]
    assert finished.result.results[0].ok and finished.result.results[0].latency is not None
    assert [e.label for e in events if isinstance(e, VariantStarted)] == ["fp32"]
    assert stopped_after < 1.0


def test_cancel_from_another_thread_while_timing(tiny_onnx: Path, tiny_npz: Path) -> None:
    # Without the cancel, timing would run a full minute: it never converges below a million samples.
    endless = TimingSpec(
        threads=1, mode=TimingMode.THOROUGH, max_time_s=60, min_samples=10**6, max_samples=10**6, warmup_s=0.01
    )
    spec = _spec(tiny_onnx, tiny_npz, _scheme("ort-int8-dynamic"), timing=endless)
    token = CancelToken()
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.perf_counter())
        token.cancel()

    timer = threading.Timer(0.3, cancel)
    events: list[Event] = []
    try:
        for event in run_study(spec, token):
            events.append(event)
            if isinstance(event, LatencySamples) and not timer.is_alive() and not cancelled_at:
                timer.start()
    finally:
        timer.cancel()
    ended = time.perf_counter()

    finished = _finished(events)
    assert cancelled_at, "the study ended before the cancel"
    assert ended - cancelled_at[0] < 1.0
    assert finished.cancelled and finished.result.status == "cancelled"
    assert finished.result.results == [], "a variant cancelled mid-timing is not reported as finished"
    assert any(isinstance(e, LatencySamples) for e in events)


def test_a_study_cancelled_before_it_starts_finishes_cancelled(tiny_onnx: Path, tiny_npz: Path) -> None:
    token = CancelToken()
    token.cancel()
    events = list(run_study(_spec(tiny_onnx, tiny_npz), token))
    assert _finished(events).cancelled


# ----------------------------------------------------------------------------- regression


def test_a_regressor_gets_regression_metrics(tmp_path: Path, kit: SimpleNamespace) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    regressor = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1)).eval()
    model = kit.export_onnx(regressor, tmp_path / "regressor.onnx", (4,), output_name="value")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    predicted = kit.torch_outputs(regressor, x)[:, 0]
    y = (predicted + 0.05 * rng.standard_normal(120)).astype(np.float32)  # float targets near the model's
    data = kit.save_npz(tmp_path / "regression.npz", x, y)

    spec = _spec(model, data, _scheme("ort-int8-dynamic"))
    # Every sample evaluated (nothing held out for calibration, which the dynamic scheme does not use).
    events = list(run_study(replace(spec, dataset=replace(spec.dataset, calibration=CALIBRATE_ON_SAME))))

    result = _finished(events).result
    assert result.dataset["task"] == "regression"
    baseline, dynamic = result.results
    assert baseline.ok and dynamic.ok
    error = predicted.astype(np.float64) - y
    expected = {
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1 - np.sum(error**2) / np.sum((y - y.mean()) ** 2)),
    }
    for key, value in expected.items():
        assert baseline.metrics[key] == pytest.approx(value, rel=1e-4), key
    assert "accuracy" not in baseline.metrics
    assert set(expected) <= set(dynamic.metrics)
    assert "agreement" not in dynamic.fidelity and dynamic.fidelity["mae"] > 0
    json.dumps(result.to_json_dict(), allow_nan=False)


# ----------------------------------------------------------------------------- the machine changing speed


def test_the_baseline_is_timed_again_at_the_end(digits_study: tuple[StudySpec, list[Event]]) -> None:
    _, events = digits_study
    study = _finished(events).result
    recheck = study.timing["baseline_recheck"]
    baseline = study.results[0]
    assert recheck["first_p50_ms"] == pytest.approx(baseline.latency.p50, abs=1e-6)  # rounded to 6 places
    assert recheck["samples"] >= 30 and recheck["p50_ms"] > 0
    assert recheck["change"] == pytest.approx(recheck["p50_ms"] / recheck["first_p50_ms"] - 1, abs=1e-3)
    rechecks = [e for e in events if isinstance(e, Progress) and e.stage == "re-checking"]
    # Every other variant is re-timed briefly too, against its own first median.
    others = [r for r in study.results[1:] if r.ok and r.latency is not None]
    assert set(recheck["variants"]) == {r.label for r in others}
    for r in others:
        figures = recheck["variants"][r.label]
        assert figures["first_p50_ms"] == pytest.approx(r.latency.p50, abs=1e-6) and figures["p50_ms"] > 0
    from core.measures.drift_notes import drift_note, recheck_note

    moved = [label for label, f in recheck["variants"].items() if drift_note(f["first_p50_ms"], f["p50_ms"])]
    assert (recheck["moved"] is not None) == bool(moved)
    assert recheck["drifted"] == (recheck_note(recheck) is not None)  # one source for the flag and the warning
    # One for the baseline and one per other variant; when this (restless) machine moved, one per variant timed
    # again in rounds with the baseline; when the baseline itself moved, the rounds stand for the bursts.
    bursts = 0 if recheck.get("variants_from") == "paired" else len(others)
    assert len(rechecks) == 1 + bursts + (len(others) if recheck["drifted"] else 0)
    assert {e.label for e in rechecks} == {"fp32"}
    assert events.index(rechecks[0]) > max(i for i, e in enumerate(events) if isinstance(e, VariantFinished))
    assert ("paired" in study.timing) == recheck["drifted"]


@pytest.fixture
def slowable_copy_study(
    monkeypatch: pytest.MonkeyPatch, tiny_onnx: Path, tiny_npz: Path, tmp_path: Path
) -> tuple[StudySpec, dict[str, bool]]:
    """A study of the tiny ONNX model and a copy of it, on a machine that ``slow["on"] = True`` makes
    2 ms slower per ONNX Runtime call (as a shared machine changing speed does)."""
    import shutil

    from core.runtimes.ort_runner import OrtRunner

    slow = {"on": False}
    original = OrtRunner.prepare_call

    def prepare_call(self: OrtRunner, x: np.ndarray) -> Any:
        call = original(self, x)

        def slowed() -> Any:
            out = call()
            if slow["on"]:
                end = time.perf_counter() + 0.002  # two milliseconds more per call: a slower machine
                while time.perf_counter() < end:
                    pass
            return out

        return slowed

    monkeypatch.setattr(OrtRunner, "prepare_call", prepare_call)
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(tiny_onnx, copy)
    return _spec(tiny_onnx, tiny_npz, VariantSpec(path=str(copy))), slow


def test_a_machine_that_slows_down_mid_study_is_reported(
    slowable_copy_study: tuple[StudySpec, dict[str, bool]],
) -> None:
    """The CPU gets slower after the baseline's first timing (as a shared machine does): the re-check
    sees the baseline slower at the end, and every variant and the report say the speed-ups are suspect."""
    from core.reports.text import format_table

    spec, slow = slowable_copy_study
    events = []
    for event in run_study(spec):
        events.append(event)
        if isinstance(event, VariantFinished) and event.result.label == "fp32":
            slow["on"] = True
    study = _finished(events).result
    recheck = study.timing["baseline_recheck"]
    assert recheck["drifted"] is True and recheck["change"] > 0.5
    assert all(
        any("machine's speed changed" in n and "interleaved rounds" in n for n in r.notes) for r in study.results
    )
    text = format_table(study)
    assert text.count("machine's speed changed") == 1 and "warning:" in text
    # Timed one after the other, the copy looks several times slower than the baseline (it ran on the
    # slowed machine); timed in interleaved rounds, both ran on it: the copy is as fast as the baseline.
    base, copy_result = study.results
    assert copy_result.latency.p50 > 2 * base.latency.p50
    paired = study.timing["paired"]
    from core.engine.drift import PAIRED_ROUNDS

    assert paired["rounds"] == PAIRED_ROUNDS and set(paired["speedup"]) == {"fp32", copy_result.label}
    assert copy_result.verdict.speedup == paired["speedup"][copy_result.label]["median"] == pytest.approx(1.0, abs=0.25)
    assert copy_result.verdict.speed.value != "bad" and "interleaved rounds" in " ".join(copy_result.verdict.reasons)
    # The medians of those rounds are kept, and agree with the paired speed-up (a median of ratios,
    # so within the rounds' spread), unlike the first timings' p50s; the table marks the speed-up
    # and says where it came from, with those medians.
    rounds_p50 = paired["p50_ms"]
    figures = paired["speedup"][copy_result.label]
    assert set(rounds_p50) == {"fp32", copy_result.label}
    # The baseline itself moved, so the copy was not re-timed in a burst of its own before the rounds (one
    # reopening less per variant): its median at the end is the one from its rounds.
    assert recheck["variants_from"] == "paired"
    assert recheck["variants"][copy_result.label]["p50_ms"] == rounds_p50[copy_result.label]
    assert recheck["variants"][copy_result.label]["first_p50_ms"] == pytest.approx(copy_result.latency.p50, abs=1e-6)
    assert not any("briefly" in e.message for e in events if isinstance(e, Progress))
    assert 0.8 * figures["min"] <= rounds_p50["fp32"] / rounds_p50[copy_result.label] <= 1.25 * figures["max"]
    marked = next(line for line in text.splitlines() if line.startswith(copy_result.label))
    assert "\u2021" in marked and "\u2021" not in next(line for line in text.splitlines() if line.startswith("fp32"))
    assert "p50 in those rounds (ms): fp32 " in " ".join(text.split())
    # Nor does "why slower" judge the copy by its first timing: it follows the paired rounds too
    # (the copy's own p50 says 2x slower; paired, it is about as fast as the baseline).
    from core.engine.explain import explain_slowdown

    by_rounds = paired["speedup"][copy_result.label]
    assert copy_result.explanation == explain_slowdown(copy_result, base, by_rounds)
    if by_rounds["median"] >= 0.97:
        assert all("within timing noise" in cause for cause in copy_result.explanation)


def test_a_machine_that_slows_down_and_recovers_is_caught_by_the_variants_recheck(
    slowable_copy_study: tuple[StudySpec, dict[str, bool]],
) -> None:
    """The machine is slow only while the copy is first timed: the baseline's re-check at the end
    matches its first timing, but the copy's own re-check does not, so the paired rounds still run."""
    spec, slow = slowable_copy_study
    events = []
    for event in run_study(spec):
        events.append(event)
        if isinstance(event, VariantFinished):
            slow["on"] = event.result.label == "fp32"  # slow from the baseline's end to the copy's end
    study = _finished(events).result
    recheck = study.timing["baseline_recheck"]
    base, copy_result = study.results
    assert recheck["change"] < 1.0  # the baseline never saw the slow machine (2 ms on a ~0.05 ms call)
    assert recheck["moved"] == copy_result.label and recheck["variants"][copy_result.label]["change"] < -0.5
    assert recheck["drifted"] and study.timing["paired"]["rounds"] == 3
    assert copy_result.verdict.speedup == pytest.approx(1.0, abs=0.25)  # from the paired rounds
    note = next(n for n in copy_result.notes if "machine's speed changed" in n)
    assert "interleaved rounds" in note
    if abs(recheck["change"]) <= 0.10:  # (this VM's own speed changes can move the baseline too)
        assert f"{copy_result.label}'s median was" in note


def test_a_cancel_during_the_paired_rounds_keeps_the_recheck(
    slowable_copy_study: tuple[StudySpec, dict[str, bool]],
) -> None:
    spec, slow = slowable_copy_study
    token = CancelToken()
    events = []
    for event in run_study(spec, token):
        events.append(event)
        if isinstance(event, VariantFinished) and event.result.label == "fp32":
            slow["on"] = True
        if isinstance(event, Progress) and "interleaved rounds" in event.message:
            token.cancel()
    study = _finished(events).result
    assert study.timing["baseline_recheck"]["drifted"] is True and "paired" not in study.timing
    from core.measures.drift_notes import study_drift_warning

    assert "speed-ups can be off" in study_drift_warning(study.timing)


def test_a_runtime_failing_in_the_recheck_leaves_the_study_whole(
    slowable_copy_study: tuple[StudySpec, dict[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once every variant has been timed, the copy's runtime starts failing: its re-check is skipped,
    and the study still ends with both results."""
    from core.runtimes.ort_runner import OrtRunner

    spec, _ = slowable_copy_study
    broken = {"on": False}
    baseline_runner: list[int] = []
    original = OrtRunner.prepare_call

    def prepare_call(self: OrtRunner, x: np.ndarray) -> Any:
        call = original(self, x)
        baseline_runner[:] = baseline_runner or [id(self)]  # the baseline's runner is the first one used
        if broken["on"] and id(self) != baseline_runner[0]:
            raise RuntimeError("the runtime fell over")
        return call

    monkeypatch.setattr(OrtRunner, "prepare_call", prepare_call)
    events = []
    for event in run_study(spec):
        events.append(event)
        if isinstance(event, VariantFinished) and event.result.label != "fp32":
            broken["on"] = True
    study = _finished(events).result
    assert [r.ok for r in study.results] == [True, True]
    assert study.timing["baseline_recheck"]["variants"] == {}


def test_drift_notes_only_past_the_limit() -> None:
    from core.measures.drift_notes import DRIFT_LIMIT, drift_note, study_drift_warning

    assert drift_note(1.0, 1.0 + DRIFT_LIMIT * 0.9) is None
    assert drift_note(1.0, 1.0 - DRIFT_LIMIT * 0.9) is None
    assert "(+50%)" in drift_note(0.2, 0.3)
    assert "(-50%)" in drift_note(0.4, 0.2)
    assert study_drift_warning({}) is None
    assert study_drift_warning({"baseline_recheck": {"first_p50_ms": 0.2, "p50_ms": 0.3}}) == drift_note(0.2, 0.3)
