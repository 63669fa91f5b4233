"""Request bodies of the Cloud API send endpoints (``/whatsapp-api/messages/*``).

Each type is a payload model (the type-specific fields, also the ``payload`` of the
combined send) and a request model that adds ``to`` and ``fromPhoneNo``. Limits not in
the gateway reference follow Meta's documentation for the same message kind.
"""

from __future__ import annotations

import types
from typing import Any, ClassVar, Literal, Self, cast

from pydantic import Field, field_validator, model_validator

from dispatcher.gateway.fields import (
    E164,
    Body1024,
    Body4096,
    ButtonTitle,
    Caption,
    FooterText,
    GatewayModel,
    HeaderText,
    HttpsUrl,
    MediaId,
    RowTitle,
    WaMessageId,
)


class CloudEnvelope(GatewayModel):
    """Every Cloud send names the recipient and the sending number (E.164)."""

    to: E164
    from_phone_no: E164


# --- text ---------------------------------------------------------------------------


class TextPayload(GatewayModel):
    body: Body4096
    preview_url: bool | None = None


# --- template -----------------------------------------------------------------------

_MEDIA_PARAMETERS = ("image", "video", "document")


class TemplateParameter(GatewayModel):
    """One Meta template parameter; Meta's own shapes pass through unchanged."""

    model_config = GatewayModel.model_config | {"extra": "allow", "alias_generator": None}

    type: Literal[
        "text",
        "currency",
        "date_time",
        "image",
        "video",
        "document",
        "payload",
        "coupon_code",
        "action",
        "location",
    ]
    text: str | None = Field(default=None, min_length=1, max_length=32768)

    @model_validator(mode="after")
    def _value_present(self) -> Self:
        if self.type == "text" and self.text is None:
            raise ValueError("a text parameter needs 'text'")
        extra = self.model_extra or {}
        if self.type != "text" and self.type not in extra:
            raise ValueError(f"a {self.type} parameter needs a '{self.type}' object")
        if self.type in _MEDIA_PARAMETERS:
            media = extra[self.type]
            if not isinstance(media, dict) or not (media.get("link") or media.get("id")):
                raise ValueError(f"a {self.type} parameter needs 'link' or 'id'")
        return self


class TemplateComponent(GatewayModel):
    """A Meta-shaped component: header / body / button with its parameters."""

    model_config = GatewayModel.model_config | {"alias_generator": None}

    type: Literal["header", "body", "button", "footer"]
    sub_type: Literal["url", "quick_reply", "copy_code", "flow", "catalog", "voice_call"] | None = (
        None
    )
    index: int | str | None = None
    parameters: tuple[TemplateParameter, ...] = Field(default=(), max_length=100)

    @model_validator(mode="after")
    def _button_addressed(self) -> Self:
        if self.type == "button" and (self.sub_type is None or self.index is None):
            raise ValueError("a button component needs 'sub_type' and 'index'")
        if self.index is not None and not str(self.index).isdigit():
            raise ValueError("index must be a button position such as 0")
        return self


class TemplatePayload(GatewayModel):
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(pattern=r"^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")
    components: tuple[TemplateComponent, ...] | None = Field(default=None, max_length=20)
    reply_to_wa_message_id: WaMessageId | None = None


# --- interactive: buttons, list, cta, flow -------------------------------------------


class ReplyButton(GatewayModel):
    id: str = Field(min_length=1, max_length=256)
    title: ButtonTitle


class ButtonsPayload(GatewayModel):
    body_text: Body1024
    buttons: tuple[ReplyButton, ...]
    header_text: HeaderText | None = None
    footer_text: FooterText | None = None

    @field_validator("buttons")
    @classmethod
    def _one_to_three(cls, value: tuple[ReplyButton, ...]) -> tuple[ReplyButton, ...]:
        if not 1 <= len(value) <= 3:
            raise ValueError("must be 1-3 items")
        if len({b.id for b in value}) != len(value):
            raise ValueError("must have unique ids")
        return value


class ListRow(GatewayModel):
    id: str = Field(min_length=1, max_length=200)
    title: RowTitle
    description: str | None = Field(default=None, max_length=72)


class ListSection(GatewayModel):
    title: RowTitle | None = None
    rows: tuple[ListRow, ...] = Field(min_length=1, max_length=10)


class ListPayload(GatewayModel):
    body_text: Body1024
    button_text: ButtonTitle
    sections: tuple[ListSection, ...] = Field(min_length=1, max_length=10)
    header_text: HeaderText | None = None
    footer_text: FooterText | None = None

    @model_validator(mode="after")
    def _rows_overall(self) -> Self:
        rows = [row for section in self.sections for row in section.rows]
        if len(rows) > 10:
            raise ValueError("sections must hold at most 10 rows in all")
        if len({row.id for row in rows}) != len(rows):
            raise ValueError("sections must have unique row ids")
        if len(self.sections) > 1 and any(s.title is None for s in self.sections):
            raise ValueError("sections need a title each when there are several")
        return self


class CtaPayload(GatewayModel):
    body_text: Body1024
    button_text: ButtonTitle
    url: HttpsUrl
    header_text: HeaderText | None = None
    footer_text: FooterText | None = None


class FlowPayload(GatewayModel):
    body_text: Body1024
    flow_id: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    flow_cta: ButtonTitle
    flow_token: str | None = Field(default=None, min_length=1, max_length=1024)
    flow_action: Literal["navigate", "data_exchange"] = "navigate"
    screen: str | None = Field(default=None, min_length=1, max_length=128)
    data: dict[str, Any] | None = None
    mode: Literal["draft", "published"] | None = None
    header_text: HeaderText | None = None
    footer_text: FooterText | None = None


# --- media ----------------------------------------------------------------------------


class _Media(GatewayModel):
    link: HttpsUrl | None = None
    media_id: MediaId | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.link is None) == (self.media_id is None):
            raise ValueError("exactly one of link or mediaId is required")
        return self


class ImagePayload(_Media):
    caption: Caption | None = None


class VideoPayload(_Media):
    caption: Caption | None = None


class AudioPayload(_Media):
    pass


class StickerPayload(_Media):
    pass


class DocumentPayload(_Media):
    filename: str | None = Field(default=None, min_length=1, max_length=240)
    caption: Caption | None = None


# --- request models (envelope + payload) ------------------------------------------------


class CloudSend(CloudEnvelope):
    """Base of every Cloud send request; ``endpoint`` is the path under the base URL."""

    message_type: ClassVar[str]  # the path's last part

    @property
    def endpoint(self) -> str:
        return f"/whatsapp-api/messages/{self.message_type}"


def _cloud_send(message_type: str, payload: type[GatewayModel], section: str) -> type[CloudSend]:
    """The request model of one endpoint: its payload's fields, the envelope's, its path.

    The eleven models differ only in these three values, so they are built from the
    table below rather than written out as eleven classes alike in all else.
    """
    name = payload.__name__.removesuffix("Payload") + "Message"
    doc = f"``POST /whatsapp-api/messages/{message_type}`` ({section})."
    namespace = {"__module__": __name__, "__doc__": doc, "message_type": message_type}
    model = types.new_class(name, (payload, CloudSend), exec_body=lambda ns: ns.update(namespace))
    return cast(type[CloudSend], model)


# Request models by the endpoint's last part, with the reference's section.
CLOUD_SENDS: dict[str, type[CloudSend]] = {
    message_type: _cloud_send(message_type, payload, section)
    for message_type, payload, section in (
        ("text", TextPayload, "3a. Send Text Message"),
        ("template", TemplatePayload, "1. Send Template Message"),
        ("buttons", ButtonsPayload, "2. Send Interactive Message"),
        ("list", ListPayload, "variant of 2: sectioned list"),
        ("cta", CtaPayload, "variant of 2: call-to-action URL"),
        ("flow", FlowPayload, "variant of 2: Flow embed"),
        ("image", ImagePayload, "3b. Send Image"),
        ("video", VideoPayload, "variant of 3b"),
        ("audio", AudioPayload, "variant of 3b"),
        ("sticker", StickerPayload, "variant of 3b"),
        ("document", DocumentPayload, "3c. Send Document"),
    )
}
