"""A campaign is checked when it is created, not when it runs.

A broadcast that cannot send must say so to the person creating it, not become a
million silent refusals at fan-out time. Two checks:

- the message, as a send of its type: every ``{{variable}}`` is filled with a
  placeholder and the body is validated against the gateway's model; problems in the
  fields that hold a variable are left to the rows (a ``{{url}}`` placeholder is not a
  URL), everything else refuses the campaign with the field and the rule;
- each audience row, rendered as it will be sent (a missing or empty variable, a body
  the gateway would refuse with this row's values) and refused by line.
"""

from __future__ import annotations

from typing import Any

from dispatcher.campaigns.model import VARIABLE, CampaignSpec
from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.gateway.kinds import parse_send

PLACEHOLDER = "x"


def _variables_by_path(value: Any, path: str = "") -> dict[str, set[str]]:
    """The body's fields that hold variables: path (as problems name it) -> names."""
    found: dict[str, set[str]] = {}
    if isinstance(value, str):
        names = set(VARIABLE.findall(value))
        if names:
            found[path] = names
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_variables_by_path(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(_variables_by_path(item, f"{path}.{key}" if path else str(key)))
    return found


def _under_message(problem: FieldProblem) -> FieldProblem:
    """A problem of the gateway body, named as a field of the campaign spec."""
    if problem.field in ("channel", "type"):
        return FieldProblem(f"message.{problem.field}", problem.rule)
    if problem.field == "fromPhoneNo":
        return FieldProblem("fromPhoneNos", problem.rule)
    field = f"message.body.{problem.field}" if problem.field else "message.body"
    return FieldProblem(field, problem.rule)


class CampaignCheck:
    """The checks of one campaign's message and rows (the variables found once)."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.paths = _variables_by_path(spec.message.body)
        self.variables = sorted({name for names in self.paths.values() for name in names})

    def _parse(self, send: dict[str, Any]) -> None:
        parse_send(self.spec.message.channel, self.spec.message.type, send)

    def message(self) -> None:
        """Refuse (InvalidRequest, fields under ``message``) a message that cannot be a
        send of its type whatever the audience holds."""
        number = self.spec.numbers[0]
        sample = {**dict.fromkeys(self.variables, PLACEHOLDER), "to": number}
        try:
            self._parse(self.spec.send_for(sample, number))
        except InvalidRequest as exc:
            kept = [p for p in exc.problems if not self._from_a_variable(p)]
            if kept:
                raise InvalidRequest([_under_message(p) for p in kept]) from None

    def _from_a_variable(self, problem: FieldProblem) -> bool:
        return any(
            problem.field == path or problem.field.startswith((path + ".", path + "["))
            for path in self.paths
        )

    def row(self, row: dict[str, Any], number: str) -> str | None:
        """Why this audience row cannot be sent from ``number``, or None when it can."""
        for name in self.variables:
            if name not in row:
                return f"variable {name} is missing"
            value = row[name]
            if value is None or not str(value).strip():
                return f"variable {name} is empty"
        if not self.variables:
            return None  # the message was checked whole; 'to' was checked by the reader
        try:
            self._parse(self.spec.send_for(row, number))
        except InvalidRequest as exc:
            return str(exc)
        return None
