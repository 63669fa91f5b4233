"""The gateway models refuse what the gateway refuses, naming the field and the rule.

Tables for the documented limits, and hypothesis properties: generated valid requests
round-trip through the gateway JSON; generated violations are refused with the field.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dispatcher.errors import InvalidRequest
from dispatcher.gateway import CLOUD_KINDS, QR_KINDS, parse_send, request_model
from dispatcher.gateway.contacts import UpdateContact
from dispatcher.gateway.validation import parse
from dispatcher.job.envelope import JobEnvelope

ENV = {"to": "917890000198", "fromPhoneNo": "+917890000199"}
E164 = st.from_regex(r"\+?(1[2-9][0-9]{9}|44[1-9][0-9]{9}|91[6-9][0-9]{9})", fullmatch=True)
NOT_E164 = st.one_of(
    st.from_regex(r"\+?[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"\+?[0-9]{16,20}", fullmatch=True),
    st.from_regex(r"\+?0[0-9]{8,12}", fullmatch=True),
    st.text(alphabet=string.ascii_letters + " -()", min_size=1, max_size=15),
    st.from_regex(r"\+[0-9]{3} [0-9]{3} [0-9]{4}", fullmatch=True),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50).filter(
    lambda s: s.strip()
)


def refused(channel: str, kind: str, body: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        parse_send(channel, kind, body)
    return [str(p) for p in caught.value.problems]


# --- tables -----------------------------------------------------------------------------

TABLE = [
    ("text", {"body": "x" * 4097}, "body must be at most 4096 characters"),
    ("text", {"body": ""}, "body must not be empty"),
    ("text", {"body": "   "}, "body must not be blank"),
    ("text", {}, "body is required"),
    ("text", {"body": "hi", "bogus": 1}, "bogus is not a field of this request"),
    ("text", {"body": "hi", "previewUrl": "maybe"}, "previewUrl must be true or false"),
    ("buttons", {"bodyText": "b", "buttons": []}, "buttons must be 1-3 items"),
    (
        "buttons",
        {"bodyText": "b", "buttons": [{"id": str(i), "title": "t"} for i in range(4)]},
        "buttons must be 1-3 items",
    ),
    (
        "buttons",
        {"bodyText": "b", "buttons": [{"id": "a", "title": "x" * 21}]},
        "buttons[0].title must be at most 20 characters",
    ),
    (
        "buttons",
        {"bodyText": "b", "buttons": [{"id": "a" * 257, "title": "t"}]},
        "buttons[0].id must be at most 256 characters",
    ),
    (
        "buttons",
        {"bodyText": "b" * 1025, "buttons": [{"id": "a", "title": "t"}]},
        "bodyText must be at most 1024 characters",
    ),
    (
        "buttons",
        {"bodyText": "b", "buttons": [{"id": "a", "title": "t"}, {"id": "a", "title": "u"}]},
        "buttons must have unique ids",
    ),
    ("image", {}, "exactly one of link or mediaId is required"),
    (
        "image",
        {"link": "https://e.com/a.jpg", "mediaId": "1"},
        "exactly one of link or mediaId is required",
    ),
    ("image", {"link": "http://e.com/a.jpg"}, "link must be a public https:// URL"),
    (
        "image",
        {"link": "https://e.com/a.jpg", "caption": "c" * 1025},
        "caption must be at most 1024 characters",
    ),
    (
        "document",
        {"mediaId": "1", "caption": "c" * 1025},
        "caption must be at most 1024 characters",
    ),
    ("template", {"name": "Hello World", "language": "en"}, "name must match"),
    ("template", {"name": "hello", "language": "english"}, "language must match"),
    (
        "template",
        {"name": "hello", "language": "en", "components": [{"type": "button", "parameters": []}]},
        "components[0] a button component needs 'sub_type' and 'index'",
    ),
    (
        "template",
        {
            "name": "hello",
            "language": "en",
            "components": [{"type": "header", "parameters": [{"type": "image"}]}],
        },
        "components[0].parameters[0] a image parameter needs a 'image' object",
    ),
    (
        "list",
        {"bodyText": "b", "buttonText": "Open", "sections": []},
        "sections must have at least 1 item",
    ),
    (
        "list",
        {
            "bodyText": "b",
            "buttonText": "Open",
            "sections": [
                {"title": "s", "rows": [{"id": str(i), "title": "r"} for i in range(6)]},
                {"title": "t", "rows": [{"id": f"x{i}", "title": "r"} for i in range(6)]},
            ],
        },
        "sections must hold at most 10 rows in all",
    ),
    (
        "cta",
        {"bodyText": "b", "buttonText": "Go", "url": "ftp://x"},
        "url must be a public https:// URL",
    ),
    (
        "flow",
        {"bodyText": "b", "flowId": "1", "flowCta": "Go", "flowAction": "jump"},
        "flowAction must be one of 'navigate' or 'data_exchange'",
    ),
    ("send", {"type": "sticker-pack", "payload": {}}, "type must be one of text, image"),
    ("send", {"type": "flow", "payload": {}}, "type must be one of text, image"),
    ("send", {"type": "text", "payload": {"body": ""}}, "payload.body must not be empty"),
    (
        "send",
        {"type": "text", "payload": {"body": "hi", "to": "1"}},
        "payload.to is not a field of this request",
    ),
    (
        "send",
        {"type": "text", "payload": {"body": "hi"}, "contact": {"email": "nope"}},
        "contact.email must be an email address",
    ),
]


@pytest.mark.parametrize(("kind", "fields", "rule"), TABLE)
def test_documented_limits_are_refused_with_field_and_rule(
    kind: str, fields: dict[str, Any], rule: str
) -> None:
    problems = refused("cloud", kind, {**ENV, **fields})
    assert any(rule in p for p in problems), problems


def test_qr_needs_a_number_or_a_session() -> None:
    assert refused("qr", "text", {"to": ENV["to"], "body": "hi"}) == [
        "fromPhoneNo is required unless sessionId is given"
    ]
    assert parse_send("qr", "text", {"to": ENV["to"], "sessionId": "s", "body": "hi"})


def test_qr_location_bounds() -> None:
    problems = refused("qr", "location", {**ENV, "latitude": 91, "longitude": -181})
    assert problems == ["latitude must be at most 90", "longitude must be at least -180"]


def test_update_contact_needs_a_field() -> None:
    with pytest.raises(InvalidRequest, match="No updatable fields provided"):
        parse(UpdateContact, {"phoneNumber": "917890000198", "updates": {}})


def test_unknown_kind_and_channel() -> None:
    with pytest.raises(InvalidRequest, match="type must be one of text, template"):
        request_model("cloud", "fax")
    with pytest.raises(InvalidRequest, match="channel must be one of cloud, qr"):
        request_model("sms", "text")
    with pytest.raises(InvalidRequest, match="for the cloud channel"):
        request_model("cloud", "location")  # QR only


def test_refusals_never_echo_the_input() -> None:
    secretish = "secr_" + "Z" * 5000
    with pytest.raises(InvalidRequest) as caught:
        parse_send("cloud", "text", {**ENV, "body": secretish})
    assert "ZZZZ" not in str(caught.value)
    assert caught.value.__context__ is None


# --- properties -------------------------------------------------------------------------


@given(to=E164, sender=E164, body=st.text(min_size=1, max_size=4096).filter(str.strip))
def test_valid_text_round_trips_through_gateway_json(to: str, sender: str, body: str) -> None:
    request = parse_send("cloud", "text", {"to": to, "fromPhoneNo": sender, "body": body})
    assert request.to == "+" + to.lstrip("+")
    again = parse_send("cloud", "text", request.to_gateway())
    assert again == request


@given(bad=NOT_E164, field=st.sampled_from(["to", "fromPhoneNo"]))
def test_numbers_that_are_not_e164_are_refused(bad: str, field: str) -> None:
    problems = refused("cloud", "text", {**ENV, field: bad, "body": "hi"})
    assert any(p.startswith(f"{field} must") for p in problems), problems


@given(length=st.integers(4097, 10_000))
def test_text_longer_than_4096_is_refused(length: int) -> None:
    assert refused("cloud", "text", {**ENV, "body": "a" * length}) == [
        "body must be at most 4096 characters"
    ]


@given(buttons=st.lists(st.fixed_dictionaries({"id": TEXT, "title": TEXT}), max_size=8))
def test_buttons_accepted_exactly_when_the_gateway_would(buttons: list[dict[str, str]]) -> None:
    body = {**ENV, "bodyText": "Pick", "buttons": buttons}
    ok = (
        1 <= len(buttons) <= 3
        and all(len(b["title"]) <= 20 for b in buttons)
        and len({b["id"] for b in buttons}) == len(buttons)
    )
    if ok:
        assert parse_send("cloud", "buttons", body).to_gateway()["buttons"] == buttons
    else:
        refused("cloud", "buttons", body)


@given(
    link=st.one_of(st.none(), st.just("https://example.com/a.jpg")),
    media_id=st.one_of(st.none(), st.just("12345")),
    kind=st.sampled_from(["image", "video", "audio", "sticker", "document"]),
)
def test_media_needs_exactly_one_source(link: str | None, media_id: str | None, kind: str) -> None:
    body = {
        **ENV,
        **({"link": link} if link else {}),
        **({"mediaId": media_id} if media_id else {}),
    }
    if (link is None) != (media_id is None):
        assert parse_send("cloud", kind, body).to_gateway()["to"] == "+917890000198"
    else:
        assert refused("cloud", kind, body) == ["exactly one of link or mediaId is required"]


@given(extra=st.text(alphabet=string.ascii_letters, min_size=1, max_size=12))
def test_unknown_fields_are_refused_for_every_kind(extra: str) -> None:
    kinds = [("cloud", k) for k in CLOUD_KINDS] + [("qr", k) for k in QR_KINDS]
    for channel, kind in kinds:
        model = request_model(channel, kind)
        known = {f.alias or name for name, f in model.model_fields.items()} | set(
            model.model_fields
        )
        if extra in known:
            continue
        body = {**ENV, extra: "x"}
        if kind == "send":
            body.update(type="text", payload={"body": "hi"})
        with pytest.raises(InvalidRequest) as caught:
            parse_send(channel, kind, body)
        assert f"{extra} is not a field of this request" in [str(p) for p in caught.value.problems]


@settings(max_examples=200)
@given(
    body=st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    ),
    kind=st.sampled_from(sorted(CLOUD_KINDS)),
)
def test_arbitrary_json_is_either_a_valid_request_or_refused_cleanly(
    body: dict[str, Any], kind: str
) -> None:
    try:
        request = parse_send("cloud", kind, body)
    except InvalidRequest as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
    else:
        assert parse_send("cloud", kind, request.to_gateway()) == request


@pytest.mark.parametrize(
    "payload",
    [
        {"body": "\ud800"},
        {"components": [{"parameters": [{"text": "ok"}, {"text": "x\udfff"}]}]},
        {"\ud83d": "a lone surrogate as a key"},
        {"rows": ("fine", ("\udc00",))},  # a tuple, as a Python producer may pass
    ],
)
def test_an_envelope_refuses_a_body_that_cannot_be_utf8_wherever_it_hides(
    payload: dict[str, Any],
) -> None:
    job = {"id": "j1", "channel": "cloud", "type": "text", "to": "+15551230001"}
    with pytest.raises(ValidationError) as refused:
        JobEnvelope.model_validate({**job, "payload": payload})
    assert "payload" in str(refused.value) and "no lone surrogates" in str(refused.value)
    fine = {"body": "caf\u00e9 \U0001f600", "rows": [{"title": "\u4e2d\u6587"}]}
    assert JobEnvelope.model_validate({**job, "payload": fine}).payload == fine
