"""Building blocks of the gateway models: the base class and constrained field types.

Limits are the gateway reference's where it gives them (text 4096, captions and bodies
1024, button titles 20, ids 256) and Meta's published limits where the reference is
silent (header and footer 60, list rows 24/72). A value that breaks one is refused with
the field's gateway name and the rule.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from config.phone import normalize_e164


class GatewayModel(BaseModel):
    """Frozen, strict about unknown fields, JSON names as the gateway spells them.

    Python code uses snake_case names (``from_phone_no``); the gateway's camelCase
    (``fromPhoneNo``) is the alias used for input from JSON and for output.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        str_strip_whitespace=False,
    )

    def to_gateway(self) -> dict[str, Any]:
        """The JSON body the gateway expects: aliases, and no fields left unset."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _e164(value: str) -> str:
    return normalize_e164(value)


def _https_url(value: str) -> str:
    if not re.fullmatch(r"https://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?", value):
        raise ValueError("must be a public https:// URL")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


E164 = Annotated[str, AfterValidator(_e164)]
"""A phone number in E.164, stored as ``+<digits>``."""

HttpsUrl = Annotated[str, Field(max_length=2048), AfterValidator(_https_url)]


_NotBlank = AfterValidator(_not_blank)
Body4096 = Annotated[str, Field(min_length=1, max_length=4096), _NotBlank]
Body1024 = Annotated[str, Field(min_length=1, max_length=1024), _NotBlank]
HeaderText = Annotated[str, Field(min_length=1, max_length=60), _NotBlank]
FooterText = HeaderText
ButtonTitle = Annotated[str, Field(min_length=1, max_length=20), _NotBlank]
RowTitle = Annotated[str, Field(min_length=1, max_length=24), _NotBlank]
Caption = Annotated[str, Field(max_length=1024)]
MediaId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^\S+$")]
WaMessageId = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]
SessionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")]
CountryCode = Annotated[str, Field(pattern=r"^\+?[1-9][0-9]{0,3}$")]
