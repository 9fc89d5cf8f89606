"""Finding the variant that fits an accuracy budget: per-layer sensitivity and the measured search.

``core.tune.sensitivity`` ranks the quantizable layers of an ONNX model for ONNX Runtime static int8 from one
calibration; ``core.tune.search`` builds, evaluates and times candidates until one loses at most the allowed
points and beats float on latency or size. Qt-free; onnx and onnxruntime are imported inside the functions.
"""
