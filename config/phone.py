"""E.164 phone numbers: the one rule shared by settings and the gateway models.

It lives in ``config`` because settings must validate the numbers a key is bound to
before anything else starts, and ``config`` may import nothing of ours.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_E164_SHAPE = re.compile(r"\+?[1-9][0-9]{6,14}")


@lru_cache(maxsize=1024)
def _possible_lengths(country_code: int) -> frozenset[int] | None:
    """National number lengths possible under a country calling code (None: unknown)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, regions[0]
    )
    if metadata is None or metadata.general_desc is None:
        return None
    return frozenset(metadata.general_desc.possible_length or ())


def _split_country_code(digits: str) -> tuple[int, str] | None:
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def country_calling_code(e164: str) -> int | None:
    """The country calling code of a number (``+919...`` -> 91), or None."""
    split = _split_country_code(e164.lstrip("+"))
    return split[0] if split else None


# Small on purpose: sending numbers repeat on every job and stay cached; recipients
# rarely repeat, and a 65,536-entry cache grew each worker by about 10 MB before it
# filled (seen as worker RSS climbing from 10k to 100k messages in bench/suite.py).
@lru_cache(maxsize=4096)
def normalize_e164(value: str) -> str:
    """Return ``value`` as ``+<digits>``, or raise ``ValueError`` saying which rule failed.

    The gateway accepts E.164 with or without the leading ``+`` (its own examples use
    both), so both are accepted here and stored in one canonical form, which is what
    queue names and ledger lookups rely on. The check is "possible number" (country code
    and length, from phonenumbers' metadata), not "valid number": fictional ranges such
    as +1 555 are still routable in test setups and the gateway, not us, knows which
    numbers exist. It reads the metadata directly because ``phonenumbers.parse`` costs
    tens of microseconds, and bulk enqueues check millions of numbers; a test holds the
    two to the same answers.

    The message does not repeat the value: phone numbers are personal data and error
    messages travel to logs and error reports.
    """
    text = value.strip()
    if not _E164_SHAPE.fullmatch(text):
        raise ValueError("must be an E.164 number (7-15 digits, optional leading '+', no spaces)")
    digits = text.lstrip("+")
    split = _split_country_code(digits)
    if split is None:
        raise ValueError("must start with a known country code")
    lengths = _possible_lengths(split[0])
    if lengths is None or len(split[1]) not in lengths:
        raise ValueError("must have a possible length for its country code")
    return "+" + digits
