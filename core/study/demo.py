"""Where the bundled demo lives and what it is made of.

The demo is a small CNN trained on scikit-learn's 8x8 digits by
``resources/demo/make_demo.py``; it ships both as a PyTorch state dict and as
the same network exported to ONNX.
"""

from __future__ import annotations

from pathlib import Path

#: resources/ sits at the repository root, next to core/.
DEMO_DIR: Path = Path(__file__).resolve().parents[2] / "resources" / "demo"
DEMO_WEIGHTS: Path = DEMO_DIR / "digits_cnn.pt"
DEMO_ONNX: Path = DEMO_DIR / "digits_cnn.onnx"
#: The architecture name to load DEMO_WEIGHTS into (see core.models.architectures).
DEMO_ARCH = "demo"
DEMO_DATASET = "builtin:digits"


def demo_available() -> bool:
    """True when both demo model files are present (an installed bundle may lack resources/)."""
    return DEMO_WEIGHTS.is_file() and DEMO_ONNX.is_file()
