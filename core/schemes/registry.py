"""The scheme catalogue: ids are part of the command-line contract."""

from __future__ import annotations

from core.errors import BadInput
from core.schemes.base import Scheme


def catalogue() -> list[Scheme]:
    """Every scheme, in the order the window and `quantbench schemes` list them."""
    from core.schemes.baseline import Fp32
    from core.schemes.ort_int4 import OrtInt4Weight
    from core.schemes.ort_schemes import OnnxFp32, OrtFp16, OrtInt8Dynamic
    from core.schemes.ort_static import OrtInt8Static
    from core.schemes.pruning import PruneChannels, PruneL1
    from core.schemes.torch_precision import TorchBf16, TorchFp16
    from core.schemes.torch_schemes import TorchInt8Dynamic
    from core.schemes.torch_static import TorchInt8Static
    from core.schemes.torch_weight_only import TorchInt8WeightOnly

    # Baselines, then PyTorch (float, int8), pruning, then ONNX Runtime (int8, float16, int4).
    return [
        Fp32(), OnnxFp32(),
        TorchFp16(), TorchBf16(), TorchInt8Dynamic(), TorchInt8Static(), TorchInt8WeightOnly(),
        PruneL1(), PruneChannels(),
        OrtInt8Dynamic(), OrtInt8Static(), OrtFp16(), OrtInt4Weight(),
    ]


def get_scheme(scheme_id: str) -> Scheme:
    for scheme in catalogue():
        if scheme.info.id == scheme_id:
            return scheme
    known = ", ".join(s.info.id for s in catalogue())
    raise BadInput(f"scheme {scheme_id!r} is not a known scheme (known: {known}; see `quantbench schemes`).")
