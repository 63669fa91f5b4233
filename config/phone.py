"""E.164 phone numbers: the one rule shared by settings and the gateway models.

It lives in ``config`` because settings must validate the numbers a key is bound to
before anything else starts, and ``config`` may import nothing of ours.
"""

from __future__ import annotations

import re

import phonenumbers

_E164_SHAPE = re.compile(r"\+?[1-9]\d{6,14}")


def normalize_e164(value: str) -> str:
    """Return ``value`` as ``+<digits>``, or raise ``ValueError`` saying which rule failed.

    The message does not repeat the value: phone numbers are personal data and error
    messages travel to logs and error reports.

    The gateway accepts E.164 with or without the leading ``+`` (its own examples use
    both), so both are accepted here and stored in one canonical form, which is what
    queue names and ledger lookups rely on. The check is "possible number" (country code
    and length), not "valid number": fictional ranges such as +1 555 are still routable
    in test setups and the gateway, not us, knows which numbers exist.
    """
    text = value.strip()
    if not _E164_SHAPE.fullmatch(text):
        raise ValueError("must be an E.164 number (7-15 digits, optional leading '+', no spaces)")
    digits = text.lstrip("+")
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must start with a known country code") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("must have a possible length for its country code")
    return "+" + digits
