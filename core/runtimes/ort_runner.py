"""Run an ONNX model in ONNX Runtime, with threads pinned and inputs bound before timing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput
from core.study.spec import Device

_EVAL_BATCH = 256


def session_options(threads: int, optimized_path: Path | None = None, level: str = "all") -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No busy-waiting between calls: the window and the rest of the machine keep their cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Fatal only: a failed run comes back as an exception we report in one sentence; ONNX Runtime's
    # own log lines would reach the terminal raw (colour codes and all) beside it.
    opts.log_severity_level = 4
    ort.set_default_logger_severity(4)
    opts.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }[level]
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return opts


def providers_for(device: Device) -> list[str]:
    import onnxruntime as ort

    if device is Device.CUDA:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BadInput("CUDA was asked for, but ONNX Runtime has no CUDA provider here (it needs the "
                           "onnxruntime-gpu package), and it does not run on the CPU in its place.")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtRunner:
    runtime = "onnxruntime"

    def __init__(self, model_path: Path | str, threads: int, device: Device = Device.CPU) -> None:
        import onnxruntime as ort

        self.threads = threads
        self.model_path = Path(model_path)
        self.session = ort.InferenceSession(
            str(model_path), sess_options=session_options(threads), providers=providers_for(device)
        )
        if device is Device.CUDA and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise BadInput("CUDA was asked for, but ONNX Runtime could not start its CUDA provider here.")
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = _NP_TYPES.get(first.type, np.float32)
        batch = first.shape[0] if first.shape else None
        #: A model with a fixed batch of 1 is fed one sample at a time.
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.device = device

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        step = self.fixed_batch or _EVAL_BATCH
        chunks = []
        for start in range(0, len(x), step):
            part = x[start : start + step]
            short = (self.fixed_batch or len(part)) - len(part)
            if short > 0:  # the last samples of a fixed batch: padded with zeros, their outputs dropped
                part = np.concatenate([part, np.zeros((short, *part.shape[1:]), dtype=part.dtype)])
            out = self.session.run([self.output_name], {self.input_name: part})[0]
            chunks.append(np.asarray(out, dtype=np.float32)[: len(part) - short])
        return np.concatenate(chunks, axis=0)

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, x)
        binding.bind_output(self.output_name)
        session = self.session
        self._keep = x  # the binding points at this buffer; keep it alive

        # With the CUDA provider, outputs bound to host memory are copied back inside
        # run_with_iobinding, so the clock is read only after the GPU has finished.
        def call() -> object:
            session.run_with_iobinding(binding)
            return None

        return call

    def reopener(self) -> Callable[[], OrtRunner]:
        """What makes a fresh runner of the same file (a new session, its memory arena empty); it holds
        no reference to this runner, so this one can go."""
        return functools.partial(OrtRunner, self.model_path, self.threads, self.device)

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
        self._keep = None


_NP_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
}
