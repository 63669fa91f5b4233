"""E.164 checks agree with phonenumbers' own parse + is_possible_number."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from config.phone import normalize_e164


def reference(digits: str) -> bool:
    """Possible as an international number (a local-only length cannot be dialled in)."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    reason = phonenumbers.is_possible_number_with_reason(number)
    return bool(reason == phonenumbers.ValidationResult.IS_POSSIBLE)


def ours(digits: str) -> bool:
    try:
        return normalize_e164(digits) == "+" + digits
    except ValueError:
        return False


@settings(max_examples=3000)
@given(st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True))
def test_same_answer_as_phonenumbers(digits: str) -> None:
    """Equal, except where phonenumbers rewrote the digits after the country code
    (stripped a trunk prefix, applied a national transform rule): E.164 carries the
    number as dialled internationally, so we refuse those instead."""
    if ours(digits) != reference(digits):
        assert not ours(digits)
        number = phonenumbers.parse("+" + digits, None)
        national = digits[len(str(number.country_code)) :]
        assert phonenumbers.national_significant_number(number) != national


# Arabic-Indic, Tibetan and fullwidth digits: Unicode digits that are not ASCII.
@given(st.text(alphabet="0123456789\u0660\u0661\u0665\u0f22\uff15", min_size=7, max_size=15))
def test_only_ascii_digits_are_digits(text: str) -> None:
    if not text.isascii():
        assert not ours(text)
