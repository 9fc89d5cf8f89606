"""The numbers the suite must report, with the goal each one is held to (issue #6; the whole study: issue #20)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    key: str
    title: str
    low: float | None = None  # the value must be at least this
    high: float | None = None  # and at most this
    unit: str = ""

    def met(self, value: Any) -> bool | None:
        """True/False against the goal; None when the value is missing or the key has no goal."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if self.low is None and self.high is None:
            return None
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g}–{self.high:g}{self.unit}"
        if self.high is not None:
            return f"≤ {self.high:g}{self.unit}"
        if self.low is not None:
            return f"≥ {self.low:g}{self.unit}"
        return "reported"


GOALS: tuple[Goal, ...] = (
    Goal("harness_overhead_ratio_1ms", "Harness ÷ bare loop, ~1 ms model", high=1.01),
    Goal("harness_overhead_ratio_50us", "Harness ÷ bare loop, ~50 µs model", high=1.05),
    Goal("torch_timer_agreement_ratio", "Harness ÷ torch.utils.benchmark.Timer", low=0.97, high=1.03),
    Goal("gui_interference_ratio_p50", "Window live ÷ headless, median (best round of each)", high=1.02),
    Goal("gui_interference_ratio_p99", "Window live ÷ headless, p99 (best round of each)", high=1.25),
    Goal("gui_timer_lateness_p99_ms", "GUI timer lateness p99 while streaming", high=5.0, unit=" ms"),
    Goal("gui_longest_stall_ms", "GUI longest stall while streaming", high=50.0, unit=" ms"),
    Goal("chart_redraw_p99_ms", "Chart redraw p99, 10⁵ samples × 6 variants", high=16.0, unit=" ms"),
    Goal("first_histogram_s", "quantbench --demo to first histogram", high=3.0, unit=" s"),
    Goal("int8_speedup_resnet18", "ort-int8-static ÷ onnx-fp32 speed, ResNet-18, 1 thread", low=2.0, unit="×"),
    Goal("int8_speedup_mobilenet_v2", "ort-int8-static ÷ onnx-fp32 speed, MobileNetV2, 1 thread", low=2.0, unit="×"),
    Goal("int8_conv_fraction_resnet18", "Convolutions as integer kernels, ResNet-18", low=0.95),
    Goal("int8_conv_fraction_mobilenet_v2", "Convolutions as integer kernels, MobileNetV2", low=0.95),
    Goal("size_ratio_resnet18", "fp32 file ÷ int8 file, ResNet-18", low=3.5, unit="×"),
    Goal("size_ratio_mobilenet_v2", "fp32 file ÷ int8 file, MobileNetV2", low=3.5, unit="×"),
    Goal("peak_rss_mb_resnet50", "Peak RSS, ResNet-50 study (fp32 + static int8)", unit=" MB"),
    Goal("study_floor_ratio_resnet18", "Catalogue study ÷ its floor (builds + fastest evaluation + timing), ResNet-18",
         high=1.3, unit="×"),
    Goal("study_time_resnet18_catalogue_s", "Catalogue study, ResNet-18, 256 samples (this machine)", high=90.0,
         unit=" s"),
    Goal("study_peak_rss_mb_resnet18_catalogue", "Peak RSS, catalogue study, ResNet-18", high=1500.0, unit=" MB"),
    Goal("study_peak_rss_ratio_catalogue_to_single", "Peak RSS, catalogue ÷ largest one-variant study", high=1.2,
         unit="×"),
    Goal("layer_analysis_overhead_ratio_resnet18",
         "Layer analysis ÷ evaluating fp32 + static int8 on the same 64 samples, ResNet-18", high=3.0, unit="×"),
    Goal("layer_analysis_peak_rss_ratio_resnet50", "Peak RSS, ResNet-50 study with layer analysis ÷ without",
         high=1.5, unit="×"),
    Goal("sweep_overhead_ratio", "Sweep on local Ray: scheduling overhead per study ÷ the demo study's own time",
         high=0.10, unit="×"),
    Goal("sensitivity_cost_ratio_resnet18",
         "Sensitivity (leave-one-out) ÷ (one calibration + (L+1) evaluations), ResNet-18", high=1.5, unit="×"),
    Goal("sensitivity_cost_ratio_resnet18_per_part",
         "Sensitivity, all three parts, per part ÷ the same bound, ResNet-18 (thorough)", high=1.5, unit="×"),
    Goal("tune_demo_search_s", "quantbench tune --demo --max-drop 0.5, end to end", high=120.0, unit=" s"),
    Goal("transformer_study_s", "BERT-base-shaped study (fp32, int8 dynamic, int4 ×2), 64 × 128 tokens", unit=" s"),
    Goal("transformer_int8_speedup", "ort-int8-dynamic ÷ fp32 speed, BERT-base-shaped, 1 thread", unit="×"),
    Goal("transformer_int4_speedup", "ort-int4-weight ÷ fp32 speed, BERT-base-shaped, 1 thread", unit="×"),
    Goal("transformer_peak_rss_ratio", "Peak RSS of the BERT-base-shaped study ÷ its float file", high=3.0, unit="×"),
    Goal("large_onnx_peak_ratio_fp32", "2.2 GB external-data ONNX: the baseline's peak RSS ÷ the model", high=2.0,
         unit="×"),
    Goal("large_onnx_peak_ratio_ort_int8_dynamic", "2.2 GB external-data ONNX: ort-int8-dynamic's peak ÷ the model",
         high=2.0, unit="×"),
    Goal("large_onnx_peak_ratio_ort_int4_weight", "2.2 GB external-data ONNX: ort-int4-weight's peak ÷ the model",
         high=2.0, unit="×"),
    Goal("large_onnx_peak_ratio_ort_int8_static", "2.2 GB external-data ONNX: ort-int8-static's peak ÷ the model",
         high=2.0, unit="×"),
    Goal("large_onnx_peak_ratio_ort_fp16", "2.2 GB external-data ONNX: ort-fp16's peak ÷ the model", high=2.0,
         unit="×"),
)

#: Keys the JSON must hold (the issue's list); the suite reports which are missing.
REQUIRED_KEYS = (
    "harness_overhead_ratio_1ms", "harness_overhead_ratio_50us", "torch_timer_agreement_ratio",
    "gui_interference_ratio_p50", "gui_interference_ratio_p99", "gui_timer_lateness_p99_ms", "gui_longest_stall_ms",
    "chart_redraw_p99_ms", "first_histogram_s", "int8_speedup_resnet18", "int8_speedup_mobilenet_v2",
    "int8_conv_fraction_resnet18", "size_ratio_resnet18", "peak_rss_mb_resnet50", "cpu", "threads",
    "study_floor_ratio_resnet18", "study_peak_rss_mb_resnet18_catalogue",
)


def verdicts(result: dict[str, Any]) -> dict[str, bool | None]:
    """For every goal key: met (True), missed (False) or not measured / no goal (None)."""
    return {g.key: g.met(result.get(g.key)) for g in GOALS}
