"""Advice before the run (issue 20): a variant pathologically slow on this machine, float16/bfloat16 in
PyTorch or ONNX Runtime's dynamic int8 convolutions, measured on a few calls of the model's own layers; the
layout the float16 probe measured is the one its build keeps. Models are the demo CNN or built in the test;
nothing is timed against a clock limit (the speed goals live in tests/perf)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from core.study.events import StudyFinished, StudyStarted
from core.study.spec import SchemeSpec, TimingSpec, VariantSpec

QUICK = TimingSpec(threads=1, max_time_s=0.1, min_samples=10, warmup_runs=2, warmup_s=0.01)


def test_a_slow_half_precision_variant_is_measured_and_flagged_before_the_run() -> None:
    """The demo CNN with torch-fp16 and torch-bf16: StudyStarted carries each one's slowdown measured on a few
    calls, and the advice names it when it is past SLOW_FACTOR."""
    from core.engine.run import demo_study_spec, run_study
    from core.engine.slow_probe import SLOW_FACTOR

    base = demo_study_spec(QUICK)
    spec = replace(base, variants=(VariantSpec(scheme=SchemeSpec("torch-fp16")),
                                   VariantSpec(scheme=SchemeSpec("torch-bf16"))))
    events = list(run_study(spec))
    started = next(e for e in events if isinstance(e, StudyStarted))
    slowdown = started.timing["expected_slowdown"]
    assert set(slowdown) == {"torch-fp16", "torch-bf16"} and all(v > 0 for v in slowdown.values())
    for label, factor in slowdown.items():
        flagged = any("measured on a few calls" in line for line in started.advice.get(label, []))
        assert flagged == (factor >= SLOW_FACTOR)
    result = events[-1].result
    assert result.timing["expected_slowdown"] == slowdown  # kept in the result's timing block


def test_the_layout_the_probe_measured_is_the_one_the_build_keeps_without_timing_it_again(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole-model half-precision probe times channels-last against contiguous, as torch-fp16's build
    does with memory_format=auto: the build takes the probe's answer from the study's cache (both layouts
    timed once in the study, not twice) and its note says when it was measured."""
    from core.engine import slow_probe
    from core.engine.run import demo_study_spec, run_study
    from core.schemes import torch_precision

    monkeypatch.setattr(slow_probe, "SLOW_FACTOR", 0.0)  # the whole model is called whatever the layer says
    picked: list[str] = []
    real = torch_precision.pick_layout

    def counted(module: Any, inp: Any) -> Any:
        picked.append("called")
        return real(module, inp)

    monkeypatch.setattr(torch_precision, "pick_layout", counted)
    spec = replace(demo_study_spec(QUICK), layer_samples=0, variants=(VariantSpec(scheme=SchemeSpec("torch-fp16")),))
    result = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result
    variant = result.results[1]
    assert variant.ok and len(picked) == 1
    layout_notes = [n for n in variant.notes if "contiguous" in n]
    assert len(layout_notes) == 1 and "on this machine, measured before the run" in layout_notes[0]
    assert result.timing["expected_slowdown"]["torch-fp16"] > 0


def test_dynamic_int8_is_measured_before_the_run_on_the_models_own_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    """ort-int8-dynamic on the demo CNN: its layers quantized and run by ONNX Runtime give its expected
    slowdown, carried by StudyStarted and kept in the result (the time-left estimate reads it). The demo's
    0.24 ms call is under DYNAMIC_PROBE_MIN_CALL_S, so the limit is lowered here."""
    from core.engine import slow_probe
    from core.engine.run import demo_study_spec, run_study
    from core.engine.slow_probe import SLOW_FACTOR

    monkeypatch.setattr(slow_probe, "DYNAMIC_PROBE_MIN_CALL_S", 0.0)

    spec = replace(demo_study_spec(QUICK), layer_samples=0,
                   variants=(VariantSpec(scheme=SchemeSpec("ort-int8-dynamic")),))
    events = list(run_study(spec))
    started = next(e for e in events if isinstance(e, StudyStarted))
    factor = started.timing["expected_slowdown"]["ort-int8-dynamic"]
    assert factor > 0
    flagged = any("dynamic int8 runs about" in line for line in started.advice.get("ort-int8-dynamic", []))
    assert flagged == (factor >= SLOW_FACTOR)
    assert events[-1].result.timing["expected_slowdown"] == {"ort-int8-dynamic": factor}


def test_the_dynamic_int8_probe_writes_each_convolution_as_pytorch_computes_it(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's graph holds each convolution on its own input: in float32 it gives the layers' own outputs
    (strides, padding, dilation, groups, bias, 1-D and 2-D). Its graphs hold at most PROBE_GRAPH_BYTES of
    weights each, and a model without convolutions is not probed."""
    import onnxruntime as ort
    import torch

    from core.engine import slow_probe
    from core.engine.slow_probe import _dynamic_int8_slowdown, _layers_onnx, _LayerTime, _writable

    torch.manual_seed(0)
    cases = [
        (torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), (1, 3, 17, 17)),
        (torch.nn.Conv2d(8, 8, 3, padding=(2, 1), dilation=(2, 1), groups=4, bias=False), (1, 8, 9, 11)),
        (torch.nn.Conv1d(4, 6, 5, padding=2), (1, 4, 20)),
    ]
    layers = [_LayerTime(layer.eval(), shape, 1, 1e-3) for layer, shape in cases]
    assert all(_writable(t.layer) for t in layers)
    assert not _writable(torch.nn.Conv2d(3, 3, 3, padding="same"))
    assert not _writable(torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"))
    assert not _writable(torch.nn.Linear(4, 4))
    session = ort.InferenceSession(_layers_onnx(layers).SerializeToString(), providers=["CPUExecutionProvider"])
    xs = [np.random.default_rng(i).standard_normal(shape, dtype=np.float32) for i, (_, shape) in enumerate(cases)]
    got = session.run(None, {f"x{i}": x for i, x in enumerate(xs)})
    with torch.inference_mode():
        for (layer, _), x, y in zip(cases, xs, got, strict=True):
            np.testing.assert_allclose(y, layer(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)

    graphs: list[int] = []
    real = slow_probe._dynamic_int8_call_s
    monkeypatch.setattr(slow_probe, "_dynamic_int8_call_s", lambda ls, threads: graphs.append(len(ls)) or real(ls, 1))
    monkeypatch.setattr(slow_probe, "PROBE_GRAPH_BYTES", 1100)  # weights of 864, 576 and 480 bytes: [864], [576 + 480]
    assert _dynamic_int8_slowdown(layers, 1.0, 1) > 0
    assert graphs == [1, 2]
    with pytest.raises(ValueError, match="no convolution"):
        _dynamic_int8_slowdown([_LayerTime(torch.nn.Linear(4, 4), (1, 4), 1, 1e-3)], 1.0, 1)
    with pytest.raises(ValueError, match="too fast"):  # ONNX Runtime's cost per call would be the figure
        _dynamic_int8_slowdown(layers, slow_probe.DYNAMIC_PROBE_MIN_CALL_S / 2, 1)


def test_slow_advice_says_the_slowdown_and_the_time_it_will_take() -> None:
    from core.engine.slow_probe import slow_advice

    text = slow_advice(27.4, "float16", 0.045, 256)
    assert text is not None and "about 27x slower than float32" in text
    assert "evaluating 256 samples may take about 5 min" in text  # 0.045 s x 27.4 x 256 = 316 s
    assert "dynamic int8 runs about 2.6x slower" in (slow_advice(2.6, "dynamic int8", 0.045, 64) or "")
    assert slow_advice(1.4, "bfloat16", 0.045, 256) is None
