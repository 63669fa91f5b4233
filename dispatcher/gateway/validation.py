"""Turn pydantic's errors into the project's InvalidRequest: the field, and the rule.

Messages read like the gateway's own (``buttons must be 1-3 items``): the field by its
gateway name, then a rule in plain words. The input value is never echoed, so a
refused secret or message body cannot leak through an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


_RULES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda c: "is required",
    "extra_forbidden": lambda c: "is not a field of this request",
    "string_too_short": lambda c: (
        "must not be empty"
        if c.get("min_length") == 1
        else f"must be at least {_plural(c['min_length'], 'character')}"
    ),
    "string_too_long": lambda c: f"must be at most {_plural(c['max_length'], 'character')}",
    "too_short": lambda c: f"must have at least {_plural(c['min_length'], 'item')}",
    "too_long": lambda c: f"must have at most {_plural(c['max_length'], 'item')}",
    "string_pattern_mismatch": lambda c: f"must match {c['pattern']}",
    "string_type": lambda c: "must be a string",
    "string_unicode": lambda c: "must be valid unicode (no lone surrogates)",
    "bool_type": lambda c: "must be true or false",
    "bool_parsing": lambda c: "must be true or false",
    "int_type": lambda c: "must be an integer",
    "int_parsing": lambda c: "must be an integer",
    "float_type": lambda c: "must be a number",
    "float_parsing": lambda c: "must be a number",
    "list_type": lambda c: "must be a list",
    "tuple_type": lambda c: "must be a list",
    "dict_type": lambda c: "must be an object",
    "model_type": lambda c: "must be an object",
    "model_attributes_type": lambda c: "must be an object",
    "greater_than_equal": lambda c: f"must be at least {_num(c['ge'])}",
    "less_than_equal": lambda c: f"must be at most {_num(c['le'])}",
    "greater_than": lambda c: f"must be greater than {_num(c['gt'])}",
    "less_than": lambda c: f"must be less than {_num(c['lt'])}",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    "enum": lambda c: f"must be one of {c['expected']}",
    "finite_number": lambda c: "must be a finite number",
    "datetime_parsing": lambda c: "must be an ISO 8601 date-time",
    "datetime_type": lambda c: "must be an ISO 8601 date-time",
    "datetime_from_date_parsing": lambda c: "must be an ISO 8601 date-time",
    "timezone_aware": lambda c: "must carry a time zone",
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
