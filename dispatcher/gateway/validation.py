"""Turn pydantic's errors into the project's InvalidRequest: the field, and the rule.

Messages read like the gateway's own (``buttons must be 1-3 items``): the field by its
gateway name, then a rule in plain words. The input value is never echoed, so a
refused secret or message body cannot leak through an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dispatcher.errors import FieldProblem, InvalidRequest

M = TypeVar("M", bound=BaseModel)


def _num(value: Any) -> str:
    """90.0 -> "90", 0.5 -> "0.5": bounds as a person writes them."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# Errors whose rule is fixed, by what the field must be.
_MUST_BE: dict[str, tuple[str, ...]] = {
    "a string": ("string_type",),
    "valid unicode (no lone surrogates)": ("string_unicode",),
    "true or false": ("bool_type", "bool_parsing"),
    "an integer": ("int_type", "int_parsing"),
    "a number": ("float_type", "float_parsing"),
    "a finite number": ("finite_number",),
    "a list": ("list_type", "tuple_type"),
    "an object": ("dict_type", "model_type", "model_attributes_type"),
    "an ISO 8601 date-time": ("datetime_parsing", "datetime_type", "datetime_from_date_parsing"),
}

# Errors about a bound: the words before it, and the context key that holds it.
_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("greater than", "gt"),
    "less_than": ("less than", "lt"),
}


def _length(c: Mapping[str, Any], bound: str, unit: str) -> str:
    """``min_length`` 2 of characters -> "at least 2 characters"."""
    n = c[f"{bound}_length"]
    return f"{'at least' if bound == 'min' else 'at most'} {_plural(n, unit)}"


def _must_be(what: str, c: Mapping[str, Any]) -> str:
    return f"must be {what}"


def _bound(words: str, key: str, c: Mapping[str, Any]) -> str:
    return f"must be {words} {_num(c[key])}"


# Errors whose rule reads the error's context.
_RULES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda c: "is required",
    "extra_forbidden": lambda c: "is not a field of this request",
    "string_too_short": lambda c: (
        "must not be empty"
        if c.get("min_length") == 1
        else f"must be {_length(c, 'min', 'character')}"
    ),
    "string_too_long": lambda c: f"must be {_length(c, 'max', 'character')}",
    "too_short": lambda c: f"must have {_length(c, 'min', 'item')}",
    "too_long": lambda c: f"must have {_length(c, 'max', 'item')}",
    "string_pattern_mismatch": lambda c: f"must match {c['pattern']}",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    "enum": lambda c: f"must be one of {c['expected']}",
    "timezone_aware": lambda c: "must carry a time zone",
    **{kind: partial(_must_be, what) for what, kinds in _MUST_BE.items() for kind in kinds},
    **{kind: partial(_bound, *words_and_key) for kind, words_and_key in _BOUNDS.items()},
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(part)
    return "".join(parts)


def _rule(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    render = _RULES.get(kind)
    if render is not None:
        try:
            return render(error.get("ctx") or {})
        except KeyError:
            pass
    return str(error["msg"])


def problems_of(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """One FieldProblem per pydantic error, tagged-union noise removed."""
    problems: list[FieldProblem] = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        name = _field_name(loc)
        if prefix:
            name = f"{prefix}.{name}" if name else prefix
        problem = FieldProblem(field=name, rule=_rule(error))
        if problem not in problems:
            problems.append(problem)
    return problems


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` (a mapping in the gateway's JSON shape) or raise InvalidRequest."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc, prefix)
    # Outside the except block, so pydantic's error (which holds the input, message
    # bodies included) is not chained as __context__ into logs or error reports.
    raise InvalidRequest(problems)
