"""Run an ONNX model in ONNX Runtime, with threads pinned and inputs bound before timing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
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


def kernel_events(events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The node-kernel events of an ONNX Runtime profile (one per node run per call, ``args.op_name`` its op
    type), without the fences and session events around them."""
    return (e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"))


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
        #: Every input's name and dtype, for a model fed several named inputs (core.models.io_spec).
        self.input_dtypes = {i.name: ORT_NUMPY_TYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = ORT_NUMPY_TYPES.get(first.type, np.float32)
        batch = first.shape[0] if first.shape else None
        #: A model with a fixed batch of 1 is fed one sample at a time.
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.device = device

    def select_output(self, name: str, index: int) -> None:
        """Return output ``name`` (or the ``index``-th, for a file whose outputs are named otherwise) from now on."""
        names = [o.name for o in self.session.get_outputs()]
        self.output_name = name if name in names else names[min(index, len(names) - 1)]

    def _feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The batch as this session's inputs, each in its own dtype (token ids stay integers)."""
        from core.models.io_spec import is_named

        if not is_named(x):
            return {self.input_name: np.ascontiguousarray(x, dtype=self.input_dtype)}
        return {name: np.ascontiguousarray(x[name], dtype=dtype) for name, dtype in self.input_dtypes.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        step = self.fixed_batch or _EVAL_BATCH
        chunks = []
        for start in range(0, len(x), step):
            part = x[start : start + step]
            short = (self.fixed_batch or len(part)) - len(part)
            if short > 0:  # the last samples of a fixed batch: padded with zeros, their outputs dropped
                part = np.concatenate([part, np.zeros((short, *part.shape[1:]), dtype=part.dtype)])
            out = self.session.run([self.output_name], self._feeds(part))[0]
            chunks.append(np.asarray(out, dtype=np.float32)[: len(part) - short])
        return np.concatenate(chunks, axis=0)

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        fed = self._feeds(x)
        binding = self.session.io_binding()
        for name, array in fed.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(self.output_name)
        x = fed  # type: ignore[assignment]
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


#: The numpy type of each ONNX Runtime input type string.
ORT_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
