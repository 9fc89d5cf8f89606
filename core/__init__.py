"""QuantBench's GUI-free engine.

Importing this package is cheap: torch, onnxruntime, scikit-learn and the
other heavy libraries are imported only where they are used.
"""

__version__ = "0.1.0"
