"""Contact bodies: ``PATCH /contacts`` (update only), ``POST /contacts`` (upsert), and the
``contact`` object of the combined send."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, Field, model_validator

from dispatcher.gateway.fields import CountryCode, GatewayModel

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address such as name@example.com")
    return value


def _any_format_phone(value: str) -> str:
    digits = re.sub(r"[^0-9]", "", value)
    if not 6 <= len(digits) <= 15 or re.search(r"[^0-9 ()+.\-]", value):
        raise ValueError("must be a phone number (6-15 digits; spaces, dashes, dots allowed)")
    return value


def contact_digits(phone: str, country_code: str | None) -> str:
    """The contact's number as the gateway keys it: digits, with the country code
    (default +91, the gateway's) when the number has 10 digits or fewer."""
    digits = re.sub(r"[^0-9]", "", phone)
    if len(digits) <= 10:
        digits = (country_code or "+91").lstrip("+") + digits
    return digits


Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
AnyFormatPhone = Annotated[str, Field(max_length=32), AfterValidator(_any_format_phone)]


class ContactFields(GatewayModel):
    """The writable fields of a contact, with the gateway's snake_case names."""

    model_config = GatewayModel.model_config | {"alias_generator": None}

    first_name: Name | None = None
    last_name: Name | None = None
    profile_name: Name | None = None
    email: Email | None = None
    tags: tuple[Tag, ...] | None = Field(default=None, max_length=100)

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


class UpdateContact(GatewayModel):
    """``PATCH /contacts`` (4. Update Contact): only the fields in ``updates`` are written."""

    endpoint: ClassVar[str] = "/contacts"

    phone_number: AnyFormatPhone
    country_code: CountryCode | None = None
    updates: ContactFields = ContactFields()

    @model_validator(mode="after")
    def _something_to_update(self) -> Self:
        if self.updates.is_empty():
            raise ValueError("No updatable fields provided")
        return self


class UpsertContact(ContactFields):
    """``POST /contacts`` (create or update by phone number)."""

    endpoint: ClassVar[str] = "/contacts"

    phone_number: AnyFormatPhone = Field(alias="phoneNumber")
    country_code: CountryCode | None = Field(default=None, alias="countryCode")
