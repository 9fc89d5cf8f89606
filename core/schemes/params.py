"""Reading a scheme's ``key=value`` parameters, with one clear sentence for a bad value."""

from __future__ import annotations

from core.errors import BadInput
from core.schemes.base import SchemeInfo
from core.study.spec import SchemeSpec


def check_params(spec: SchemeSpec, info: SchemeInfo) -> None:
    """BadInput for a parameter the scheme does not know, or a value outside its choices."""
    known = {p.name: p for p in info.params}
    for key, value in spec.params:
        if key not in known:
            raise BadInput(f"scheme {spec.label}: unknown parameter {key!r} (known: {', '.join(known) or 'none'}).")
        choices = known[key].choices
        if choices and value not in choices:
            raise BadInput(f"scheme {spec.label}: {key} must be one of {', '.join(choices)}, not {value!r}.")


def bool_param(spec: SchemeSpec, key: str, default: bool) -> bool:
    value = spec.param(key)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"scheme {spec.label}: {key} must be true or false, not {value!r}.")


def positive_int(spec: SchemeSpec, key: str, default: int) -> int:
    value = spec.param(key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"scheme {spec.label}: {key} must be a whole number, not {value!r}.") from None
    if number <= 0:
        raise BadInput(f"scheme {spec.label}: {key} must be positive, not {number}.")
    return number
