"""A whole study near its floor (issue 20): batched evaluation, the drift re-check's sample floor,
memory released after each variant, a sample limit for slow variants (the advice before the run:
test_slow_probe.py).

Every model here is built in the test (a tiny CNN, one with BatchNorm, ONNX graphs made in code);
nothing is timed against a clock limit (the speed goals live in tests/perf).
"""

from __future__ import annotations

import gc
import time
import warnings
import weakref
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.datasets.base import Dataset
from core.engine.state import StudyState
from core.study.cancel import CancelToken
from core.study.events import Progress, StudyFinished, VariantStarted
from core.study.result import LatencyStats, VariantResult, VariantStatus
from core.study.spec import (
    CALIBRATE_ON_SAME,
    DatasetSpec,
    ModelSpec,
    SchemeSpec,
    StudySpec,
    Task,
    TimingSpec,
    VariantSpec,
)

QUICK = TimingSpec(threads=1, max_time_s=0.1, min_samples=10, warmup_runs=2, warmup_s=0.01)


def _state(x: np.ndarray, tmp_path: Path, eval_batch_size: int | None = None) -> StudyState:
    """A study's working state around real samples, as the engine holds it while evaluating."""
    spec = StudySpec(
        model=ModelSpec(path="unused"), dataset=DatasetSpec.parse("synthetic:1"),
        timing=replace(QUICK, eval_batch_size=eval_batch_size),
    )
    data = Dataset(x=x, y=None, task=Task.UNLABELLED, spec="test")
    return StudyState(spec=spec, model=None, dataset=data, task=Task.UNLABELLED, cancel=CancelToken(),
                      workdir=tmp_path)


def _evaluate(runner: Any, x: np.ndarray, tmp_path: Path, batch: int | None) -> tuple[np.ndarray, list[str], list]:
    from core.engine.evaluate import evaluate_variant

    notes: list[str] = []
    gen = evaluate_variant(_state(x, tmp_path, batch), "v", runner, notes)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, notes, events


def _bn_cnn() -> Any:
    """conv ─ BatchNorm (eval mode, non-trivial running statistics) ─ relu ─ pool ─ linear 10."""
    import torch
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 10),
    )
    bn = model[1]
    bn.running_mean.copy_(torch.linspace(-0.5, 0.5, 6))
    bn.running_var.copy_(torch.linspace(0.5, 2.0, 6))
    return model.eval()


# ----------------------------------------------------------------------------- batched evaluation


def test_batched_and_unbatched_evaluation_agree_with_batchnorm_in_eval_mode(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    from core.runtimes.torch_runner import TorchRunner

    x = kit.tiny_inputs(70, seed=3)
    runner = TorchRunner(_bn_cnn(), threads=1)
    one, one_notes, one_events = _evaluate(runner, x, tmp_path, 1)
    many, many_notes, many_events = _evaluate(runner, x, tmp_path, 16)
    assert one.shape == many.shape == (70, 10)
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-5)
    assert np.array_equal(many.argmax(1), one.argmax(1))
    assert not one_notes and not many_notes
    # Batch 1 reports after every sample; batches of up to 16 (as many as pay: _BatchClimb) report each call.
    assert len(one_events) == 70
    assert [e.done for e in many_events][-1] == 70 and all(isinstance(e, Progress) for e in many_events)
    sizes = np.diff([0] + [e.done for e in many_events])
    assert sizes[0] == 1 and sizes.max() <= 16 and all(b <= 2 * a for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def test_a_fixed_batch_onnx_model_falls_back_to_one_sample_and_says_so(tmp_path: Path) -> None:
    """An ONNX graph whose input is [1, 4]: fed one sample at a time, with the same outputs, and a note."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from core.runtimes.ort_runner import OrtRunner

    #   x [1, 4] ─ MatMul w [4, 3] ─▶ y [1, 3]
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "fixed.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    out, notes, events = _evaluate(OrtRunner(path, threads=1), x, tmp_path, 8)
    np.testing.assert_allclose(out, x @ w, rtol=1e-5, atol=1e-6)
    assert notes == ["the model's batch is fixed at 1: evaluated one sample at a time"]
    assert len(events) == 9


def test_a_torchscript_that_fails_past_batch_one_falls_back_and_says_so(tmp_path: Path) -> None:
    """A module traced at batch 1 with its batch written into a reshape runs only one sample per call."""
    import torch
    from torch import nn

    from core.runtimes.torch_runner import TorchRunner

    class Flat1(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.reshape(1, 64))  # the batch of one is baked in

    torch.manual_seed(0)
    module = Flat1().eval()
    x = np.random.default_rng(1).standard_normal((12, 1, 8, 8)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer warns that the reshape's batch is a constant: the point here
        traced = torch.jit.trace(module, torch.zeros(1, 1, 8, 8))
    out, notes, _ = _evaluate(TorchRunner(traced, threads=1), x, tmp_path, 8)
    with torch.inference_mode():
        expected = np.concatenate([module(torch.from_numpy(x[i : i + 1])).numpy() for i in range(12)])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert len(notes) == 1 and notes[0].startswith("the model fails on a batch of ")
    assert notes[0].endswith("evaluated one sample at a time")


def _study(model: Path, data: Path, *schemes: str, eval_batch_size: int | None = None, **timing: Any) -> StudySpec:
    return StudySpec(
        model=ModelSpec(path=str(model)),
        dataset=replace(DatasetSpec.parse(f"npz:{data}"), calibration=CALIBRATE_ON_SAME),
        variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in schemes),
        timing=replace(QUICK, eval_batch_size=eval_batch_size, **timing),
    )


def _result(spec: StudySpec) -> Any:
    from core.engine.run import run_study

    events = list(run_study(spec))
    assert isinstance(events[-1], StudyFinished)
    return events[-1].result


def test_a_whole_study_gives_the_same_metrics_in_batches_as_one_by_one(tiny_onnx: Path, tiny_npz: Path) -> None:
    one = _result(_study(tiny_onnx, tiny_npz, "ort-int8-dynamic", eval_batch_size=1))
    auto = _result(_study(tiny_onnx, tiny_npz, "ort-int8-dynamic"))
    assert one.timing["eval_batch_size"] == 1 and auto.timing["eval_batch_size"] > 1
    for a, b in zip(one.results, auto.results, strict=True):
        assert a.ok and b.ok and a.label == b.label
        assert b.metrics["accuracy"] == a.metrics["accuracy"]
        assert b.metrics["confusion_matrix"] == a.metrics["confusion_matrix"]
        for key in ("f1_macro", "precision_macro", "recall_macro"):
            assert b.metrics[key] == pytest.approx(a.metrics[key], abs=1e-9)
        if a.fidelity:
            assert b.fidelity["agreement"] == a.fidelity["agreement"]
            assert b.fidelity["mae"] == pytest.approx(a.fidelity["mae"], rel=1e-3, abs=1e-6)
        # Timing keeps the batch size asked for: one sample per timed call.
        assert a.latency.batch_size == b.latency.batch_size == 1


def test_the_eval_batch_is_chosen_from_the_sample_size_and_the_free_memory() -> None:
    from core.engine.evaluate import ACTIVATION_FACTOR, EVAL_CALL_BYTES, MAX_AUTO_EVAL_BATCH, default_eval_batch

    small = np.zeros((4, 1, 8, 8), dtype=np.float32)
    assert default_eval_batch(small, None) == default_eval_batch(small, 10**12) == MAX_AUTO_EVAL_BATCH
    # A 224x224 image: the largest power of two whose working memory fits one call's share, however much is free.
    x = np.zeros((4, 3, 224, 224), dtype=np.float32)
    per_sample = x[:1].nbytes * ACTIVATION_FACTOR
    by_call = default_eval_batch(x, None)
    assert by_call == default_eval_batch(x, 10**12) < MAX_AUTO_EVAL_BATCH
    assert by_call * per_sample <= EVAL_CALL_BYTES < 2 * by_call * per_sample and by_call & (by_call - 1) == 0
    assert default_eval_batch(np.zeros((4, 3, 448, 448), dtype=np.float32), None) == by_call // 4
    assert default_eval_batch(x, 8 * per_sample) == 2  # a quarter of the free memory: two samples' worth
    assert default_eval_batch(x, 0) == 1


def test_eval_batch_size_on_the_command_line_reaches_the_spec_and_back(tmp_path: Path) -> None:
    from core.cli.main import spec_from_args
    from core.cli.parser import parse_args
    from core.study.project import spec_from_dict

    args = parse_args(["run", "--model", str(tmp_path / "m.onnx"), "--dataset", "synthetic:8",
                       "--eval-batch-size", "12", "--batch-size", "2"])
    spec = spec_from_args(args)
    assert spec.timing.eval_batch_size == 12 and spec.timing.batch_size == 2
    assert spec_from_dict(spec.to_dict()).timing.eval_batch_size == 12
    older = spec.to_dict()
    del older["timing"]["eval_batch_size"]  # a spec saved before the option existed
    assert spec_from_dict(older).timing.eval_batch_size is None
    default = spec_from_args(parse_args(["run", "--model", "m.onnx", "--dataset", "synthetic:8"]))
    assert default.timing.eval_batch_size is None


# ----------------------------------------------------------------------------- the drift re-check's sample floor


def _latency(p50: float, n: int) -> LatencyStats:
    return LatencyStats(p50=p50, p90=p50, p99=p50, mean=p50, std=0.0, min=p50, max=p50, n=n,
                        ci95_p50=(p50, p50), iqr_rel=0.0, noisy=False)


def test_a_variant_with_too_few_samples_never_sets_off_the_recheck(tiny_onnx: Path) -> None:
    """The baseline holds still; a variant first timed with 2 samples at ten times its real speed would
    have "moved" by -90 %: it is left out of the re-check, and nothing is re-timed in rounds."""
    from core.engine.drift import DRIFT_MIN_SAMPLES, guard_against_drift
    from core.runtimes.ort_runner import OrtRunner

    x = np.zeros((1, 1, 8, 8), dtype=np.float32)
    runners = {label: OrtRunner(tiny_onnx, threads=1) for label in ("fp32", "few", "many")}
    first = {}
    for label, runner in runners.items():  # each one's real median now, as its first timing
        call = runner.prepare_call(x)
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        first[label] = float(np.median(times))
    base = VariantResult(label="fp32", scheme="fp32", status=VariantStatus.OK, is_baseline=True,
                         latency=_latency(first["fp32"], 200))
    few = VariantResult(label="few", scheme="file", status=VariantStatus.OK,
                        latency=_latency(first["few"] * 10, DRIFT_MIN_SAMPLES - 18))
    many = VariantResult(label="many", scheme="file", status=VariantStatus.OK, latency=_latency(first["many"], 200))
    spec = StudySpec(model=ModelSpec(path=str(tiny_onnx)), dataset=DatasetSpec.parse("synthetic:1"), timing=QUICK)
    timing_info: dict[str, Any] = {}
    gen = guard_against_drift(spec, base, [base, few, many], runners, x, CancelToken(), timing_info)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            paired = stop.value
            break
    recheck = timing_info["baseline_recheck"]
    assert "few" not in recheck["variants"] and "many" in recheck["variants"]
    assert recheck["moved"] != "few"
    assert not any("few" in e.message for e in events if isinstance(e, Progress))
    if paired is not None:  # this restless machine moved the baseline itself: the rounds leave "few" out
        assert "few" not in paired["speedup"] and "few" not in paired["p50_ms"]
    # Alone with too few samples, the baseline itself is not re-checked at all.
    lone = replace(base, latency=_latency(first["fp32"], 3))
    info: dict[str, Any] = {}
    assert list(guard_against_drift(spec, lone, [lone, many], runners, x, CancelToken(), info)) == []
    assert "baseline_recheck" not in info
    for runner in runners.values():
        runner.close()


# ----------------------------------------------------------------------------- memory released


def test_a_finished_variants_model_is_released_before_the_next_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A weak reference to each built variant's runner (and the model it holds) is dead by the time the
    next variant starts: nothing of a measured variant stays alive for the rest of the study."""
    from core.engine import build as build_module
    from core.engine.run import run_study

    built_refs: dict[str, list[weakref.ref]] = {}
    original = build_module.build_variant

    def recording_build(state: StudyState, planned: Any) -> Any:
        built = yield from original(state, planned)
        refs = [weakref.ref(built.runner)]
        held = getattr(built.runner, "session", None) or getattr(built.runner, "module", None)
        if held is not None:
            refs.append(weakref.ref(held))
        built_refs[planned.label] = refs
        return built

    monkeypatch.setattr("core.engine.run.build_variant", recording_build)
    from core.engine.run import demo_study_spec

    # The demo CNN (PyTorch): ONNX Runtime variants reopen their file at the end, PyTorch ones are built again.
    spec = replace(demo_study_spec(QUICK), variants=tuple(
        VariantSpec(scheme=SchemeSpec(s)) for s in ("ort-int8-dynamic", "torch-int8-dynamic", "torch-bf16")))
    started: list[str] = []
    alive_at_next_start: dict[str, bool] = {}
    for event in run_study(spec):
        if isinstance(event, VariantStarted):
            gc.collect()
            for label in started:
                alive_at_next_start.setdefault(label, any(r() is not None for r in built_refs[label]))
            started.append(event.label)
        if isinstance(event, StudyFinished):
            result = event.result
    assert [r.status for r in result.results] == [VariantStatus.OK] * 4
    # The baseline's runner stays (it is re-timed at the end); every other variant's is gone, model and all.
    assert alive_at_next_start == {"fp32": True, "ort-int8-dynamic": False, "torch-int8-dynamic": False}
    # ... and still re-checked at the end, reopened or built again.
    recheck = result.timing.get("baseline_recheck")
    if recheck is not None:
        assert {"ort-int8-dynamic", "torch-int8-dynamic"} <= set(recheck["variants"])


def test_a_variant_timed_with_too_few_samples_for_the_recheck_is_closed_at_once(tmp_path: Path) -> None:
    """A PyTorch module slow to build stays open for the end-of-study re-check, unless it was timed with too few
    samples to take part in it (float16 emulated at seconds per call): that one is closed as soon as it is measured."""
    from core.engine.drift import DRIFT_MIN_SAMPLES
    from core.engine.run import _keep_or_close
    from core.engine.state import PlannedVariant

    class Module:  # a runner with no file to reopen, as a PyTorch module built in memory
        closed = False

        def close(self) -> None:
            self.closed = True

    spec = StudySpec(model=ModelSpec(path="m.pt"), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK)
    state = StudyState(spec=spec, model=None, dataset=None, task=Task.CLASSIFICATION, cancel=CancelToken(),
                       workdir=tmp_path)
    for label, n in (("slow", min(DRIFT_MIN_SAMPLES, QUICK.min_samples) - 1), ("steady", 200)):
        runner = Module()
        result = VariantResult(label=label, scheme="torch-fp16", status=VariantStatus.OK, build_s=5.0,
                               latency=_latency(1000.0 if label == "slow" else 10.0, n))
        _keep_or_close(state, PlannedVariant(label, "torch-fp16", None, None, None), result, runner)
        assert runner.closed == (label == "slow") and (label in state.runners) == (label == "steady")
    state.close_runners()


def test_the_eval_batch_size_is_in_the_reproduce_command_and_overrides_a_project_file(tmp_path: Path) -> None:
    from core.cli.main import main
    from core.study.project import reproduce_command, save_spec
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingSpec

    spec = StudySpec(ModelSpec("m.onnx"), DatasetSpec.parse("synthetic:8"), timing=TimingSpec(eval_batch_size=8))
    assert "--eval-batch-size 8" in reproduce_command(spec.to_dict())
    assert "--eval-batch-size" not in reproduce_command(StudySpec(ModelSpec("m.onnx"), spec.dataset).to_dict())
    # A bad value given beside --spec is refused in one sentence naming the option.
    project = tmp_path / "study.json"
    save_spec(spec, project)
    assert main(["run", "--spec", str(project), "--eval-batch-size", "0", "--no-history"]) == 2


# ----------------------------------------------------------------------------- a sample limit for slow variants


def test_a_slow_variant_is_evaluated_on_its_first_samples_and_compared_on_those(
    tiny_onnx: Path, tiny_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--slow-variant-samples: a variant past SLOW_EVAL_FACTOR stops after the limit; its metrics, fidelity and
    accuracy change are those of the same first samples, never the baseline's whole set."""
    import core.engine.run as run_module
    from core.measures.task_metrics import classification_metrics

    # Every variant counts as slow here (the factor is what the clock compares against: a real one is timing).
    monkeypatch.setattr(run_module, "SLOW_EVAL_FACTOR", 0.0)
    spec = _study(tiny_onnx, tiny_npz, "ort-int8-dynamic", "ort-fp16", eval_batch_size=16,
                  slow_variant_samples=8)
    result = _result(spec)
    base = result.baseline()
    data = np.load(tiny_npz)
    x, y = data["x"], data["y"]
    assert base.evaluated is None and sum(map(sum, base.metrics["confusion_matrix"])) == len(y)
    for r in result.results:
        if r.is_baseline or not r.ok:
            continue
        ev = r.evaluated
        assert ev is not None and 8 <= ev["samples"] < len(y) and ev["of"] == len(y), (r.label, ev)
        n = ev["samples"]
        assert any(f"first {n} of {len(y)} samples" in note for note in r.notes)
        # The baseline's metrics on the same n samples, computed directly from its own runtime.
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
        base_out = sess.run(None, {sess.get_inputs()[0].name: x[:n]})[0]
        direct = classification_metrics(y[:n], base_out, base_out.shape[-1])
        assert ev["baseline_metrics"]["accuracy"] == pytest.approx(direct["accuracy"])
        assert r.verdict.accuracy_drop == pytest.approx(direct["accuracy"] - r.metrics["accuracy"])
        assert sum(map(sum, r.metrics["confusion_matrix"])) == n
    assert sum(1 for r in result.results if r.evaluated) == 2
    # Without the option, nothing is cut short even when every variant is "slow".
    whole = _result(_study(tiny_onnx, tiny_npz, "ort-int8-dynamic", eval_batch_size=16))
    assert all(r.evaluated is None for r in whole.results)
    assert sum(map(sum, whole.results[-1].metrics["confusion_matrix"])) == len(y)


def test_the_eval_clock_stops_only_a_variant_past_the_factor() -> None:
    from core.engine.run import SLOW_EVAL_FACTOR, _EvalClock

    spec = SimpleNamespace(timing=SimpleNamespace(slow_variant_samples=10))
    state = SimpleNamespace(spec=spec, baseline_eval_s_per_sample=0.01, dataset=[0] * 100)
    fast = VariantResult("fast", "x", VariantStatus.OK, is_baseline=False)
    clock = _EvalClock(state, fast)  # type: ignore[arg-type]
    assert not clock.stop_after(11, 10 * 0.01 * (SLOW_EVAL_FACTOR - 0.5))  # slower, but under the factor
    assert fast.evaluated is None
    slow = VariantResult("slow", "x", VariantStatus.OK, is_baseline=False)
    clock = _EvalClock(state, slow)  # type: ignore[arg-type]
    assert not clock.stop_after(5, 4 * 0.01 * 10)  # under the limit: goes on
    assert clock.stop_after(11, 10 * 0.01 * 10)
    assert slow.evaluated == {"samples": 11, "of": 100, "slowdown": 10.0}
    assert not clock.stop_after(100, 99 * 0.01 * 10)  # the whole set is done: nothing to cut
    base = VariantResult("fp32", "fp32", VariantStatus.OK, is_baseline=True)
    assert not _EvalClock(state, base).stop_after(11, 10.0)  # type: ignore[arg-type]


def test_slow_variant_samples_on_the_command_line_reaches_the_spec_and_back(tmp_path: Path) -> None:
    from core.cli.main import spec_from_args
    from core.cli.parser import parse_args
    from core.errors import BadInput
    from core.study.project import spec_from_dict

    args = parse_args(["run", "--model", str(tmp_path / "m.onnx"), "--dataset", "synthetic:8",
                       "--slow-variant-samples", "32"])
    spec = spec_from_args(args)
    assert spec.timing.slow_variant_samples == 32
    assert spec_from_dict(spec.to_dict()).timing.slow_variant_samples == 32
    with pytest.raises(BadInput, match="--slow-variant-samples must be at least 1"):
        spec_from_args(parse_args(["run", "--model", "m.onnx", "--dataset", "synthetic:8",
                                   "--slow-variant-samples", "0"]))


def _climb(cap: int, seconds: Any, calls: int = 12) -> list[int]:
    """The batches _BatchClimb chooses for a model whose call of b samples takes seconds(b)."""
    from core.engine.evaluate import _BatchClimb

    climb, size, sizes = _BatchClimb(cap), 1, []
    for _ in range(calls):
        sizes.append(size)
        size = climb.next_size(size, seconds(size))
    return sizes


def test_the_evaluation_batch_grows_only_while_a_sample_gets_cheaper() -> None:
    # A small model: a call's overhead dominates, so every doubling pays until the cap.
    assert _climb(32, lambda b: 1e-3 + 1e-5 * b) == [1, 1, 2, 4, 8, 16, 32, 32, 32, 32, 32, 32]
    # A CNN whose activations outgrow the caches: batch 4 is the cheapest per sample, and it stays there.
    per_sample = {1: 0.050, 2: 0.045, 4: 0.040, 8: 0.048, 16: 0.060}
    assert _climb(32, lambda b: b * per_sample[b]) == [1, 1, 2, 4, 8, 4, 4, 4, 4, 4, 4, 4]
    # No gain at all: one sample at a time (the least memory), after one try of two.
    assert _climb(32, lambda b: b * 0.05) == [1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    # A call stays within EVAL_CALL_S even where a larger batch would be cheaper.
    from core.engine.evaluate import EVAL_CALL_S

    slow = _climb(64, lambda b: EVAL_CALL_S / 5 + b * EVAL_CALL_S / 50)
    assert max(b * EVAL_CALL_S / 50 + EVAL_CALL_S / 5 for b in slow) <= EVAL_CALL_S * 1.5
