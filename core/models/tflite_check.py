"""Structural checks of a TFLite flatbuffer, made before the LiteRT interpreter sees it.

The interpreter trusts the indices a file holds. A tensor index out of range, a custom op
fed the wrong tensors, or a WHILE whose body is its own subgraph can crash the process
natively (a segfault no ``except`` catches) or recurse forever. So the file is walked with
the schema that ships with ai-edge-litert (``schema_py_generated``, the flatbuffer's own
field layout) and refused with a BadInput naming the file, the subgraph and the operator:

- every tensor index in operator inputs, outputs and intermediates is -1 (an absent optional
  tensor) or names a tensor of that subgraph, and every subgraph input and output names one;
- every operator's op code index names an entry of the op code table, and that entry is a
  builtin op this schema knows; custom ops are refused, even the few the interpreter bundles,
  because their kernels trust their inputs as blindly;
- every subgraph index in op options (WHILE, IF, CALL_ONCE, the StableHLO control ops) and
  in signature definitions names a subgraph, and no subgraph calls itself, directly or not.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from core.errors import BadInput

#: The index TFLite writes for an optional input that is left out.
OPTIONAL_TENSOR = -1


def check_tflite_structure(path: Path, model: Any, schema: Any) -> None:
    """Raise BadInput when ``model`` (a ``schema.Model``) holds an index or op the interpreter must not meet."""
    codes = [_op_code(schema, model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    known = set(_enum_names(schema.BuiltinOperator))
    subgraphs = model.SubgraphsLength()
    calls: dict[int, list[int]] = {}
    for s in range(subgraphs):
        sub = model.Subgraphs(s)
        tensors = sub.TensorsLength()
        # A subgraph's own inputs and outputs are real tensors: -1 is only for an operator's optional ones.
        _check_tensor_indices(path, f"subgraph {s}", "inputs", _ints(sub, "Inputs"), tensors, optional=False)
        _check_tensor_indices(path, f"subgraph {s}", "outputs", _ints(sub, "Outputs"), tensors, optional=False)
        calls[s] = []
        for o in range(sub.OperatorsLength()):
            op = sub.Operators(o)
            where = f"operator {o} of subgraph {s}"
            _check_op_code(path, where, op.OpcodeIndex(), codes, known)
            for role in ("Inputs", "Outputs", "Intermediates"):
                _check_tensor_indices(path, where, role.lower(), _ints(op, role), tensors)
            for target in _subgraph_refs(schema, op):
                if not 0 <= target < subgraphs:
                    raise BadInput(
                        f"{path}: {where} calls subgraph {target} but the file has {subgraphs} subgraph(s); "
                        "the file is malformed or hostile."
                    )
                calls[s].append(target)
    for i in range(model.SignatureDefsLength()):
        target = model.SignatureDefs(i).SubgraphIndex()
        if not 0 <= target < subgraphs:
            raise BadInput(f"{path}: signature {i} names subgraph {target} but the file has {subgraphs} subgraph(s).")
    cycle = _find_cycle(calls)
    if cycle:
        chain = " -> ".join(str(s) for s in cycle)
        raise BadInput(
            f"{path}: its subgraphs call each other in a cycle ({chain}), which the interpreter would follow forever."
        )


def _op_code(schema: Any, code: Any) -> tuple[int, str | None]:
    """An op code entry as (builtin code, custom name or None)."""
    # Codes above 127 live in BuiltinCode; older files only fill DeprecatedBuiltinCode.
    value = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    if value == schema.BuiltinOperator.CUSTOM:
        custom = code.CustomCode()
        return value, custom.decode("utf-8", "replace") if custom else ""
    return value, None


def _check_op_code(path: Path, where: str, index: int, codes: list[tuple[int, str | None]], known: set[int]) -> None:
    if not 0 <= index < len(codes):
        raise BadInput(f"{path}: {where} uses op code {index} but the file lists {len(codes)}; the file is malformed.")
    value, custom = codes[index]
    if custom is not None:
        raise BadInput(
            f"{path} uses the custom op {custom!r} ({where}); QuantBench runs TFLite models made of builtin ops only."
        )
    if value not in known:
        raise BadInput(f"{path}: {where} uses builtin op code {value}, which this LiteRT version does not know.")


def _check_tensor_indices(
    path: Path, where: str, role: str, indices: list[int], tensors: int, optional: bool = True
) -> None:
    for index in indices:
        if not (0 <= index < tensors or (optional and index == OPTIONAL_TENSOR)):
            valid = f"0 to {tensors - 1}" if tensors else "none"
            raise BadInput(
                f"{path}: {where} lists tensor {index} among its {role} but its tensors are numbered {valid}; "
                "the file is malformed or hostile."
            )


def _ints(table: Any, field: str) -> list[int]:
    """A vector of indices of a Subgraph or Operator table (an absent vector is empty)."""
    return [int(getattr(table, field)(j)) for j in range(getattr(table, f"{field}Length")())]


def _subgraph_refs(schema: Any, op: Any) -> list[int]:
    """Subgraph indices an operator's options name (WHILE's cond and body, IF's branches, ...).

    Found by field name in the generated option classes (``...SubgraphIndex``,
    ``...SubgraphIndices``, ``CallOptions.Subgraph``), so ops added to the schema later are
    covered without a list here to keep up to date.
    """
    refs: list[int] = []
    for enum, kind, table in (
        (schema.BuiltinOptions, op.BuiltinOptionsType(), op.BuiltinOptions()),
        (schema.BuiltinOptions2, op.BuiltinOptions2Type(), op.BuiltinOptions2()),
    ):
        cls = getattr(schema, _enum_names(enum).get(kind, ""), None)
        if table is None or cls is None:
            continue
        scalars, vectors = _ref_fields(cls)
        if not scalars and not vectors:
            continue
        options = cls()
        options.Init(table.Bytes, table.Pos)
        refs.extend(int(getattr(options, name)()) for name in scalars)
        for name in vectors:
            refs.extend(_ints(options, name))
    return refs


@functools.cache
def _ref_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of an options class's accessors that hold one subgraph index, and those that hold several."""
    names = [n for n in dir(cls) if not n.startswith("_")]
    scalars = tuple(n for n in names if n.endswith("SubgraphIndex") or n == "Subgraph")
    return scalars, tuple(n for n in names if n.endswith("SubgraphIndices"))


def _find_cycle(calls: dict[int, list[int]]) -> list[int] | None:
    """One cycle in the subgraph call graph as [a, b, ..., a], or None (iterative: a long chain must not overflow)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in calls:
        if state.get(start):
            continue
        path = [start]
        stack = [iter(calls[start])]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                return path[path.index(target):] + [target]
            elif not state.get(target):
                state[target] = 1
                path.append(target)
                stack.append(iter(calls.get(target, [])))
    return None


@functools.cache
def _enum_names(enum: type) -> dict[int, str]:
    """Value -> name of a generated enum class (cached: it is asked once per operator)."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}

