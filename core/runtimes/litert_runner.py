"""Run a TFLite model in the LiteRT interpreter, always on real-valued data.

* A quantized input (int8/uint8/int16 with a scale) is fed ``round(x / scale) + zero_point``,
  clipped to its type; a quantized output is read back as ``(q - zero_point) * scale``.
  A float model and its int8 twin are therefore compared on the same real inputs.
* Channels-first image batches (N, C, H, W) are transposed for an NHWC model when the
  two layouts cannot be confused.
* A batch dimension fixed in the model (TFLite usually fixes it at 1) is resized when
  the model allows it, checked once against sample-by-sample results, and otherwise
  the batch is run sample by sample.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput

#: A resized batch must agree with sample-by-sample results this closely to be trusted.
_RESIZE_RTOL = 1e-4
_RESIZE_ATOL = 1e-5


class LiteRTRunner:
    runtime = "litert"

    def __init__(self, model_path: Path | str, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(model_path)
        self.threads = threads
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self._interpreter.allocate_tensors()
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self._in_index = int(inp["index"])
        self._out_index = int(out["index"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_dtype = np.dtype(out["dtype"])
        #: (scale, zero point) the model itself declares; (0.0, 0) for a float tensor.
        self.input_quantization = _quantization(inp)
        self.output_quantization = _quantization(out)
        shape = [int(d) for d in inp["shape"]]
        signature = [int(d) for d in inp.get("shape_signature", shape)] or shape
        self.sample_shape = tuple(shape[1:])
        self.native_batch = shape[0] if shape else 1
        #: True: the model declares a free batch dimension; resizing needs no check.
        self.dynamic_batch = bool(signature) and signature[0] == -1
        #: None until tried; then whether resizing a fixed batch gives the same results.
        self.resizable: bool | None = True if self.dynamic_batch else None
        self._batch = self.native_batch
        self._keep: Any = None
        #: Every input by name (index, dtype, quantization, shape), for a model fed several named inputs.
        self._inputs = {
            str(d["name"]): (int(d["index"]), np.dtype(d["dtype"]), _quantization(d), tuple(int(s) for s in d["shape"]))
            for d in self._interpreter.get_input_details()
        }

    def select_output(self, name: str, index: int) -> None:
        """Return output ``name`` (or the ``index``-th) from now on, for a model with several outputs."""
        details = self._interpreter.get_output_details()
        chosen = next((d for d in details if d["name"] == name), details[min(index, len(details) - 1)])
        self._out_index = int(chosen["index"])
        self.output_dtype = np.dtype(chosen["dtype"])
        self.output_quantization = _quantization(chosen)

    # -- several named inputs (token ids and masks): one native batch at a time -----------------
    def _named_chunks(self, x: np.ndarray) -> tuple[list[dict[int, np.ndarray]], int]:
        """The batch as the model's native batches, each {input index: array in the input's dtype}, and the
        padding added to the last one."""
        from core.models.io_spec import input_names

        missing = [name for name in self._inputs if name not in input_names(x)]
        if missing:
            raise BadInput(f"{self.path.name}: no array for the model input '{missing[0]}'.")
        b = self.native_batch
        pad = (-len(x)) % b
        if pad:
            x = np.concatenate([x, np.zeros(pad, dtype=x.dtype)])
        self._resize(b)
        chunks = []
        for start in range(0, len(x), b):
            part = x[start : start + b]
            feed = {}
            for name, (index, dtype, (scale, zero), shape) in self._inputs.items():
                values = np.asarray(part[name]).reshape((b, *shape[1:]))
                if dtype.kind in "iu" and scale:
                    info = np.iinfo(dtype)
                    v = values.astype(np.float64) / scale
                    values = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zero, info.min, info.max)
                feed[index] = np.ascontiguousarray(values.astype(dtype))
            chunks.append(feed)
        return chunks, pad

    def _predict_named(self, x: np.ndarray) -> np.ndarray:
        chunks, pad = self._named_chunks(x)
        interp = self._interpreter
        outs = []
        for feed in chunks:
            for index, values in feed.items():
                interp.set_tensor(index, values)
            interp.invoke()
            outs.append(interp.get_tensor(self._out_index).copy())
        out = np.concatenate(outs, axis=0)
        return self.from_model_output(out[: len(out) - pad] if pad else out)

    def _call_named(self, x: np.ndarray) -> Callable[[], object]:
        chunks, _ = self._named_chunks(x)
        self._keep = chunks
        interp = self._interpreter

        def call() -> object:
            for feed in chunks:
                for index, values in feed.items():
                    interp.set_tensor(index, values)
                interp.invoke()
            return None

        return call

    @property
    def fixed_batch(self) -> int | None:
        """The model's own batch once resizing it proved unfaithful or impossible; None while a batch may grow."""
        return self.native_batch if self.resizable is False else None

    # -- conversions -------------------------------------------------------------------
    def to_model_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` in the model's layout and dtype (quantized with the model's scale and zero point)."""
        x = np.asarray(x)
        x = self._layout(x)
        scale, zero = self.input_quantization
        if self.input_dtype.kind in "iu" and scale:
            info = np.iinfo(self.input_dtype)
            v = x.astype(np.float64) / scale
            # TFLite rounds half away from zero (std::round), not to even.
            q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero
            return np.ascontiguousarray(np.clip(q, info.min, info.max).astype(self.input_dtype))
        return np.ascontiguousarray(x.astype(self.input_dtype, copy=False))

    def from_model_output(self, out: np.ndarray) -> np.ndarray:
        """The real values of an output (dequantized when the model's output is quantized)."""
        scale, zero = self.output_quantization
        if self.output_dtype.kind in "iu" and scale:
            return ((out.astype(np.float32) - np.float32(zero)) * np.float32(scale)).astype(np.float32)
        return np.asarray(out, dtype=np.float32)

    def _layout(self, x: np.ndarray) -> np.ndarray:
        have, want = tuple(x.shape[1:]), self.sample_shape
        if have == want:
            return x
        if len(want) == 3 and have == (want[2], want[0], want[1]) and want[2] != want[0]:
            return np.transpose(x, (0, 2, 3, 1))  # NCHW batch for an NHWC model
        same_order = [d for d in have if d != 1] == [d for d in want if d != 1]
        if int(np.prod(have)) == int(np.prod(want)) and (len(have) == 1 or same_order):
            return x.reshape((x.shape[0], *want))  # flat samples, or only unit axes (one channel) moved
        raise BadInput(
            f"{self.path.name}: samples of shape {list(have)} do not fit the model input {list(want)} per sample."
        )

    # -- running -----------------------------------------------------------------------
    def _resize(self, n: int) -> bool:
        """Allocate the input for a batch of ``n``; False when the model refuses it."""
        if n == self._batch:
            return True
        if self.resizable is False and n != self.native_batch:
            return False
        interp = self._interpreter
        try:
            interp.resize_tensor_input(self._in_index, [n, *self.sample_shape], strict=self.dynamic_batch)
            interp.allocate_tensors()
        except (ValueError, RuntimeError):
            self._restore()
            return False
        self._batch = n
        return True

    def _restore(self) -> None:
        self.resizable = False if not self.dynamic_batch else self.resizable
        interp = self._interpreter
        interp.resize_tensor_input(self._in_index, [self.native_batch, *self.sample_shape], strict=False)
        interp.allocate_tensors()
        self._batch = self.native_batch

    def _invoke(self, xq: np.ndarray) -> np.ndarray:
        interp = self._interpreter
        interp.set_tensor(self._in_index, xq)
        interp.invoke()
        return interp.get_tensor(self._out_index)

    def _run_whole(self, xq: np.ndarray) -> np.ndarray | None:
        """All of ``xq`` in one call, or None when the batch cannot be resized faithfully."""
        n = len(xq)
        if not self._resize(n):
            return None
        try:
            out = self._invoke(xq)
        except (ValueError, RuntimeError):
            self._restore()
            return None
        if out.shape[:1] != (n,):
            self._restore()
            return None
        if self.resizable is None:
            # A fixed batch that accepted a resize: trust it only if it matches sample-by-sample runs.
            check = min(n, 2)
            single = self._run_by_sample(xq[:check])
            self.resizable = bool(
                np.allclose(single, out[:check].astype(single.dtype), rtol=_RESIZE_RTOL, atol=_RESIZE_ATOL)
            )
            if not self.resizable:
                self._restore()
                return None
            self._resize(n)  # the check ran at the native batch; leave the input sized for n
        return out

    def _run_by_sample(self, xq: np.ndarray) -> np.ndarray:
        """Run ``xq`` in chunks of the model's native batch, padding the last chunk."""
        self._resize(self.native_batch)
        b = self.native_batch
        chunks = []
        for start in range(0, len(xq), b):
            part = xq[start : start + b]
            if len(part) < b:
                pad = np.zeros((b - len(part), *part.shape[1:]), dtype=part.dtype)
                chunks.append(self._invoke(np.concatenate([part, pad]))[: len(part)])
            else:
                chunks.append(self._invoke(part))
        return np.concatenate(chunks, axis=0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.names is not None:
            return self._predict_named(x)
        xq = self.to_model_input(x)
        if len(xq) == 0:
            raise BadInput(f"{self.path.name}: an empty batch was given.")
        out = self._run_whole(xq) if len(xq) != self.native_batch else None
        if out is None:
            out = self._run_by_sample(xq)
        return self.from_model_output(out)

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        if x.dtype.names is not None:
            return self._call_named(x)
        xq = self.to_model_input(x)
        self._keep = xq
        interp = self._interpreter
        whole = len(xq) == self.native_batch and self._resize(self.native_batch)
        if not whole:
            whole = self._run_whole(xq) is not None
        if whole:
            interp.set_tensor(self._in_index, xq)  # set once: the timed call is the inference only

            def call() -> object:
                interp.invoke()
                return None

            return call
        b = self.native_batch
        self._resize(b)
        pad = (-len(xq)) % b
        if pad:
            xq = np.concatenate([xq, np.zeros((pad, *xq.shape[1:]), dtype=xq.dtype)])
        chunks = [np.ascontiguousarray(xq[i : i + b]) for i in range(0, len(xq), b)]
        self._keep = chunks
        index = self._in_index

        def call_by_sample() -> object:
            # The model runs one native batch at a time: the whole batch costs all of them.
            for chunk in chunks:
                interp.set_tensor(index, chunk)
                interp.invoke()
            return None

        return call_by_sample

    def reopener(self) -> Callable[[], LiteRTRunner]:
        """What makes a fresh interpreter of the same file, without a reference to this runner."""
        return functools.partial(LiteRTRunner, self.path, self.threads)

    def close(self) -> None:
        self._interpreter = None  # type: ignore[assignment]
        self._keep = None


def _quantization(detail: dict[str, Any]) -> tuple[float, int]:
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    if scales is not None and len(scales) > 1:
        raise BadInput(
            f"tensor '{detail['name']}' is quantized per channel at the model's interface, which QuantBench "
            "cannot feed with real values."
        )
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)
