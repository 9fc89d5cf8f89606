"""Architectures a PyTorch state dict can be loaded into, by name.

A state dict holds weights only, so the user names the network that owns them:
``demo`` (the bundled digits CNN) or ``torchvision:NAME`` for any torchvision
classification model, built without weights (nothing is ever downloaded).
``cached_pretrained_weights`` finds torchvision's published weights when they are
already in the local torch hub cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from core.errors import BadInput
from core.models.demo_arch import DEMO_INPUT_SHAPE, DEMO_NUM_CLASSES, build_demo_cnn

if TYPE_CHECKING:
    from torch import nn

DEMO = "demo"
TORCHVISION_PREFIX = "torchvision:"

#: Classification models whose native input is not 224x224.
_TORCHVISION_INPUT_SIZE = {"inception_v3": 299}


def _torchvision_classifiers() -> list[str]:
    """Names of torchvision's classification models (one image tensor in, logits out)."""
    import torchvision.models

    # Restricting to the classification namespace leaves out detection, segmentation,
    # video and optical-flow models, whose inputs or outputs are not one tensor of logits.
    return list(torchvision.models.list_models(module=torchvision.models))


def _unknown(name: str) -> BadInput:
    return BadInput(
        f"architecture '{name}' is unknown; use 'demo' or 'torchvision:NAME' such as torchvision:resnet18."
    )


def _torchvision_name(name: str) -> str:
    """The torchvision model name inside ``name``, checked to be a classifier."""
    import torchvision.models

    model_name = name[len(TORCHVISION_PREFIX) :]
    if model_name in _torchvision_classifiers():
        return model_name
    if model_name in torchvision.models.list_models():
        raise BadInput(
            f"architecture '{name}' is not a classification model; QuantBench builds torchvision "
            "classifiers such as torchvision:resnet18."
        )
    raise _unknown(name)


def known_architectures() -> list[str]:
    """Every name ``build_architecture`` accepts, ``demo`` first."""
    return [DEMO] + [TORCHVISION_PREFIX + n for n in sorted(_torchvision_classifiers())]


def build_architecture(name: str, num_classes: int | None = None) -> nn.Module:
    """A freshly initialised network for ``name``, ready for ``load_state_dict``.

    ``num_classes`` replaces the architecture's default number of outputs
    (10 for ``demo``, 1000 for torchvision classifiers). Unknown names raise BadInput.
    """
    name = name.strip()
    if name == DEMO:
        return build_demo_cnn(DEMO_NUM_CLASSES if num_classes is None else num_classes)
    if name.startswith(TORCHVISION_PREFIX):
        import torchvision.models

        model_name = _torchvision_name(name)
        kwargs = {} if num_classes is None else {"num_classes": num_classes}
        # weights=None: build the bare network; loading a checkpoint is the caller's job.
        return torchvision.models.get_model(model_name, weights=None, **kwargs)
    raise _unknown(name)


def default_input_shape(name: str) -> tuple[int, ...]:
    """The batch-1 input shape the architecture expects, e.g. (1, 3, 224, 224)."""
    name = name.strip()
    if name == DEMO:
        return DEMO_INPUT_SHAPE
    if name.startswith(TORCHVISION_PREFIX):
        size = _TORCHVISION_INPUT_SIZE.get(_torchvision_name(name), 224)
        return (1, 3, size, size)
    raise _unknown(name)


def cached_pretrained_weights(name: str) -> tuple[str, Path] | None:
    """(weights name, file) of torchvision pretrained weights already in the local torch hub cache.

    The default weights are preferred, then any other published set. Nothing is downloaded:
    a weights file that is not on disk is simply not found.
    """
    import torch.hub
    import torchvision.models

    model_name = _torchvision_name(name.strip())
    try:
        enum = torchvision.models.get_model_weights(model_name)
    except (ValueError, KeyError):
        return None
    members = list(enum)
    default = getattr(enum, "DEFAULT", None)
    if default in members:
        members.remove(default)
        members.insert(0, default)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for weights in members:
        path = folder / os.path.basename(urlparse(weights.url).path)
        if path.is_file():
            return f"{enum.__name__}.{weights.name}", path
    return None
