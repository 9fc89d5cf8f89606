"""Run a PyTorch module (eager, TorchScript or an exported program's module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import BadInput
from core.study.spec import Device

_EVAL_BATCH = 256


class TorchRunner:
    runtime = "pytorch"

    def __init__(self, module: Any, threads: int, device: Device = Device.CPU, dtype: Any = None) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self.threads = threads
        if device is Device.CUDA:
            from core.runtimes.devices import torch_cuda_problem

            problem = torch_cuda_problem()
            if problem:
                raise BadInput(f"CUDA was asked for, but {problem}.")
        self.device = torch.device("cuda" if device is Device.CUDA else "cpu")
        self.module = module.to(self.device) if hasattr(module, "to") else module
        #: The batch a torch.export program was fixed at (core.models.torch_model.fixed_batch_module), else None.
        self.fixed_batch = getattr(module, "batch", None) if type(module).__name__ == "FixedBatch" else None
        #: Input dtype the module computes in (float16/bfloat16 variants cast inputs here).
        self.dtype = dtype if dtype is not None else torch.float32

    #: Which output is the prediction: its index, and its name for a module that returns a dict.
    output_index = 0
    output_name: str | None = None

    def select_output(self, name: str, index: int) -> None:
        """Return output ``name`` (a dict's key) or the ``index``-th of a tuple from now on."""
        self.output_name, self.output_index = name, index

    def _tensor(self, x: np.ndarray) -> Any:
        tensor = self._torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        # Token ids and masks keep their integer dtype; only floating inputs take the variant's precision.
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def _args(self, x: np.ndarray) -> tuple[Any, ...]:
        """The batch as the module's positional arguments: one per named input, in order."""
        from core.models.io_spec import input_names, is_named

        if not is_named(x):
            return (self._tensor(x),)
        return tuple(self._tensor(x[name]) for name in input_names(x))

    def _first(self, out: Any) -> Any:
        if isinstance(out, dict):
            key = self.output_name if self.output_name in out else list(out)[min(self.output_index, len(out) - 1)]
            return out[key]
        if isinstance(out, (tuple, list)):
            out = out[min(self.output_index, len(out) - 1)]
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return out

    def _pin_threads(self) -> None:
        # With OpenMP the thread count belongs to the calling thread: a runner built in one
        # thread and run in another would otherwise run a default-sized team, whose barriers
        # stall for a scheduler slice (about 90 ms) whenever the cores are busy.
        self._torch.set_num_threads(self.threads)

    def predict(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        self._pin_threads()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(x), _EVAL_BATCH):
                out = self._first(self.module(*self._args(x[start : start + _EVAL_BATCH])))
                chunks.append(out.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        torch = self._torch
        self._pin_threads()
        args = self._args(x)
        module = self.module
        if self.device.type == "cuda":
            sync = torch.cuda.synchronize

            def call() -> object:
                with torch.inference_mode():
                    out = module(*args)
                sync()  # the clock is read after the GPU has finished
                return out

            return call

        def call_cpu() -> object:
            with torch.inference_mode():
                return module(*args)

        return call_cpu

    def close(self) -> None:
        self.module = None
