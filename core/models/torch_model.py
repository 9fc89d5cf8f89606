"""Load PyTorch files: state dicts (safely, weights only), TorchScript and torch.export (trusted only)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "weights")
#: The label an untrained network carries wherever the model is described.
UNTRAINED_NOTE = "untrained: latency and size are meaningful, accuracy is not"


def load_state_dict_model(path: Path, arch: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
    """A ``torch.save``-d state dict paired with an architecture; loaded with ``weights_only=True``."""

    from core.models.architectures import build_architecture, default_input_shape

    state = safe_torch_load(path)
    state = _unwrap_state_dict(path, state)
    if arch is None:
        raise BadInput(
            f"{path} is a PyTorch state dict (weights without code): name its architecture with --arch "
            "(demo, or torchvision:NAME such as torchvision:resnet18)."
        )
    module = build_architecture(arch)
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        mismatch = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), _first_line(exc))
        raise BadInput(f"{path} does not fit architecture {arch!r}: {mismatch.rstrip('.')}.") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} keys such as {result.missing_keys[0]!r}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys such as {result.unexpected_keys[0]!r}")
    if problems:
        raise BadInput(f"{path} does not fit architecture {arch!r}: " + "; ".join(problems) + ".")
    module.eval()
    shape = tuple(input_shape) if input_shape else default_input_shape(arch)
    return _torch_loaded(path, ModelFormat.TORCH_STATE_DICT, module, shape, arch)


def safe_torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``, always; a refusal names the offending global."""
    import pickle
    import warnings

    from core.models.limits import check_claim

    check_claim(path, "reading the file", path.stat().st_size)
    _check_zip_sizes(path)  # before torch is even imported

    import torch

    # This variable would make torch ignore weights_only; a stranger's file must never get that.
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it did not write; the refusal below says what matters.
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        raise BadInput(f"{path} was refused: {_weights_only_reason(path, exc)}; it is not loaded unsafely.") from None
    except EOFError:
        raise BadInput(f"{path} ends before its PyTorch data does; it is truncated.") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways, all meaning the same
        reason = _first_line(exc)
        raise BadInput(f"{path} could not be read as a PyTorch file ({reason}); it may be truncated.") from None


def _check_zip_sizes(path: Path) -> None:
    """Refuse a zip-format file whose members would inflate past what memory holds, before torch reads any.

    torch.save writes every member stored (uncompressed), but PyTorch's reader also inflates
    deflated ones, allocating each member's declared size and inflating it whole: a small
    member declaring gigabytes (a decompression bomb) used to be inflated in full before torch
    found that no tensor needed it. Its reader never goes past a member's declared size, so
    the declared sizes, checked here from the zip directory alone, bound what loading costs.
    """
    import zipfile

    from core.models.limits import check_claim, check_zip_member

    with path.open("rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # torch's own test for its zip format; legacy files are single pickles
            return
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    # zipfile reports damage in many ways (bad names, unknown versions, bad sizes, BadZipFile).
    except Exception:  # noqa: BLE001 - every way a damaged archive fails means the same thing here
        raise BadInput(f"{path} starts like a zip archive (PyTorch format) but is truncated or corrupt.") from None
    archive_bytes = path.stat().st_size
    total = sum(check_zip_member(path, info, archive_bytes) for info in infos)
    check_claim(path, "unpacking its members", total)


def _weights_only_reason(path: Path, exc: BaseException) -> str:
    """Why the safe unpickler said no, naming the global the file asks for; torch's own advice is left out."""
    import re

    text = str(exc)
    named = re.search(r"GLOBAL ([\w.]+)", text)
    # Protocol 4+ pickles fail on an opcode before reaching the global: find it in the pickle itself.
    refused = [named.group(1)] if named else _refused_globals(path)
    if refused:
        name = refused[0]
        if name.startswith(("torch.nn.", "__main__.")):
            return (
                f"it is a whole pickled model object (global {name}), which needs code to load; "
                "save its state_dict() instead"
            )
        return f"it needs code to load (global {name})"
    operand = re.search(r"Unsupported operand (\d+)", text)
    if operand:
        return (
            f"its pickle uses opcode {operand.group(1)}, which the weights-only loader does not accept, "
            "so it is damaged or holds more than weights"
        )
    return "it holds something other than plain weights (" + _first_line(exc) + ")"


def _refused_globals(path: Path) -> list[str]:
    """Globals (module.name) referenced by the file's pickle that weights-only loading does not allow.

    Reads the opcodes with ``pickletools`` only, which never imports or calls anything.
    """
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                member = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return []
                with zf.open(member) as fh:
                    data = fh.read(1 << 24)  # a bounded read: the member may claim any size
        else:
            with path.open("rb") as fh:
                data = fh.read(1 << 24)  # the pickles come first; tensor bytes follow
    except Exception:  # noqa: BLE001 - only a diagnostic: the file is refused either way
        return []
    allowed = _allowed_globals()
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data) and not found:
        strings: list[str] = []  # recent string pushes: STACK_GLOBAL takes its module and name from them
        memo: dict[int, str | None] = {}
        last: str | None = None
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = last
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = last
                elif op.name in ("GET", "BINGET", "LONG_BINGET") and memo.get(int(arg)):
                    strings.append(memo[int(arg)])  # type: ignore[arg-type]
                is_text = "UNICODE" in op.name or op.name.endswith("STRING")
                last = arg if is_text and isinstance(arg, str) else None
                if last is not None:
                    strings.append(last)
        except Exception:  # noqa: BLE001 - the end of the pickles (tensor bytes), or damage
            break
        found = [g for g in found if g not in allowed]
    return found


def _allowed_globals() -> set[str]:
    """What ``torch.load(weights_only=True)`` accepts (torch's private list; empty if it moved)."""
    try:
        from torch import _weights_only_unpickler

        return set(_weights_only_unpickler._get_allowed_globals())
    except Exception:  # noqa: BLE001
        return set()


def _unwrap_state_dict(path: Path, obj: Any) -> dict[str, Any]:
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise BadInput(f"{path} is a PyTorch file but not a state dict of tensors (found {type(obj).__name__}).")


def load_torchscript(path: Path, trusted: bool, input_shape: tuple[int, ...] | None) -> LoadedModel:
    import torch

    if not trusted:
        raise BadInput(
            f"{path} is a TorchScript archive, which contains code that would run on this machine; "
            f"open it only if you trust it (--trust {path})."
        )
    _check_zip_sizes(path)  # trusted code is still no licence to inflate a bomb
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # its deprecation notice is not the user's business
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise BadInput(f"{path} could not be loaded as TorchScript ({_first_line(exc)}).") from None
    module.eval()
    return _torch_loaded(path, ModelFormat.TORCHSCRIPT, module, input_shape, None)


def load_torch_export(path: Path, trusted: bool, input_shape: tuple[int, ...] | None) -> LoadedModel:
    import torch

    if not trusted:
        raise BadInput(
            f"{path} is a torch.export program, which can carry code and custom ops; "
            f"open it only if you trust it (--trust {path})."
        )
    _check_zip_sizes(path)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadInput(f"{path} could not be loaded as a torch.export program ({_first_line(exc)}).") from None
    module = program.module()
    named = _exported_named_inputs(path, program, module)
    if named is not None:
        return named
    exported_shape = _exported_input_shape(program)
    shape = input_shape
    if shape is None and exported_shape is not None:
        shape = tuple(d if isinstance(d, int) else 1 for d in exported_shape)
    notes = []
    if exported_shape and isinstance(exported_shape[0], int):
        # The program guards its batch size: other batches run as chunks of that size.
        module = fixed_batch_module(module, exported_shape[0])
        notes.append(
            f"the exported program fixes its batch at {exported_shape[0]}: larger batches run "
            f"{exported_shape[0]} sample(s) at a time"
        )
    loaded = _torch_loaded(path, ModelFormat.TORCH_EXPORT, module, shape, None)
    loaded.notes.extend(notes)
    return loaded


def _exported_named_inputs(path: Path, program: Any, module: Any) -> LoadedModel | None:
    """A torch.export program with several user inputs or integer ones (token ids, masks): its inputs as the
    program records them (names, dtypes, symbolic dimensions, the embedding's rows for ids) and its outputs
    from one run on the program's own example inputs; None for a program with one float input."""
    import torch

    from core.models.dims import readable_shape

    names = list(program.graph_signature.user_inputs)
    vals = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    metas = [vals.get(name) for name in names]
    if len(names) < 2 and not any(getattr(m, "dtype", None) in (torch.int64, torch.int32) for m in metas):
        return None
    vocab = _exported_vocab(program, set(names))
    inputs = []
    for name, meta in zip(names, metas, strict=True):
        if meta is None:
            raise BadInput(f"{path}: the exported program does not record the shape of its input '{name}'.")
        dims = tuple(d if isinstance(d, int) else str(d) for d in meta.shape)
        dims = ("batch", *dims[1:]) if dims and not isinstance(dims[0], int) else dims
        inputs.append(TensorInfo(name, readable_shape(dims), str(meta.dtype).removeprefix("torch."), vocab.get(name)))
    example = getattr(program, "example_inputs", None)
    args = example[0] if isinstance(example, tuple) and example and example[0] else None
    if args is None:
        raise BadInput(f"{path}: the exported program keeps no example inputs to learn its outputs from.")
    try:
        with torch.inference_mode():
            out = module(*args)
    except Exception as exc:
        raise BadInput(f"{path} does not run on its own example inputs ({_first_line(exc)}).") from None
    outs = list(out.items()) if isinstance(out, dict) else (
        [(f"output{i}", o) for i, o in enumerate(out)] if isinstance(out, (tuple, list)) else [("output", out)])
    outputs = [TensorInfo(str(n), ("batch", *tuple(int(d) for d in o.shape[1:])), str(o.dtype).removeprefix("torch."))
               for n, o in outs if hasattr(o, "shape")]
    params = sum(int(p.numel()) for p in module.parameters())
    return LoadedModel(path=path, format=ModelFormat.TORCH_EXPORT, inputs=inputs, outputs=outputs, params=params,
                       file_bytes=path.stat().st_size, handle=module,
                       notes=[f"{len(inputs)} inputs: {', '.join(t.describe() for t in inputs)}"])


def _exported_vocab(program: Any, user_inputs: set[str]) -> dict[str, int]:
    """For each user input that an ``aten.embedding`` reads as indices, the rows of its table."""
    import torch

    vocab: dict[str, int] = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target is not torch.ops.aten.embedding.default:
            continue
        weight, indices = node.args[0], node.args[1]
        while getattr(indices, "op", None) == "call_function" and indices.args:  # through casts and views
            indices = indices.args[0]
        shape = getattr(weight.meta.get("val"), "shape", None) if hasattr(weight, "meta") else None
        if getattr(indices, "name", None) in user_inputs and shape is not None and len(shape) == 2:
            vocab[indices.name] = int(shape[0])
    return vocab


def _exported_input_shape(program: Any) -> tuple[int | str, ...] | None:
    """The first user input's shape in an ExportedProgram: ints where static, names where symbolic."""
    user_inputs = list(program.graph_signature.user_inputs)
    if not user_inputs:
        return None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == user_inputs[0]:
            val = node.meta.get("val")
            shape = getattr(val, "shape", None)
            if shape is None:
                return None
            from core.models.dims import readable_shape

            return readable_shape(tuple(d if isinstance(d, int) else str(d) for d in shape))  # type: ignore[return-value]
    return None


def fixed_batch_module(module: Any, batch: int) -> Any:
    """Wrap ``module`` so any batch runs as chunks of ``batch`` (the last one zero-padded)."""
    return _fixed_batch_class()(module, batch)


@functools.cache
def _fixed_batch_class() -> type:
    import torch

    class FixedBatch(torch.nn.Module):
        """Runs a module whose batch size is fixed on batches of any size, chunk by chunk."""

        def __init__(self, inner: torch.nn.Module, batch: int) -> None:
            super().__init__()
            self.inner = inner
            self.batch = batch

        def forward(self, x: torch.Tensor) -> Any:
            n = x.shape[0]
            if n == self.batch:
                return self.inner(x)
            outs = []
            for start in range(0, n, self.batch):
                part = x[start : start + self.batch]
                short = self.batch - part.shape[0]
                if short:
                    part = torch.cat([part, part.new_zeros((short, *part.shape[1:]))])
                out = self.inner(part)
                outs.append(_trim(out, self.batch - short))
            return _concat(outs)

    return FixedBatch


def _trim(out: Any, n: int) -> Any:
    if isinstance(out, (tuple, list)):
        return type(out)(_trim(o, n) for o in out)
    if isinstance(out, dict):
        return {k: _trim(v, n) for k, v in out.items()}
    return out[:n]


def _concat(outs: list[Any]) -> Any:
    import torch

    first = outs[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([o[i] for o in outs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _concat([o[k] for o in outs]) for k in first}
    return torch.cat(outs)


def load_torchvision(name: str, input_shape: tuple[int, ...] | None) -> LoadedModel:
    """``torchvision:NAME`` without a weights file: pretrained weights from the local cache, else untrained.

    Nothing is downloaded. An untrained network is labelled so: its latency and size are
    real, its accuracy means nothing.
    """
    import torch

    from core.models.architectures import build_architecture, cached_pretrained_weights, default_input_shape

    arch = name.strip()
    cached = cached_pretrained_weights(arch)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same untrained weights every run, so studies compare
        module = build_architecture(arch)
    shape = tuple(input_shape) if input_shape else default_input_shape(arch)
    if cached is not None:
        weights_name, weights_path = cached
        state = _unwrap_state_dict(weights_path, safe_torch_load(weights_path))
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BadInput(f"{weights_path} (cached {weights_name}) does not fit {arch}: {_first_line(exc)}.") from None
        module.eval()
        loaded = _torch_loaded(weights_path, ModelFormat.TORCH_STATE_DICT, module, shape, arch)
        loaded.notes.append(f"pretrained weights {weights_name} from the local torch cache ({weights_path})")
        return loaded
    module.eval()
    loaded = _torch_loaded(
        Path(arch), ModelFormat.TORCH_STATE_DICT, module, shape, arch, file_bytes=serialized_size(module.state_dict())
    )
    loaded.notes.insert(0, UNTRAINED_NOTE)
    loaded.notes.append(
        "randomly initialised (seed 0): no weights file was given and no pretrained weights are in the local "
        "torch cache; give a state dict with --model FILE --arch " + arch
    )
    return loaded


def serialized_size(obj: Any) -> int:
    """Bytes ``torch.save`` would write for ``obj``, counted without keeping them."""
    import torch

    class _Counter:
        def __init__(self) -> None:
            self.n = 0

        def write(self, data: bytes) -> int:
            self.n += len(data)
            return len(data)

        def flush(self) -> None:
            return None

    sink = _Counter()
    torch.save(obj, sink)  # type: ignore[arg-type]
    return sink.n


def _torch_loaded(
    path: Path,
    fmt: ModelFormat,
    module: Any,
    input_shape: tuple[int, ...] | None,
    arch: str | None,
    file_bytes: int | None = None,
) -> LoadedModel:
    import torch

    params = sum(int(p.numel()) for p in module.parameters())
    signature = _token_signature(path, module, input_shape)
    if signature is not None:
        inputs, outputs = signature
        return LoadedModel(
            path=path, format=fmt, inputs=inputs, outputs=outputs, params=params,
            file_bytes=path.stat().st_size if file_bytes is None else file_bytes, handle=module, arch=arch,
            notes=[f"{len(inputs)} inputs: {', '.join(t.describe() for t in inputs)}"],
        )
    if input_shape is None:
        inputs = [TensorInfo("input", ("batch",), "float32")]
        outputs = [TensorInfo("output", ("batch",), "float32")]
        notes = ["input shape unknown: give --input-shape or a dataset that sets it"]
    else:
        sample = tuple(input_shape)
        batch_shape: tuple[int | str | None, ...] = ("batch", *sample[1:])
        inputs = [TensorInfo("input", batch_shape, "float32")]
        try:
            with torch.inference_mode():
                out = module(torch.zeros((1, *sample[1:]), dtype=torch.float32))
        except Exception as exc:
            raise BadInput(f"{path} does not run on an input of shape {list(sample)} ({_first_line(exc)}).") from None
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = next(iter(out.values()))
        outputs = [TensorInfo("output", ("batch", *tuple(out.shape[1:])), "float32")]
        notes = []
    return LoadedModel(
        path=path,
        format=fmt,
        inputs=inputs,
        outputs=outputs,
        params=params,
        file_bytes=path.stat().st_size if file_bytes is None else file_bytes,
        handle=module,
        arch=arch,
        notes=notes,
    )


#: Tokens per sample the signature of a token model is probed with, when its sequence length is not given.
PROBE_SEQUENCE = 8


def _token_signature(
    path: Path, module: Any, input_shape: tuple[int, ...] | None
) -> tuple[list[TensorInfo], list[TensorInfo]] | None:
    """The inputs and outputs of a model over tokens (an embedding table, several forward arguments), found by
    running it once on a short sequence; None for any other model (its one input is described as before).

    Inputs are named as the forward arguments; ids and masks are int64 (ids within the embedding's rows,
    masks all ones); several outputs are named by their dict keys, or ``output0``, ``output1``, ...
    """
    import torch

    from core.models.io_spec import is_mask_name, is_type_ids_name, torch_forward_args, torch_vocab_size

    args = torch_forward_args(module)
    vocab = torch_vocab_size(module)
    if vocab is None or not args or (len(args) == 1 and input_shape is not None and len(input_shape) != 2):
        return None
    seq = int(input_shape[1]) if input_shape is not None and len(input_shape) >= 2 else None
    length = seq or PROBE_SEQUENCE
    inputs = [
        TensorInfo(a, ("batch", seq or "sequence"), "int64",
                   None if is_mask_name(a) or is_type_ids_name(a) else vocab)
        for a in args
    ]
    probe = [(torch.ones if is_mask_name(a) else torch.zeros)((1, length), dtype=torch.int64) for a in args]
    try:
        with torch.inference_mode():
            out = module(*probe)
    except Exception as exc:
        raise BadInput(
            f"{path} does not run on {len(args)} token input(s) ({', '.join(args)}) of {length} tokens "
            f"({_first_line(exc)})."
        ) from None
    if isinstance(out, dict):
        named = list(out.items())
    elif isinstance(out, (tuple, list)):
        named = [(f"output{i}", o) for i, o in enumerate(out)]
    else:
        named = [("output", out)]
    outputs = []
    for name, tensor in named:
        if not hasattr(tensor, "shape"):
            continue
        dims: tuple[int | str | None, ...] = tuple(
            "sequence" if seq is None and i == 1 and d == length else int(d) for i, d in enumerate(tensor.shape)
        )
        dtype = str(tensor.dtype).removeprefix("torch.")
        outputs.append(TensorInfo(str(name), ("batch", *dims[1:]), dtype))
    return inputs, outputs


def _first_line(exc: BaseException) -> str:
    import re

    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    # PyTorch's C++ reader wraps the reason in "[enforce fail at file:line] ." and appends advice.
    line = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text[0])
    for noise in (". This is an internal miniz error", "  (Could this error message be improved?"):
        line = line.split(noise)[0]
    return line.strip().rstrip(".")[:200] or type(exc).__name__


#: aten ops that do a layer's arithmetic in float, and the int8 kernels that replace them.
_FLOAT_COMPUTE_OPS = (
    "conv1d", "conv2d", "conv3d", "convolution", "conv_transpose", "linear", "addmm", "mm", "bmm", "matmul", "lstm",
    "gru",
)
_INT_COMPUTE_PREFIXES = ("quantized.conv", "quantized.linear", "onednn.qconv", "onednn.qlinear", "quantized.matmul")


def exported_graph_coverage(module: Any) -> dict[str, Any]:
    """What the graph of a torch.export program computes in: float or int8 kernels, and q/dq conversions.

    Counted on the call_function nodes of every GraphModule inside ``module`` (an exported
    program's ``module()``, possibly wrapped for a fixed batch), which is what runs.
    """
    import torch

    ops: dict[str, int] = {}
    for sub in module.modules():
        if isinstance(sub, torch.fx.GraphModule):
            for node in sub.graph.nodes:
                if node.op == "call_function":
                    target = str(node.target)
                    # "aten.conv2d.default" -> "conv2d"; other namespaces keep their full name.
                    name = target.removeprefix("aten.").rsplit(".", 1)[0] if target.startswith("aten.") else target
                    ops[name] = ops.get(name, 0) + 1
    integer = sum(v for k, v in ops.items() if k.startswith(_INT_COMPUTE_PREFIXES))
    floats = sum(v for k, v in ops.items() if k in _FLOAT_COMPUTE_OPS)
    conversions = sum(v for k, v in ops.items() if "quantize_per" in k or "dequantize" in k)
    total = integer + floats
    if integer:
        summary = f"{integer} of {total} conv/linear/matmul ops as int8 kernels"
    elif total:
        summary = f"all {total} conv/linear/matmul ops in float"
    else:
        summary = "no conv/linear/matmul ops in the graph"
    if conversions:
        summary += f"; {conversions} quantize/dequantize ops"
    return {
        "summary": summary,
        "graph": "torch.export graph (call_function nodes)",
        "ops": dict(sorted(ops.items())),
        "integer_compute_ops": integer,
        "float_compute_ops": floats,
        "conversions": conversions,
        "quantized_layers": integer,
        "float_layers": floats,
        "integer_fraction": integer / total if total else None,
    }
