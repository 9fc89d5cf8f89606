"""A local Hugging Face model folder (``config.json`` and ``*.safetensors``), read strictly offline.

Needs the optional ``transformers`` package (``pip install 'quantbench[transformers]'``); without it the
folder is refused with a sentence saying what to install. Only safetensors weights are read (never a
pickled ``pytorch_model.bin``), ``local_files_only`` keeps it off the network, and ``trust_remote_code``
stays off: a folder whose architecture needs its own code is refused.

The model is wrapped so that it takes ``input_ids`` and ``attention_mask`` and returns its logits; it
then behaves as an eager PyTorch model over tokens (core.models.torch_model): the PyTorch schemes apply
to it, and the ONNX Runtime schemes export it to ONNX first (core.schemes.onnx_export).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.models.loaded import LoadedModel, ModelFormat

INSTALL_HINT = "pip install 'quantbench[transformers]'"


def is_hf_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a Hugging Face ``config.json``."""
    return path.is_dir() and (path / "config.json").is_file()


def load_hf_folder(path: Path) -> LoadedModel:
    """The folder's model as an eager PyTorch model over tokens; BadInput names the folder and the problem."""
    try:
        import transformers
    except ImportError:
        raise BadInput(
            f"{path} is a Hugging Face model folder; reading it needs the optional transformers package "
            f"({INSTALL_HINT})."
        ) from None
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise BadInput(f"{path}: no .safetensors weights in the folder (pickled .bin weights are not read).")
    for file in weights:
        if file.is_symlink() or file.resolve().parent != path.resolve():
            raise BadInput(f"{path}: weight file {file.name} is a link out of the folder.")
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        auto = _auto_class(transformers, config)
        model = auto.from_pretrained(
            str(path), config=config, local_files_only=True, trust_remote_code=False, use_safetensors=True,
            attn_implementation="eager",  # plain ops: the ONNX export and the int8 schemes see every MatMul
        )
    except Exception as exc:  # transformers reports a bad folder in many ways
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = lines[0] if lines else type(exc).__name__
        raise BadInput(f"{path} could not be loaded as a Hugging Face model ({why}).") from None
    model.eval()
    from core.models.torch_model import _torch_loaded

    loaded = _torch_loaded(
        path, ModelFormat.TORCH_STATE_DICT, _logits_class()(model), None, f"huggingface:{config.model_type}",
        file_bytes=sum(f.stat().st_size for f in weights),
    )
    if len(loaded.outputs) == 1:
        loaded.outputs = [replace(loaded.outputs[0], name="logits")]
    loaded.notes.append(f"Hugging Face {type(model).__name__} ({config.model_type}), read offline from safetensors")
    return loaded


def _auto_class(transformers: Any, config: Any) -> Any:
    """The Auto class for the folder's head: causal LM, sequence classification, or the bare model."""
    names = " ".join(getattr(config, "architectures", None) or [])
    if "ForCausalLM" in names or "LMHeadModel" in names:
        return transformers.AutoModelForCausalLM
    if "ForSequenceClassification" in names:
        return transformers.AutoModelForSequenceClassification
    if "ForTokenClassification" in names:
        return transformers.AutoModelForTokenClassification
    return transformers.AutoModel


@functools.cache
def _logits_class() -> type:
    import torch

    class HuggingFaceLogits(torch.nn.Module):
        """A Hugging Face model fed ``input_ids`` and ``attention_mask``, returning its logits (or hidden states)."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True)
            logits = getattr(out, "logits", None)
            return logits if logits is not None else out.last_hidden_state

    return HuggingFaceLogits
