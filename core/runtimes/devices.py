"""Whether this machine can run a study on CUDA, asked of the runtimes themselves.

A study that asks for CUDA where none is usable is refused before anything runs: nothing may
fall back to the CPU without a word (issue 14, item 9). The runtimes are imported only when
CUDA is asked for, so a CPU study and ``quantbench --help`` never wait for them.
"""

from __future__ import annotations

import ctypes.util
import sys
import warnings
from pathlib import Path


def cuda_may_be_present() -> bool:
    """A cheap hint (no runtime is imported): an NVIDIA driver is installed here.

    The window offers its CUDA choice only then; ``cuda_problem`` is the real check."""
    if sys.platform.startswith("linux") and Path("/proc/driver/nvidia/version").exists():
        return True
    return any(ctypes.util.find_library(name) for name in ("cuda", "nvcuda"))


def torch_cuda_problem() -> str | None:
    """None when PyTorch can run on a CUDA GPU here, else why not (a clause)."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is built without CUDA"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Found no NVIDIA driver": said below in our words
        if torch.cuda.is_available():
            return None
    return "PyTorch finds no NVIDIA driver or GPU"


def ort_cuda_problem() -> str | None:
    """None when ONNX Runtime has its CUDA provider here, else why not (a clause)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "ONNX Runtime is not installed"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return None
    return "ONNX Runtime has no CUDA provider (it needs the onnxruntime-gpu package)"


def cuda_problem() -> str | None:
    """None when a study can run on CUDA here; else one clause saying why not.

    CUDA is usable when PyTorch sees a GPU or ONNX Runtime has its CUDA provider; each runner
    still refuses CUDA itself when its own runtime cannot use it (never a silent CPU run)."""
    torch_problem = torch_cuda_problem()
    if torch_problem is None:
        return None
    ort_problem = ort_cuda_problem()
    if ort_problem is None:
        return None
    return f"no usable CUDA GPU here: {torch_problem}, and {ort_problem}"
