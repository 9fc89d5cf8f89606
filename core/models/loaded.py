"""What a loaded model looks like to the rest of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from core.printable import printable


class ModelFormat(str, Enum):
    ONNX = "onnx"
    TORCH_STATE_DICT = "pytorch-state-dict"
    TORCHSCRIPT = "torchscript"
    TORCH_EXPORT = "torch-export"
    TFLITE = "tflite"

    @property
    def is_torch(self) -> bool:
        return self in (ModelFormat.TORCH_STATE_DICT, ModelFormat.TORCHSCRIPT, ModelFormat.TORCH_EXPORT)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    #: Dimensions; a symbolic dimension is its name (str), an unknown one None.
    shape: tuple[int | str | None, ...]
    dtype: str  # numpy dtype name, e.g. "float32"
    #: For an integer input that indexes an embedding table (token ids): the table's rows, the ids it allows.
    vocab: int | None = None

    @property
    def sample_shape(self) -> tuple[int | str | None, ...]:
        """The shape of one sample: everything after the batch dimension."""
        return self.shape[1:]

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} [{dims}] {self.dtype}"


@dataclass
class LoadedModel:
    path: Path
    format: ModelFormat
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    params: int
    file_bytes: int
    #: torch.nn.Module, torch.jit.ScriptModule, or an onnx path; what schemes start from.
    handle: Any = None
    arch: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Which of ``outputs`` carries the prediction (core.models.io_spec.choose_output).
    output_index: int = 0
    #: Why the prediction output could not be chosen (several candidates, or ``--output`` names none); the
    #: engine refuses the study with it before anything runs. None when the choice is made.
    output_problem: str | None = None

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def output(self) -> TensorInfo:
        """The output that carries the prediction: the only one, or the one chosen among several."""
        return self.outputs[self.output_index]

    def info(self) -> dict[str, Any]:
        """The ``model`` block of the result JSON."""
        return {
            "path": str(self.path),
            "format": self.format.value,
            "arch": self.arch,
            "params": self.params,
            "file_bytes": self.file_bytes,
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                        **({"vocab": t.vocab} if t.vocab else {})} for t in self.inputs],
            "prediction_output": self.output.name,
            "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in self.outputs],
            "notes": [printable(n) for n in self.notes],  # may quote the file's own metadata
        }
