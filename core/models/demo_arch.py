"""The bundled demo model: a small CNN for scikit-learn's 8x8 digits.

Input (N, 1, 8, 8) float32 in 0..1, output (N, 10) logits. It is sized so
that weights dominate its file (about 226 000 parameters), which is what makes
quantizing it show the size savings real models show, while one sample still
runs in tens of microseconds on a laptop CPU.

    (1, 8, 8) ─ conv 32 ─ conv 64 ─ pool ─▶ (64, 4, 4) ─ conv 128 ─ pool ─▶ (128, 2, 2)
              ─ flatten 512 ─ linear 256 ─ linear 10

Every convolution is followed by BatchNorm and ReLU; the Linear layers give
PyTorch's dynamic int8 quantization something to work on.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

DEMO_NUM_CLASSES = 10
DEMO_INPUT_SHAPE: tuple[int, ...] = (1, 1, 8, 8)


def build_demo_cnn(num_classes: int = DEMO_NUM_CLASSES) -> nn.Module:
    """A freshly initialised demo CNN (torch is imported here, not at module import)."""
    from torch import nn

    def conv_block(c_in: int, c_out: int) -> list[nn.Module]:
        # No conv bias: the BatchNorm that follows has its own shift.
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    features = nn.Sequential(
        *conv_block(1, 32),
        *conv_block(32, 64),
        nn.MaxPool2d(2),
        *conv_block(64, 128),
        nn.MaxPool2d(2),
    )
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(128 * 2 * 2, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, num_classes),
    )
    # Named halves so the state dict reads "features.0.weight", "classifier.1.weight".
    return nn.Sequential(OrderedDict(features=features, classifier=classifier))
