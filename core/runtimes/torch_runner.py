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

    def _tensor(self, x: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)

    def _first(self, out: Any) -> Any:
        if isinstance(out, (tuple, list)):
            out = out[0]
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
                out = self._first(self.module(self._tensor(x[start : start + _EVAL_BATCH])))
                chunks.append(out.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        torch = self._torch
        self._pin_threads()
        tensor = self._tensor(x)
        module = self.module
        if self.device.type == "cuda":
            sync = torch.cuda.synchronize

            def call() -> object:
                with torch.inference_mode():
                    out = module(tensor)
                sync()  # the clock is read after the GPU has finished
                return out

            return call

        def call_cpu() -> object:
            with torch.inference_mode():
                return module(tensor)

        return call_cpu

    def close(self) -> None:
        self.module = None
