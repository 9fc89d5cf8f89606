"""``fp32``: the model as loaded, in its own runtime: the row every other is compared with."""

from __future__ import annotations

from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo
from core.study.spec import SchemeSpec


def runner_for_loaded(model: LoadedModel, ctx: BuildContext):  # noqa: ANN201 - a Runner
    """A runner for a model exactly as loaded from disk."""
    if model.format is ModelFormat.ONNX:
        from core.runtimes.ort_runner import OrtRunner

        return OrtRunner(model.path, ctx.threads, ctx.device)
    if model.format is ModelFormat.TFLITE:
        from core.runtimes.litert_runner import LiteRTRunner

        return LiteRTRunner(model.path, ctx.threads)
    from core.runtimes.torch_runner import TorchRunner

    return TorchRunner(model.handle, ctx.threads, ctx.device)


def loaded_coverage(model: LoadedModel) -> dict:
    """Coverage of a model file as it is (not for ONNX, which is counted on ORT's optimized graph)."""
    if model.format is ModelFormat.TFLITE:
        from core.models.tflite_model import tflite_coverage

        return tflite_coverage(model.path)
    if model.format is ModelFormat.TORCH_EXPORT:
        from core.models.torch_model import exported_graph_coverage

        return exported_graph_coverage(model.handle)
    if model.format.is_torch:
        from core.schemes.coverage import torch_module_coverage

        return torch_module_coverage(model.handle)
    return {"summary": f"{model.format.value} file"}


class Fp32(Scheme):
    info = SchemeInfo(
        id="fp32",
        title="Float baseline",
        description="The model as loaded, in its own runtime; every other variant is compared with it.",
        family="baseline",
        runtime="the model's own",
        is_float=True,
    )

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        if model.format is ModelFormat.ONNX:
            from core.schemes.coverage import ort_graph_coverage

            # The coverage's own session is gone before the runner's opens (as for every ONNX Runtime variant):
            # a large model's weights are never held by two sessions at once.
            coverage = ort_graph_coverage(model.path, ctx.threads, ctx.workdir)
            runner = runner_for_loaded(model, ctx)
        else:
            runner = runner_for_loaded(model, ctx)
            coverage = loaded_coverage(model)

        coverage["summary"] = "as loaded: " + coverage["summary"]
        return BuiltVariant(runner=runner, size_bytes=model.file_bytes, artifact=model.path, coverage=coverage)
