"""Reading a scheme's ``key=value`` parameters, with one clear sentence for a bad value."""

from __future__ import annotations

from core.errors import BadInput
from core.schemes.base import SchemeInfo, SchemeParam
from core.study.spec import SchemeSpec


def check_params(spec: SchemeSpec, info: SchemeInfo) -> None:
    """BadInput for a parameter the scheme does not know, or a value it cannot take (``param_problem``)."""
    known = {p.name: p for p in info.params}
    keys = [key for key, _ in spec.params]
    twice = next((key for key in keys if keys.count(key) > 1), None)
    if twice is not None:
        raise BadInput(f"scheme {spec.label}: {twice} is given more than once; give it one value.")
    for key, value in spec.params:
        if key not in known:
            raise BadInput(f"scheme {spec.label}: unknown parameter {key!r} (known: {', '.join(known) or 'none'}).")
        problem = param_problem(known[key], value)
        if problem:
            raise BadInput(f"scheme {spec.label}: {problem}.")


def param_problem(param: SchemeParam, value: str) -> str | None:
    """Why ``value`` cannot be ``param``'s value ("sparsity must be …, not '2'"), or None when it can: one of
    its choices, a whole number above 0 for a count, a number in (0, upper] for a fraction."""
    if param.choices:
        if value not in param.choices:
            return f"{param.name} must be one of {', '.join(param.choices)}, not {value!r}"
    elif param.kind == "count":
        try:
            number = int(value)
        except ValueError:
            return f"{param.name} must be a whole number, not {value!r}"
        if number <= 0:
            return f"{param.name} must be positive, not {number}"
    elif param.kind == "fraction":
        try:
            fraction = float(value)
        except ValueError:
            fraction = float("nan")
        if not 0.0 < fraction <= param.upper:  # nan included
            return f"{param.name} must be a number above 0 and at most {param.upper:g}, not {value!r}"
    return None


def number_param(spec: SchemeSpec, info: SchemeInfo, key: str) -> int | float:
    """The value of ``info``'s count or fraction parameter ``key`` in ``spec`` (its default when not given):
    an int for a count; BadInput names the scheme and the option when the value is not one."""
    param = next(p for p in info.params if p.name == key)
    text = spec.param(key, param.default) or param.default
    problem = param_problem(param, text)
    if problem:
        raise BadInput(f"scheme {spec.label}: {problem}.")
    return int(text) if param.kind == "count" else float(text)


def bool_param(spec: SchemeSpec, key: str, default: bool) -> bool:
    value = spec.param(key)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"scheme {spec.label}: {key} must be true or false, not {value!r}.")
