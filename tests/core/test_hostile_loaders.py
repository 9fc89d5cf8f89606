"""Issue #12 (items 4 and 5): hostile files the loaders must refuse before any variant runs.

Each file is built here, in ``tmp_path``: ONNX graphs with ``onnx.helper``, TFLite files by
editing the flatbuffer of a real third-party model (the sine regressor in shared/data) with
the schema ai-edge-litert ships, datasets with numpy and Pillow. Every one must end as a
BadInput naming the file from ``load_model``/``load_dataset``, and a representative few
also through the real command: exit 2, one line on stderr, no traceback.

Some TFLite files here crash the LiteRT interpreter natively (a custom op fed the wrong
tensors segfaults while the interpreter is built), so their refusal must come from
QuantBench's own reading of the flatbuffer, before any interpreter exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.datasets import load_dataset
from core.errors import BadInput
from core.models import load_model
from core.models.loaded import TensorInfo
from core.study.spec import CALIBRATE_ON_SAME, DatasetKind, DatasetSpec, ModelSpec
from tests.shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
SINE = SHARED_DATA / "hello_world_float.tflite"
needs_sine = pytest.mark.skipif(not SINE.is_file(), reason="the shared TFLite sine model is not here")
#: What the dataset cases feed: the hand-written MLP of conftest (64 values in, 10 classes out).
MLP_INPUT = TensorInfo("x", ("batch", 64), "float32")


def refused_model(path: Path) -> str:
    """The BadInput message ``load_model`` gives for ``path``, checked to be one sentence naming it."""
    with pytest.raises(BadInput) as info:
        load_model(ModelSpec(path=str(path)))
    return _one_sentence(str(info.value), str(path))


def refused_dataset(spec: str, model_input: TensorInfo | None = MLP_INPUT) -> str:
    with pytest.raises(BadInput) as info:
        load_dataset(DatasetSpec.parse(spec), model_input)
    return _one_sentence(str(info.value), spec.split(":", 1)[1])


def _one_sentence(message: str, names: str) -> str:
    assert names in message, message
    assert "\n" not in message and message.endswith("."), message
    assert len(message) < 600, message
    return message


def run_cli(model: Path, dataset: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUANTBENCH_HOME": str(home)}
    args = ["--model", str(model), "--dataset", dataset, "--scheme", "fp32", "--quiet", "--max-time", "0.05",
            "--threads", "1"]
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "run", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )


def assert_exit_2_one_line(done: subprocess.CompletedProcess[str], names: str, expect: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("quantbench: ") and names in lines[0] and expect in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout


# ----------------------------------------------------------------------------- ONNX external data


def _mlp_with_external_entry(kit: SimpleNamespace, tmp: Path, key: str, value: str) -> Path:
    """The MLP with its weights in ``weights.bin``, tensor 'b1''s external ``key`` set to ``value``."""
    import onnx

    path = kit.make_mlp_onnx(tmp / "model" / "mlp.onnx", external_data="weights.bin")
    model = onnx.load(str(path), load_external_data=False)
    tensor = next(t for t in model.graph.initializer if t.name == "b1")
    entry = next((e for e in tensor.external_data if e.key == key), None) or tensor.external_data.add()
    entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("offset", "abc", "offset 'abc' of tensor 'b1' is not a whole number of bytes"),
        ("offset", "-8", "offset '-8' of tensor 'b1' is not a whole number of bytes"),
        ("length", "-4", "length '-4' of tensor 'b1' is not a whole number of bytes"),
        ("length", "1e3", "length '1e3' of tensor 'b1' is not a whole number of bytes"),
        ("length", "", "length '' of tensor 'b1' is not a whole number"),
        ("offset", " 12", "offset ' 12' of tensor 'b1' is not a whole number"),
        ("offset", "9" * 5000, "has 5000 digits"),
        ("length", "4", "length 4 of tensor 'b1' does not match the 128 bytes its dimensions need"),
    ],
    ids=["offset-word", "offset-negative", "length-negative", "length-float", "length-empty", "offset-space",
         "offset-5000-digits", "length-short"],
)
def test_external_data_offset_and_length_must_be_byte_counts(
    tmp_path: Path, kit: SimpleNamespace, key: str, value: str, expect: str
) -> None:
    path = _mlp_with_external_entry(kit, tmp_path, key, value)
    assert expect in refused_model(path)


def test_external_data_with_exact_offsets_and_lengths_still_loads(tmp_path: Path, kit: SimpleNamespace) -> None:
    path = _mlp_with_external_entry(kit, tmp_path, "length", "128")  # b1 is 32 floats
    assert load_model(ModelSpec(path=str(path))).params == 64 * 32 + 32 + 32 * 10


# ----------------------------------------------------------------------------- ONNX graphs


def _onnx(path: Path, graph: Any, opsets: list[tuple[str, int]] = (("", 17),), functions: list[Any] = ()) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions)
    )
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _function_model(path: Path, body_op: str, body_domain: str) -> Path:
    """x [batch, 4] -> f (a local function whose body is one ``body_op``) -> y."""
    from onnx import TensorProto, helper

    body = [helper.make_node(body_op, ["a"], ["b"], domain=body_domain)]
    opsets = [("", 17), ("local.fns", 1)] + ([(body_domain, 1)] if body_domain else [])
    function = helper.make_function(
        "local.fns", "f", ["a"], ["b"], body, [helper.make_opsetid(d, v) for d, v in opsets if d != "local.fns"]
    )
    graph = helper.make_graph(
        [helper.make_node("f", ["x"], ["y"], domain="local.fns")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    return _onnx(path, graph, opsets, [function])


def onnx_function_with_custom_op(tmp: Path) -> Path:
    return _function_model(tmp / "fn.onnx", "Foo", "com.example")


def onnx_string_input(tmp: Path) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["text"], ["y"], to=TensorProto.FLOAT)], "g",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    return _onnx(tmp / "text.onnx", graph)


def onnx_sequence_input(tmp: Path) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["seq", "pos"], ["y"])], "g",
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("pos", TensorProto.INT64, [], [0])],
    )
    return _onnx(tmp / "seq.onnx", graph)


def onnx_map_input(tmp: Path) -> Path:
    from onnx import TensorProto, helper

    map_type = helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    graph = helper.make_graph(
        [helper.make_node("DictVectorizer", ["features"], ["y"], domain="ai.onnx.ml", int64_vocabulary=[0, 1, 2, 3])],
        "g",
        [helper.make_value_info("features", map_type)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return _onnx(tmp / "map.onnx", graph, [("", 17), ("ai.onnx.ml", 3)])


def onnx_complex_input(tmp: Path) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["z"], ["y"])], "g",
        [helper.make_tensor_value_info("z", TensorProto.COMPLEX64, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.COMPLEX64, ["batch", 4])],
    )
    return _onnx(tmp / "complex.onnx", graph)


ONNX_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "function-custom-op": (
        onnx_function_with_custom_op,
        "uses operator 'Foo' from the custom domain 'com.example' (inside function 'f')",
    ),
    "string-input": (onnx_string_input, "input 'text' is a string tensor; QuantBench feeds numeric tensors only."),
    "sequence-input": (onnx_sequence_input, "input 'seq' is a sequence; QuantBench feeds numeric tensors only."),
    "map-input": (onnx_map_input, "input 'features' is a map; QuantBench feeds numeric tensors only."),
    "complex-input": (onnx_complex_input, "input 'z' is a COMPLEX64 tensor"),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_models_quantbench_cannot_run_are_refused_at_load(tmp_path: Path, case: str) -> None:
    build, expect = ONNX_CASES[case]
    assert expect in refused_model(build(tmp_path))


def test_a_local_function_of_standard_ops_still_loads_and_runs(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = _function_model(tmp_path / "relu_fn.onnx", "Relu", "")
    loaded = load_model(ModelSpec(path=str(path)))
    assert [i.name for i in loaded.inputs] == ["x"]
    x = np.array([[-1.0, 0.5, -2.0, 3.0]], dtype=np.float32)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0))


# ----------------------------------------------------------------------------- TFLite flatbuffers


def _sine() -> Any:
    """The real sine model as an editable object tree: 3 FULLY_CONNECTED ops over 10 tensors, 1 subgraph."""
    from ai_edge_litert import schema_py_generated as s

    return s.ModelT.InitFromPackedBuf(SINE.read_bytes(), 0)


def _save(model: Any, path: Path) -> Path:
    import flatbuffers

    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def _add_code(model: Any, builtin: int, custom: bytes | None = None) -> int:
    """Append an op code entry and return its index."""
    from ai_edge_litert import schema_py_generated as s

    code = s.OperatorCodeT()
    # The deprecated int8 field holds 127 (PLACEHOLDER_FOR_GREATER_OP_CODES) for codes past it.
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    code.customCode = custom
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _control_op(model: Any, builtin: int, options_type: int, options: Any, tensors: list[int]) -> Any:
    from ai_edge_litert import schema_py_generated as s

    op = s.OperatorT()
    op.opcodeIndex = _add_code(model, builtin)
    op.inputs, op.outputs = list(tensors), list(tensors)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _empty_subgraph(name: str) -> Any:
    from ai_edge_litert import schema_py_generated as s

    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = [], [], [], [], name
    return sub


def _call_once(model: Any, target: int) -> Any:
    from ai_edge_litert import schema_py_generated as s

    options = s.CallOnceOptionsT()
    options.initSubgraphIndex = target
    return _control_op(model, s.BuiltinOperator.CALL_ONCE, s.BuiltinOptions.CallOnceOptions, options, [])


def tflite_custom_op(name: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        from ai_edge_litert import schema_py_generated as s

        model = _sine()
        op = model.subgraphs[0].operators[1]
        op.opcodeIndex = _add_code(model, s.BuiltinOperator.CUSTOM, name)
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.NONE, None
        return _save(model, tmp / "custom.tflite")

    return build


def tflite_tensor_index(where: str, value: int) -> Callable[[Path], Path]:
    """The sine model with one tensor index replaced: an operator's first input or output, or the subgraph's."""

    def build(tmp: Path) -> Path:
        model = _sine()
        sub = model.subgraphs[0]
        owner, field = {
            "op-input": (sub.operators[1], "inputs"),
            "op-output": (sub.operators[2], "outputs"),
            "subgraph-input": (sub, "inputs"),
            "subgraph-output": (sub, "outputs"),
        }[where]
        indices = [int(i) for i in getattr(owner, field)]
        setattr(owner, field, [value, *indices[1:]])
        return _save(model, tmp / "index.tflite")

    return build


def tflite_opcode_out_of_range(tmp: Path) -> Path:
    model = _sine()
    model.subgraphs[0].operators[0].opcodeIndex = 7
    return _save(model, tmp / "opcode.tflite")


def tflite_while_on_itself(tmp: Path) -> Path:
    from ai_edge_litert import schema_py_generated as s

    model = _sine()
    options = s.WhileOptionsT()
    options.condSubgraphIndex = options.bodySubgraphIndex = 0
    model.subgraphs[0].operators.append(
        _control_op(model, s.BuiltinOperator.WHILE, s.BuiltinOptions.WhileOptions, options, [9])
    )
    return _save(model, tmp / "while.tflite")


def tflite_call_once_back_to_parent(tmp: Path) -> Path:
    """Subgraph 0 runs subgraph 1 once, and subgraph 1 runs subgraph 0 once: 0 -> 1 -> 0."""
    model = _sine()
    child = _empty_subgraph("init")
    model.subgraphs.append(child)
    model.subgraphs[0].operators.insert(0, _call_once(model, 1))
    child.operators.append(_call_once(model, 0))
    return _save(model, tmp / "callonce.tflite")


def tflite_if_to_a_missing_subgraph(tmp: Path) -> Path:
    from ai_edge_litert import schema_py_generated as s

    model = _sine()
    model.subgraphs.append(_empty_subgraph("then"))
    options = s.IfOptionsT()
    options.thenSubgraphIndex, options.elseSubgraphIndex = 1, 7
    if_op = _control_op(model, s.BuiltinOperator.IF, s.BuiltinOptions.IfOptions, options, [9])
    model.subgraphs[0].operators.append(if_op)
    return _save(model, tmp / "if.tflite")


TFLITE_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "custom-op": (
        tflite_custom_op(b"Foo"),
        "uses the custom op 'Foo' (operator 1 of subgraph 0); QuantBench runs TFLite models made of builtin ops only.",
    ),
    # A custom op the interpreter bundles: fed the sine model's tensors, it segfaults while the interpreter is built.
    "bundled-custom-op-that-crashes": (tflite_custom_op(b"Mfcc"), "uses the custom op 'Mfcc'"),
    "negative-op-input": (
        tflite_tensor_index("op-input", -5),
        "operator 1 of subgraph 0 lists tensor -5 among its inputs but its tensors are numbered 0 to 9",
    ),
    "op-output-past-the-end": (tflite_tensor_index("op-output", 10), "lists tensor 10 among its outputs"),
    "negative-subgraph-input": (
        tflite_tensor_index("subgraph-input", -3), "subgraph 0 lists tensor -3 among its inputs",
    ),
    "optional-subgraph-output": (
        tflite_tensor_index("subgraph-output", -1), "subgraph 0 lists tensor -1 among its outputs",
    ),
    "opcode-out-of-range": (
        tflite_opcode_out_of_range, "operator 0 of subgraph 0 uses op code 7 but the file lists 1",
    ),
    "while-on-itself": (tflite_while_on_itself, "its subgraphs call each other in a cycle (0 -> 0)"),
    "call-once-back-to-parent": (tflite_call_once_back_to_parent, "in a cycle (0 -> 1 -> 0)"),
    "if-to-a-missing-subgraph": (tflite_if_to_a_missing_subgraph, "calls subgraph 7 but the file has 2 subgraph(s)"),
}


@needs_sine
@pytest.mark.parametrize("case", list(TFLITE_CASES))
def test_hostile_tflite_files_are_refused_before_the_interpreter(tmp_path: Path, case: str) -> None:
    build, expect = TFLITE_CASES[case]
    assert expect in refused_model(build(tmp_path))


@needs_sine
def test_an_absent_optional_input_and_an_acyclic_call_still_load_and_run(tmp_path: Path) -> None:
    """-1 for an optional operator input, and a CALL_ONCE into another subgraph, are valid TFLite."""
    from ai_edge_litert.interpreter import Interpreter

    model = _sine()
    last = model.subgraphs[0].operators[2]
    last.inputs = [int(i) for i in last.inputs][:2] + [-1]  # FULLY_CONNECTED without its bias
    model.subgraphs.append(_empty_subgraph("init"))
    model.subgraphs[0].operators.insert(0, _call_once(model, 1))
    path = _save(model, tmp_path / "fine.tflite")

    loaded = load_model(ModelSpec(path=str(path)))

    assert loaded.inputs[0].shape == ("batch", 1)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([[1.0]], dtype=np.float32))
    interpreter.invoke()
    assert np.isfinite(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])).all()


# ----------------------------------------------------------------------------- image folders


def _png(path: Path, value: int = 100) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)
    return path


def folder_with_a_dangling_class_link(tmp: Path) -> Path:
    _png(tmp / "data" / "cat" / "a.png")
    (tmp / "data" / "dog").symlink_to(tmp / "gone")
    return tmp / "data"


def folder_with_a_class_link_loop(tmp: Path) -> Path:
    _png(tmp / "data" / "cat" / "a.png")
    (tmp / "data" / "dog").symlink_to(tmp / "data" / "dog")
    return tmp / "data"


def folder_with_a_dangling_image_link(tmp: Path) -> Path:
    _png(tmp / "data" / "cat" / "a.png")
    _png(tmp / "data" / "dog" / "b.png")
    (tmp / "data" / "dog" / "c.png").symlink_to(tmp / "gone.png")
    return tmp / "data"


FOLDER_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dangling-class-link": (folder_with_a_dangling_class_link, "'dog' is a symbolic link to"),
    "class-link-loop": (folder_with_a_class_link_loop, "'dog' is a symbolic link to"),
    "dangling-image-link": (folder_with_a_dangling_image_link, "'dog/c.png' is a symbolic link to"),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_a_folder_with_a_link_to_nowhere_is_refused(tmp_path: Path, case: str) -> None:
    build, expect = FOLDER_CASES[case]
    message = refused_dataset(f"folder:{build(tmp_path)}")
    assert expect in message
    assert message.endswith("which loops back on itself." if "loop" in case else "which does not exist.")


def test_a_class_folder_linked_from_outside_is_followed_like_linked_images(tmp_path: Path) -> None:
    _png(tmp_path / "data" / "cat" / "a.png", 10)
    _png(tmp_path / "elsewhere" / "b.png", 200)
    _png(tmp_path / "elsewhere" / "c.png", 200)
    (tmp_path / "data" / "dog").symlink_to(tmp_path / "elsewhere")
    _png(tmp_path / "outside.png", 200)
    (tmp_path / "data" / "cat" / "linked.png").symlink_to(tmp_path / "outside.png")

    # Every image kept (nothing held out for calibration): the folder is read as it is.
    ds = load_dataset(DatasetSpec(DatasetKind.FOLDER, str(tmp_path / "data"), calibration=CALIBRATE_ON_SAME), MLP_INPUT)

    assert ds.class_names == ["cat", "dog"]
    assert ds.y.tolist() == [0, 0, 1, 1]
    assert ds.x.shape == (4, 64)


# ----------------------------------------------------------------------------- float32 overflow


def test_npz_values_beyond_float32_are_counted_and_refused(tmp_path: Path) -> None:
    x = np.ones((5, 64))
    x[0, 0], x[1, 3], x[2, 5] = 1e39, -1e300, 3.5e38
    x[3, 1] = 3.4028235e38  # past float32's largest value, but the cast rounds it back to it: not counted
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(5) % 2)

    message = refused_dataset(f"npz:{tmp_path / 'data.npz'}")

    assert message.endswith("3 values of x are beyond float32's range (±3.4e38) and would become infinite."), message


def test_a_bare_npy_with_one_overflowing_value_is_refused_even_without_a_model(tmp_path: Path) -> None:
    x = np.zeros((4, 64))
    x[2, 7] = 1e100
    np.save(tmp_path / "one.npy", x)
    message = refused_dataset(f"npz:{tmp_path / 'one.npy'}", model_input=None)
    assert "1 value of x is beyond float32's range" in message


def test_float64_within_float32_range_still_loads_as_float32(tmp_path: Path) -> None:
    x = np.full((4, 64), 3.0e38)
    np.savez(tmp_path / "big.npz", x=x)
    ds = load_dataset(DatasetSpec.parse(f"npz:{tmp_path / 'big.npz'}"), MLP_INPUT)
    assert ds.x.dtype == np.float32 and np.isfinite(ds.x).all()


def test_csv_values_beyond_float32_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b,label\n1,2,0\n1e39,3,1\n", encoding="utf-8")
    assert "beyond the range of 32-bit floats" in refused_dataset(f"csv:{path}", model_input=None)


# ----------------------------------------------------------------------------- through the command


CLI_CASES = {
    "onnx-external-offset": "external data offset '-8'",
    "onnx-function-custom-op": "(inside function 'f')",
    "onnx-string-input": "is a string tensor",
    "tflite-custom-op": "uses the custom op 'Mfcc'",
    "tflite-negative-index": "lists tensor -5",
    "tflite-subgraph-cycle": "in a cycle (0 -> 1 -> 0)",
    "folder-dangling-class": "'dog' is a symbolic link to",
    "npz-overflow": "beyond float32's range",
}


def _cli_inputs(case: str, tmp: Path, kit: SimpleNamespace) -> tuple[Path, str, Path]:
    """(model, dataset, the file the message must name) for a command-line case."""
    mlp = kit.make_mlp_onnx(tmp / "fine" / "mlp.onnx")
    if case == "onnx-external-offset":
        path = _mlp_with_external_entry(kit, tmp, "offset", "-8")
        return path, "synthetic:4", path
    models = {
        "onnx-function-custom-op": onnx_function_with_custom_op,
        "onnx-string-input": onnx_string_input,
        "tflite-custom-op": tflite_custom_op(b"Mfcc"),
        "tflite-negative-index": tflite_tensor_index("op-input", -5),
        "tflite-subgraph-cycle": tflite_call_once_back_to_parent,
    }
    if case in models:
        path = models[case](tmp)
        return path, "synthetic:4", path
    if case == "folder-dangling-class":
        folder = folder_with_a_dangling_class_link(tmp)
        return mlp, f"folder:{folder}", folder
    x = np.ones((5, 64))
    x[0, 0] = 1e39
    np.savez(tmp / "data.npz", x=x)
    return mlp, f"npz:{tmp / 'data.npz'}", tmp / "data.npz"


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=(needs_sine,) if c.startswith("tflite") else ()) for c in CLI_CASES]
)
def test_the_command_exits_2_with_one_line(tmp_path: Path, kit: SimpleNamespace, case: str) -> None:
    work = tmp_path / "case"
    work.mkdir()
    model, dataset, names = _cli_inputs(case, work, kit)

    done = run_cli(model, dataset, tmp_path / "home")

    assert_exit_2_one_line(done, str(names), CLI_CASES[case])
